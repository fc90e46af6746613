/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: JSON (RFC 8259) writer and bounded parser.
 *
 * Writer: text is appended to a growable NUL-terminated buffer whose first
 * error sticks (later calls do nothing; json_writer_steal() returns NULL).
 * Each nesting level remembers whether a value was already written, so
 * put_prefix() places the comma before every value but the first one, and
 * no comma right after a key. Strings are checked as UTF-8 sequence by
 * sequence (utf8_len(), shared with the parser): a valid sequence is copied,
 * '"', '\\' and control characters are escaped, and a byte that starts no
 * valid sequence is written as the \u00XX escape of its value ("lossy").
 *
 * Parser: recursive descent over (p, end), never reading past end, with the
 * depth bounded by JSON_MAX_DEPTH so the recursion is bounded too. Every
 * value, key and string of one parse lives in the arena of its json_doc
 * (a list of blocks, freed at once). The children of a container are
 * collected on a scratch stack while it is parsed and copied into the arena
 * as one array when it closes, so arrays never move once a parent points to
 * them. Strings are decoded into a scratch buffer (capped at
 * JSON_MAX_STRING bytes) and copied with their exact length. Numbers follow
 * the RFC grammar exactly; an integer literal that fits int64_t is converted
 * exactly, anything else goes through strtod_l() (the "C" locale) on a
 * NUL-terminated copy of the token, and a magnitude that overflows a double
 * is refused. Object keys
 * may not contain U+0000 (keys are C strings).
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
        uint8_t c = p[0];
        size_t len, i;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                cp = c & 0x07;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* ---- writer ---- */

void json_writer_init(struct json_writer *w)
{
        *w = (struct json_writer){0};
}

void json_writer_free(struct json_writer *w)
{
        free(w->data);
        json_writer_init(w);
}

char *json_writer_steal(struct json_writer *w)
{
        char *text = NULL;

        if (w->err == 0)
                text = w->data ? TAKE_PTR(w->data) : strdup("");
        json_writer_free(w);
        return text;
}

bool json_utf8_valid(const void *data, size_t len)
{
        const uint8_t *p = data;
        size_t k;

        for (size_t i = 0; i < len; i += k) {
                k = utf8_len(p + i, len - i);
                if (k == 0)
                        return false;
        }
        return true;
}

static bool reserve(struct json_writer *w, size_t n)
{
        size_t need, cap;
        char *d;

        if (w->err)
                return false;
        if (n > SIZE_MAX - 1 - w->len) {
                w->err = -ENOMEM;
                return false;
        }
        need = w->len + n + 1;
        if (need <= w->cap)
                return true;
        cap = w->cap ? w->cap : 256;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        d = realloc(w->data, cap);
        if (!d) {
                w->err = -ENOMEM;
                return false;
        }
        w->data = d;
        w->cap = cap;
        return true;
}

static void append(struct json_writer *w, const void *s, size_t n)
{
        if (!reserve(w, n))
                return;
        memcpy(w->data + w->len, s, n);
        w->len += n;
        w->data[w->len] = '\0';
}

static void append_str(struct json_writer *w, const char *s)
{
        append(w, s, strlen(s));
}

char *json_writer_steal_line(struct json_writer *w, size_t *ret_len)
{
        if (reserve(w, 1)) {
                w->data[w->len++] = '\n';
                w->data[w->len] = '\0';
        }
        *ret_len = w->len;
        return json_writer_steal(w);
}

/* The separator before a value (or a key). */
static void put_prefix(struct json_writer *w)
{
        if (w->after_key) {
                w->after_key = false;
                return;
        }
        if (w->need_comma[w->depth])
                append(w, ",", 1);
        w->need_comma[w->depth] = true;
}

static void begin(struct json_writer *w, char c)
{
        put_prefix(w);
        if (w->depth >= JSON_MAX_DEPTH) {
                if (w->err == 0)
                        w->err = -E2BIG;
                return;
        }
        append(w, &c, 1);
        w->need_comma[++w->depth] = false;
}

static void end(struct json_writer *w, char c)
{
        if (w->depth == 0 || w->after_key) {
                if (w->err == 0)
                        w->err = -EINVAL;
                return;
        }
        w->depth--;
        append(w, &c, 1);
}

void json_begin_object(struct json_writer *w)
{
        begin(w, '{');
}

void json_end_object(struct json_writer *w)
{
        end(w, '}');
}

void json_begin_array(struct json_writer *w)
{
        begin(w, '[');
}

void json_end_array(struct json_writer *w)
{
        end(w, ']');
}

/* Writes data as a quoted string; returns true if some bytes were not UTF-8. */
static bool put_quoted(struct json_writer *w, const uint8_t *p, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        bool lossy = false;
        size_t i = 0;

        append(w, "\"", 1);
        while (i < n) {
                size_t run = i, k;

                /* the longest run that needs no escaping, copied at once */
                while (run < n && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\' &&
                       (k = utf8_len(p + run, n - run)) > 0)
                        run += k;
                append(w, p + i, run - i);
                if (run == n)
                        break;
                i = run;

                char esc[6] = {'\\', 'u', '0', '0', hex[p[i] >> 4], hex[p[i] & 0xf]};
                switch (p[i]) {
                case '"':
                        append(w, "\\\"", 2);
                        break;
                case '\\':
                        append(w, "\\\\", 2);
                        break;
                case '\n':
                        append(w, "\\n", 2);
                        break;
                case '\r':
                        append(w, "\\r", 2);
                        break;
                case '\t':
                        append(w, "\\t", 2);
                        break;
                case '\b':
                        append(w, "\\b", 2);
                        break;
                case '\f':
                        append(w, "\\f", 2);
                        break;
                default:
                        /* another control character, or a byte that is not UTF-8 */
                        if (p[i] >= 0x20)
                                lossy = true;
                        append(w, esc, sizeof(esc));
                        break;
                }
                i++;
        }
        append(w, "\"", 1);
        return lossy;
}

void json_key(struct json_writer *w, const char *key)
{
        if (w->after_key || w->depth == 0) {
                if (w->err == 0)
                        w->err = -EINVAL;
                return;
        }
        put_prefix(w);
        put_quoted(w, (const uint8_t *)key, strlen(key));
        append(w, ":", 1);
        w->after_key = true;
}

void json_put_string(struct json_writer *w, const char *s)
{
        if (!s) {
                json_put_null(w);
                return;
        }
        put_prefix(w);
        put_quoted(w, (const uint8_t *)s, strlen(s));
}

bool json_put_bytes_lossy(struct json_writer *w, const void *data, size_t len)
{
        put_prefix(w);
        return put_quoted(w, data, len);
}

void json_put_int(struct json_writer *w, int64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        put_prefix(w);
        append_str(w, buf);
}

void json_put_uint(struct json_writer *w, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        put_prefix(w);
        append_str(w, buf);
}

void json_put_bool(struct json_writer *w, bool v)
{
        put_prefix(w);
        append_str(w, v ? "true" : "false");
}

void json_put_null(struct json_writer *w)
{
        put_prefix(w);
        append_str(w, "null");
}

void json_put_raw(struct json_writer *w, const char *json)
{
        if (!json) {
                json_put_null(w);
                return;
        }
        put_prefix(w);
        append_str(w, json);
}

void json_kv_string(struct json_writer *w, const char *key, const char *s)
{
        json_key(w, key);
        json_put_string(w, s);
}

void json_kv_int(struct json_writer *w, const char *key, int64_t v)
{
        json_key(w, key);
        json_put_int(w, v);
}

void json_kv_uint(struct json_writer *w, const char *key, uint64_t v)
{
        json_key(w, key);
        json_put_uint(w, v);
}

void json_kv_bool(struct json_writer *w, const char *key, bool v)
{
        json_key(w, key);
        json_put_bool(w, v);
}

void json_kv_strv(struct json_writer *w, const char *key, char *const *v, size_t n)
{
        json_key(w, key);
        json_begin_array(w);
        for (size_t i = 0; i < n; i++)
                json_put_string(w, v[i]);
        json_end_array(w);
}

/* ---- parser ---- */

#define ARENA_BLOCK (64u * 1024)
#define ARENA_ALIGN alignof(max_align_t)

struct arena_block {
        struct arena_block *next;
        size_t used, cap;
        alignas(max_align_t) unsigned char data[];
};

struct json_doc {
        struct arena_block *blocks;
};

struct parser {
        const char *p, *end;
        struct json_doc *doc;
        size_t n_values;
        /* children of the containers being parsed */
        struct json_value *stack;
        size_t stack_len, stack_cap;
        char **keys;
        size_t keys_len, keys_cap;
        /* the string being decoded */
        char *buf;
        size_t buf_len, buf_cap;
};

static void *arena_alloc(struct json_doc *doc, size_t n)
{
        struct arena_block *b = doc->blocks;
        size_t cap;
        void *r;

        if (n > SIZE_MAX - ARENA_ALIGN - sizeof(*b))
                return NULL;
        n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
        if (!b || b->cap - b->used < n) {
                cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
                b = malloc(sizeof(*b) + cap);
                if (!b)
                        return NULL;
                b->used = 0;
                b->cap = cap;
                if (cap == ARENA_BLOCK || !doc->blocks) {
                        b->next = doc->blocks;
                        doc->blocks = b;
                } else {
                        /* a dedicated block goes second: the current one
                         * keeps serving small allocations */
                        b->next = doc->blocks->next;
                        doc->blocks->next = b;
                }
        }
        r = b->data + b->used;
        b->used += n;
        return r;
}

void json_doc_free(struct json_doc *doc)
{
        if (!doc)
                return;
        while (doc->blocks) {
                struct arena_block *next = doc->blocks->next;

                free(doc->blocks);
                doc->blocks = next;
        }
        free(doc);
}

/* Grows *arr (of elem-sized items) to hold one more than len. */
static int grow(void **arr, size_t *cap, size_t len, size_t elem)
{
        size_t ncap;
        void *n;

        if (len < *cap)
                return 0;
        ncap = *cap ? *cap * 2 : 64;
        if (ncap > SIZE_MAX / elem)
                return -ENOMEM;
        n = realloc(*arr, ncap * elem);
        if (!n)
                return -ENOMEM;
        *arr = n;
        *cap = ncap;
        return 0;
}

static void skip_ws(struct parser *P)
{
        while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r'))
                P->p++;
}

static int buf_put(struct parser *P, const void *s, size_t n)
{
        int r;

        if (n > JSON_MAX_STRING - P->buf_len)
                return -E2BIG;
        while (P->buf_len + n + 1 > P->buf_cap) {
                r = grow((void **)&P->buf, &P->buf_cap, P->buf_cap, 1);
                if (r < 0)
                        return r;
        }
        memcpy(P->buf + P->buf_len, s, n);
        P->buf_len += n;
        return 0;
}

static int hex4(struct parser *P, uint32_t *ret)
{
        uint32_t v = 0;

        if (P->end - P->p < 4)
                return -EBADMSG;
        for (int i = 0; i < 4; i++) {
                char c = *P->p++;

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t)(c - 'A' + 10);
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* After the "\u": one escape, or a surrogate pair of two, as UTF-8. */
static int put_escape_u(struct parser *P)
{
        uint32_t cp, lo;
        uint8_t out[4];
        size_t n;
        int r;

        r = hex4(P, &cp);
        if (r < 0)
                return r;
        if (cp >= 0xdc00 && cp <= 0xdfff)
                return -EBADMSG; /* a low surrogate alone */
        if (cp >= 0xd800 && cp <= 0xdbff) {
                if (P->end - P->p < 2 || P->p[0] != '\\' || P->p[1] != 'u')
                        return -EBADMSG;
                P->p += 2;
                r = hex4(P, &lo);
                if (r < 0)
                        return r;
                if (lo < 0xdc00 || lo > 0xdfff)
                        return -EBADMSG;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp < 0x80) {
                out[0] = (uint8_t)cp;
                n = 1;
        } else if (cp < 0x800) {
                out[0] = (uint8_t)(0xc0 | cp >> 6);
                out[1] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                out[0] = (uint8_t)(0xe0 | cp >> 12);
                out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                out[0] = (uint8_t)(0xf0 | cp >> 18);
                out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
                out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                out[3] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 4;
        }
        return buf_put(P, out, n);
}

/* Parses a string at P->p (the opening quote) into the arena. */
static int parse_string(struct parser *P, char **ret, size_t *ret_len)
{
        char *s;
        int r;

        P->p++;
        P->buf_len = 0;
        for (;;) {
                const char *run = P->p;
                size_t k;

                while (P->p < P->end && (uint8_t)*P->p >= 0x20 && *P->p != '"' && *P->p != '\\' &&
                       (k = utf8_len((const uint8_t *)P->p, (size_t)(P->end - P->p))) > 0)
                        P->p += k;
                r = buf_put(P, run, (size_t)(P->p - run));
                if (r < 0)
                        return r;
                if (P->p == P->end)
                        return -EBADMSG;
                if (*P->p == '"')
                        break;
                if (*P->p != '\\')
                        return -EBADMSG; /* a control character or bad UTF-8 */
                P->p++;
                if (P->p == P->end)
                        return -EBADMSG;
                char c = *P->p++, e;
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        e = c;
                        break;
                case 'b':
                        e = '\b';
                        break;
                case 'f':
                        e = '\f';
                        break;
                case 'n':
                        e = '\n';
                        break;
                case 'r':
                        e = '\r';
                        break;
                case 't':
                        e = '\t';
                        break;
                case 'u':
                        r = put_escape_u(P);
                        if (r < 0)
                                return r;
                        continue;
                default:
                        return -EBADMSG;
                }
                r = buf_put(P, &e, 1);
                if (r < 0)
                        return r;
        }
        P->p++;
        s = arena_alloc(P->doc, P->buf_len + 1);
        if (!s)
                return -ENOMEM;
        if (P->buf_len > 0)
                memcpy(s, P->buf, P->buf_len);
        s[P->buf_len] = '\0';
        *ret = s;
        *ret_len = P->buf_len;
        return 0;
}

static bool is_digit(const char *p, const char *end)
{
        return p < end && *p >= '0' && *p <= '9';
}

static int parse_number(struct parser *P, struct json_value *v)
{
        const char *start = P->p, *p = P->p, *end = P->end;
        bool integer = true, neg = false;

        if (p < end && *p == '-') {
                neg = true;
                p++;
        }
        if (!is_digit(p, end))
                return -EBADMSG;
        if (*p == '0')
                p++;
        else
                while (is_digit(p, end))
                        p++;
        if (p < end && *p == '.') {
                integer = false;
                p++;
                if (!is_digit(p, end))
                        return -EBADMSG;
                while (is_digit(p, end))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                integer = false;
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (!is_digit(p, end))
                        return -EBADMSG;
                while (is_digit(p, end))
                        p++;
        }
        P->p = p;
        v->type = JSON_NUMBER;

        if (integer) {
                uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
                const char *q = start + neg;
                bool fits = true;

                for (; q < p; q++) {
                        unsigned d = (unsigned)(*q - '0');

                        if (mag > (limit - d) / 10) {
                                fits = false;
                                break;
                        }
                        mag = mag * 10 + d;
                }
                if (fits) {
                        v->num.is_int = true;
                        v->num.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
                        v->num.d = (double)v->num.i;
                        return 0;
                }
        }

        size_t n = (size_t)(p - start);
        char small[64];
        _cleanup_free_ char *big = NULL;
        char *tok = small;

        if (n >= sizeof(small)) {
                big = malloc(n + 1);
                if (!big)
                        return -ENOMEM;
                tok = big;
        }
        memcpy(tok, start, n);
        tok[n] = '\0';
        /* the "C" locale: JSON's decimal point is '.' whatever the
         * embedding program set LC_NUMERIC to */
        locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!c_locale)
                return -ENOMEM;
        v->num.d = strtod_l(tok, NULL, c_locale);
        freelocale(c_locale);
        v->num.is_int = false;
        if (isinf(v->num.d))
                return -E2BIG;
        return 0;
}

static int literal(struct parser *P, const char *word)
{
        size_t n = strlen(word);

        if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0)
                return -EBADMSG;
        P->p += n;
        return 0;
}

static int parse_value(struct parser *P, struct json_value *v, unsigned depth);

/* Parses the children of an array or object (P->p after the opening
 * bracket) and copies them into the arena. */
static int parse_container(struct parser *P, struct json_value *v, unsigned depth)
{
        bool object = v->type == JSON_OBJECT;
        char close = object ? '}' : ']';
        size_t base = P->stack_len, kbase = P->keys_len, n;
        int r;

        if (depth >= JSON_MAX_DEPTH)
                return -E2BIG;
        skip_ws(P);
        if (P->p < P->end && *P->p == close) {
                P->p++;
                return 0;
        }
        for (;;) {
                struct json_value child = {0};

                skip_ws(P);
                if (object) {
                        char *key;
                        size_t klen;

                        if (P->p == P->end || *P->p != '"')
                                return -EBADMSG;
                        r = parse_string(P, &key, &klen);
                        if (r < 0)
                                return r;
                        if (strlen(key) != klen)
                                return -EBADMSG; /* U+0000 in a key */
                        r = grow((void **)&P->keys, &P->keys_cap, P->keys_len, sizeof(char *));
                        if (r < 0)
                                return r;
                        P->keys[P->keys_len++] = key;
                        skip_ws(P);
                        if (P->p == P->end || *P->p != ':')
                                return -EBADMSG;
                        P->p++;
                }
                r = parse_value(P, &child, depth + 1);
                if (r < 0)
                        return r;
                r = grow((void **)&P->stack, &P->stack_cap, P->stack_len, sizeof(child));
                if (r < 0)
                        return r;
                P->stack[P->stack_len++] = child;
                skip_ws(P);
                if (P->p == P->end)
                        return -EBADMSG;
                if (*P->p == close)
                        break;
                if (*P->p != ',')
                        return -EBADMSG;
                P->p++;
        }
        P->p++;

        n = P->stack_len - base;
        v->c.items = arena_alloc(P->doc, n * sizeof(struct json_value));
        if (!v->c.items)
                return -ENOMEM;
        memcpy(v->c.items, P->stack + base, n * sizeof(struct json_value));
        if (object) {
                v->c.keys = arena_alloc(P->doc, n * sizeof(char *));
                if (!v->c.keys)
                        return -ENOMEM;
                memcpy(v->c.keys, P->keys + kbase, n * sizeof(char *));
        }
        v->c.count = n;
        P->stack_len = base;
        P->keys_len = kbase;
        return 0;
}

static int parse_value(struct parser *P, struct json_value *v, unsigned depth)
{
        if (++P->n_values > JSON_MAX_VALUES)
                return -E2BIG;
        skip_ws(P);
        if (P->p == P->end)
                return -EBADMSG;
        switch (*P->p) {
        case '{':
                P->p++;
                v->type = JSON_OBJECT;
                return parse_container(P, v, depth);
        case '[':
                P->p++;
                v->type = JSON_ARRAY;
                return parse_container(P, v, depth);
        case '"':
                v->type = JSON_STRING;
                return parse_string(P, &v->str.s, &v->str.len);
        case 't':
                v->type = JSON_BOOL;
                v->b = true;
                return literal(P, "true");
        case 'f':
                v->type = JSON_BOOL;
                v->b = false;
                return literal(P, "false");
        case 'n':
                v->type = JSON_NULL;
                return literal(P, "null");
        default:
                return parse_number(P, v);
        }
}

int json_parse(const char *text, size_t len, struct json_doc **ret_doc,
               const struct json_value **ret_root)
{
        _cleanup_(json_doc_freep) struct json_doc *doc = NULL;
        struct parser P = {.p = text, .end = text + len};
        struct json_value *root;
        int r;

        doc = calloc(1, sizeof(*doc));
        if (!doc)
                return -ENOMEM;
        root = arena_alloc(doc, sizeof(*root));
        if (!root)
                return -ENOMEM;
        *root = (struct json_value){0};
        P.doc = doc;
        r = parse_value(&P, root, 0);
        if (r == 0) {
                skip_ws(&P);
                if (P.p != P.end)
                        r = -EBADMSG;
        }
        free(P.stack);
        free(P.keys);
        free(P.buf);
        if (r < 0)
                return r;
        *ret_doc = TAKE_PTR(doc);
        *ret_root = root;
        return 0;
}

/* ---- accessors ---- */

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
        if (!obj || obj->type != JSON_OBJECT)
                return NULL;
        /* backwards: with duplicate keys the last one wins */
        for (size_t i = obj->c.count; i > 0; i--)
                if (strcmp(obj->c.keys[i - 1], key) == 0)
                        return &obj->c.items[i - 1];
        return NULL;
}

const struct json_value *json_at(const struct json_value *arr, size_t i)
{
        if (!arr || arr->type != JSON_ARRAY || i >= arr->c.count)
                return NULL;
        return &arr->c.items[i];
}

size_t json_count(const struct json_value *v)
{
        if (!v || (v->type != JSON_ARRAY && v->type != JSON_OBJECT))
                return 0;
        return v->c.count;
}

const char *json_string(const struct json_value *v, const char *def)
{
        if (!v || v->type != JSON_STRING)
                return def;
        return v->str.s;
}

bool json_bool(const struct json_value *v, bool def)
{
        if (!v || v->type != JSON_BOOL)
                return def;
        return v->b;
}

int64_t json_int(const struct json_value *v, int64_t min, int64_t max, int64_t def)
{
        if (!v || v->type != JSON_NUMBER || !v->num.is_int || v->num.i < min || v->num.i > max)
                return def;
        return v->num.i;
}
