/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a CBOR (RFC 8949) subset codec.
 *
 * Encoder: every item starts with a head (major type in the top 3 bits,
 * argument in the low 5 bits plus 0/1/2/4/8 following bytes). We always
 * write the shortest head for an argument (preferred serialisation), so
 * encodings are deterministic. Bytes are appended to a growable cbor_buf
 * whose first error (-ENOMEM, or -EMSGSIZE past the optional size limit)
 * sticks: later calls do nothing and the caller checks b->err once.
 *
 * Decoder: a cursor (p, end) over untrusted bytes. read_head() decodes one
 * head and is the only place that touches the input, so every read is
 * bounds-checked there; string lengths and container counts are compared
 * with the bytes that remain before anything is trusted (in uint64_t, so a
 * 2^64-1 length cannot wrap a pointer). A container count is also bounded by
 * the remaining input (each item needs at least one byte), which rejects
 * absurd counts early. cbor_skip() walks nested items with an explicit
 * stack of pending counts, not recursion, and refuses nesting deeper than
 * CBOR_MAX_DEPTH. Every decoding function leaves the cursor where it was
 * when it fails.
 */
#include "cbor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
        MAJOR_UINT = 0,
        MAJOR_NEGINT = 1,
        MAJOR_BYTES = 2,
        MAJOR_TEXT = 3,
        MAJOR_ARRAY = 4,
        MAJOR_MAP = 5,
        MAJOR_TAG = 6,
        MAJOR_SIMPLE = 7,
};

enum {
        AI_1BYTE = 24,
        AI_2BYTES = 25,
        AI_4BYTES = 26,
        AI_8BYTES = 27,
        AI_INDEFINITE = 31,
};

enum {
        SIMPLE_FALSE = 20,
        SIMPLE_TRUE = 21,
        SIMPLE_NULL = 22,
        SIMPLE_UNDEFINED = 23,
};

/* ---- encoder ---- */

void cbor_buf_init(struct cbor_buf *b, size_t max)
{
        *b = (struct cbor_buf){.max = max};
}

void cbor_buf_free(struct cbor_buf *b)
{
        free(b->data);
        *b = (struct cbor_buf){.max = b->max};
}

void cbor_buf_reset(struct cbor_buf *b)
{
        b->len = 0;
        b->err = 0;
}

/* Makes room for n more bytes; false (and b->err set) if it cannot. */
static bool buf_reserve(struct cbor_buf *b, size_t n)
{
        size_t need, cap;
        uint8_t *p;

        if (b->err)
                return false;
        if (n > SIZE_MAX - b->len || (b->max && b->len + n > b->max)) {
                b->err = -EMSGSIZE;
                return false;
        }
        need = b->len + n;
        if (need <= b->cap)
                return true;
        cap = b->cap ? b->cap : 64;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (b->max && cap > b->max)
                cap = b->max;
        p = realloc(b->data, cap);
        if (!p) {
                b->err = -ENOMEM;
                return false;
        }
        b->data = p;
        b->cap = cap;
        return true;
}

void cbor_buf_append(struct cbor_buf *b, const void *data, size_t n)
{
        if (!buf_reserve(b, n) || n == 0)
                return;
        memcpy(b->data + b->len, data, n);
        b->len += n;
}

static void put_head(struct cbor_buf *b, unsigned major, uint64_t v)
{
        uint8_t h[9];
        size_t n, i;

        if (v < AI_1BYTE) {
                h[0] = (uint8_t)(major << 5 | v);
                n = 0;
        } else if (v <= UINT8_MAX) {
                h[0] = (uint8_t)(major << 5 | AI_1BYTE);
                n = 1;
        } else if (v <= UINT16_MAX) {
                h[0] = (uint8_t)(major << 5 | AI_2BYTES);
                n = 2;
        } else if (v <= UINT32_MAX) {
                h[0] = (uint8_t)(major << 5 | AI_4BYTES);
                n = 4;
        } else {
                h[0] = (uint8_t)(major << 5 | AI_8BYTES);
                n = 8;
        }
        for (i = 0; i < n; i++)
                h[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
        cbor_buf_append(b, h, 1 + n);
}

void cbor_put_uint(struct cbor_buf *b, uint64_t v)
{
        put_head(b, MAJOR_UINT, v);
}

void cbor_put_int(struct cbor_buf *b, int64_t v)
{
        if (v >= 0)
                put_head(b, MAJOR_UINT, (uint64_t)v);
        else /* -1 - v, computed without overflow for INT64_MIN */
                put_head(b, MAJOR_NEGINT, ~(uint64_t)v);
}

void cbor_put_bool(struct cbor_buf *b, bool v)
{
        put_head(b, MAJOR_SIMPLE, v ? SIMPLE_TRUE : SIMPLE_FALSE);
}

void cbor_put_null(struct cbor_buf *b)
{
        put_head(b, MAJOR_SIMPLE, SIMPLE_NULL);
}

void cbor_put_undefined(struct cbor_buf *b)
{
        put_head(b, MAJOR_SIMPLE, SIMPLE_UNDEFINED);
}

void cbor_put_simple(struct cbor_buf *b, uint8_t v)
{
        /* 20..23 have their own functions; 24..31 are not well-formed. */
        if (v >= SIMPLE_FALSE && v < 32) {
                if (!b->err)
                        b->err = -EINVAL;
                return;
        }
        put_head(b, MAJOR_SIMPLE, v);
}

void cbor_put_double(struct cbor_buf *b, double v)
{
        uint64_t bits;
        uint8_t h[9];
        size_t i;

        memcpy(&bits, &v, sizeof(bits));
        h[0] = MAJOR_SIMPLE << 5 | AI_8BYTES;
        for (i = 0; i < 8; i++)
                h[1 + i] = (uint8_t)(bits >> (8 * (7 - i)));
        cbor_buf_append(b, h, sizeof(h));
}

void cbor_put_tag(struct cbor_buf *b, uint64_t tag)
{
        put_head(b, MAJOR_TAG, tag);
}

void cbor_put_bytes(struct cbor_buf *b, const void *data, size_t n)
{
        put_head(b, MAJOR_BYTES, n);
        cbor_buf_append(b, data, n);
}

void cbor_put_text(struct cbor_buf *b, const char *s, size_t n)
{
        put_head(b, MAJOR_TEXT, n);
        cbor_buf_append(b, s, n);
}

void cbor_put_str(struct cbor_buf *b, const char *s)
{
        cbor_put_text(b, s, strlen(s));
}

void cbor_put_array(struct cbor_buf *b, size_t count)
{
        put_head(b, MAJOR_ARRAY, count);
}

void cbor_put_map(struct cbor_buf *b, size_t pairs)
{
        put_head(b, MAJOR_MAP, pairs);
}

/* ---- decoder ---- */

void cbor_reader_init(struct cbor_reader *r, const void *data, size_t n)
{
        r->p = data;
        r->end = n ? r->p + n : r->p; /* data may be NULL when n is 0 */
}

static size_t remaining(const struct cbor_reader *r)
{
        return (size_t)(r->end - r->p);
}

static uint64_t load_be(const uint8_t *p, size_t n)
{
        uint64_t v = 0;
        size_t i;

        for (i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

/* IEEE 754 binary16 to double, without libm: normal and infinite/NaN halves
 * are re-packed as binary32 bits; subnormals are mant * 2^-24 (exact). */
static double half_to_double(uint16_t h)
{
        uint32_t sign = (uint32_t)(h >> 15) << 31;
        uint32_t exp = (h >> 10) & 0x1f;
        uint32_t mant = h & 0x3ff;
        uint32_t bits;
        float f;

        if (exp == 0) {
                double d = (double)mant / 16777216.0;
                return sign ? -d : d;
        }
        if (exp == 31)
                bits = sign | 0xffu << 23 | mant << 13;
        else
                bits = sign | (exp + 112) << 23 | mant << 13;
        memcpy(&f, &bits, sizeof(f));
        return f;
}

/*
 * Reads one head: *major, *ai and the argument *v (for floats, the raw bits).
 * Checks that the argument bytes are present and rejects the reserved
 * additional-information values and indefinite lengths. Advances r->p past
 * the head only; the caller decides about what follows.
 */
static int read_head(struct cbor_reader *r, unsigned *major, unsigned *ai, uint64_t *v)
{
        size_t n;
        uint8_t ib;

        if (r->p >= r->end)
                return -EBADMSG;
        ib = r->p[0];
        *major = ib >> 5;
        *ai = ib & 0x1f;
        if (*ai < AI_1BYTE)
                n = 0;
        else if (*ai <= AI_8BYTES)
                n = (size_t)1 << (*ai - AI_1BYTE);
        else if (*ai == AI_INDEFINITE && *major >= MAJOR_BYTES && *major <= MAJOR_MAP)
                return -ENOTSUP;
        else /* 28..30 reserved; 31 on other majors is a stray "break" */
                return -EBADMSG;
        if (n >= remaining(r))
                return -EBADMSG;
        *v = n ? load_be(r->p + 1, n) : *ai;
        r->p += 1 + n;
        return 0;
}

/* Turns a head into an item; checks lengths and counts against the input.
 * A negative integer below INT64_MIN gives -ERANGE (*item untouched). */
static int head_to_item(const struct cbor_reader *r, unsigned major, unsigned ai, uint64_t v,
                        struct cbor_item *item)
{
        size_t left = remaining(r);

        switch (major) {
        case MAJOR_UINT:
                item->type = CBOR_UINT;
                item->u = v;
                return 0;
        case MAJOR_NEGINT:
                if (v > (uint64_t)INT64_MAX)
                        return -ERANGE;
                item->type = CBOR_NEGINT;
                item->i = -1 - (int64_t)v;
                return 0;
        case MAJOR_BYTES:
        case MAJOR_TEXT:
                if (v > left)
                        return -EBADMSG;
                item->type = major == MAJOR_BYTES ? CBOR_BYTES : CBOR_TEXT;
                item->str.ptr = r->p;
                item->str.len = (size_t)v;
                return 0;
        case MAJOR_ARRAY:
                if (v > left)
                        return -EBADMSG;
                item->type = CBOR_ARRAY;
                item->count = (size_t)v;
                return 0;
        case MAJOR_MAP:
                if (v > left / 2)
                        return -EBADMSG;
                item->type = CBOR_MAP;
                item->count = (size_t)v;
                return 0;
        case MAJOR_TAG:
                item->type = CBOR_TAG;
                item->u = v;
                return 0;
        default:
                break;
        }

        /* major 7 */
        switch (ai) {
        case SIMPLE_FALSE:
        case SIMPLE_TRUE:
                item->type = CBOR_BOOL;
                item->b = ai == SIMPLE_TRUE;
                return 0;
        case SIMPLE_NULL:
                item->type = CBOR_NULL;
                return 0;
        case SIMPLE_UNDEFINED:
                item->type = CBOR_UNDEFINED;
                return 0;
        case AI_1BYTE:
                if (v < 32) /* RFC 8949 §3.3: not well-formed */
                        return -EBADMSG;
                item->type = CBOR_SIMPLE;
                item->u = v;
                return 0;
        case AI_2BYTES:
                item->type = CBOR_FLOAT;
                item->f = half_to_double((uint16_t)v);
                return 0;
        case AI_4BYTES: {
                uint32_t bits = (uint32_t)v;
                float f;

                memcpy(&f, &bits, sizeof(f));
                item->type = CBOR_FLOAT;
                item->f = f;
                return 0;
        }
        case AI_8BYTES:
                item->type = CBOR_FLOAT;
                memcpy(&item->f, &v, sizeof(item->f));
                return 0;
        default: /* 0..19 */
                item->type = CBOR_SIMPLE;
                item->u = v;
                return 0;
        }
}

int cbor_next(struct cbor_reader *r, struct cbor_item *ret)
{
        const uint8_t *start = r->p;
        struct cbor_item item;
        unsigned major, ai;
        uint64_t v;
        int k;

        k = read_head(r, &major, &ai, &v);
        if (k < 0)
                return k;
        k = head_to_item(r, major, ai, v, &item);
        if (k < 0) {
                r->p = start;
                return k;
        }
        if (item.type == CBOR_BYTES || item.type == CBOR_TEXT)
                r->p += item.str.len;
        *ret = item;
        return 0;
}

int cbor_skip(struct cbor_reader *r)
{
        /* pending[d]: items still to read at nesting level d (0 = the item). */
        uint64_t pending[CBOR_MAX_DEPTH + 1];
        const uint8_t *start = r->p;
        size_t depth = 1;

        pending[0] = 1;
        while (depth > 0) {
                struct cbor_item item;
                unsigned major, ai;
                uint64_t v, children;
                int k;

                if (pending[depth - 1] == 0) {
                        depth--;
                        continue;
                }
                pending[depth - 1]--;

                k = read_head(r, &major, &ai, &v);
                if (k < 0)
                        goto fail;
                if (major == MAJOR_NEGINT) {
                        /* valid CBOR even when below INT64_MIN: nothing to check */
                        continue;
                }
                k = head_to_item(r, major, ai, v, &item);
                if (k < 0)
                        goto fail;
                switch (item.type) {
                case CBOR_BYTES:
                case CBOR_TEXT:
                        r->p += item.str.len;
                        continue;
                case CBOR_ARRAY:
                        children = item.count;
                        break;
                case CBOR_MAP:
                        children = 2 * (uint64_t)item.count;
                        break;
                case CBOR_TAG:
                        children = 1;
                        break;
                default:
                        continue;
                }
                if (children == 0)
                        continue;
                if (depth > CBOR_MAX_DEPTH) {
                        k = -EBADMSG;
                        goto fail;
                }
                pending[depth++] = children;
                continue;
        fail:
                r->p = start;
                return k;
        }
        return 0;
}

/* Reads the next item and requires its type; leaves the cursor alone if not. */
static int get_typed(struct cbor_reader *r, enum cbor_type type, struct cbor_item *item)
{
        const uint8_t *start = r->p;
        int k;

        k = cbor_next(r, item);
        if (k < 0)
                return k;
        if (item->type != type) {
                r->p = start;
                return -EBADMSG;
        }
        return 0;
}

int cbor_get_uint(struct cbor_reader *r, uint64_t *ret)
{
        struct cbor_item item;
        int k;

        k = get_typed(r, CBOR_UINT, &item);
        if (k < 0)
                return k;
        *ret = item.u;
        return 0;
}

int cbor_get_int(struct cbor_reader *r, int64_t *ret)
{
        const uint8_t *start = r->p;
        struct cbor_item item;
        int k;

        k = cbor_next(r, &item);
        if (k < 0)
                return k;
        if (item.type == CBOR_NEGINT) {
                *ret = item.i;
                return 0;
        }
        if (item.type == CBOR_UINT && item.u <= INT64_MAX) {
                *ret = (int64_t)item.u;
                return 0;
        }
        r->p = start;
        return item.type == CBOR_UINT ? -ERANGE : -EBADMSG;
}

int cbor_get_float(struct cbor_reader *r, double *ret)
{
        struct cbor_item item;
        int k;

        k = get_typed(r, CBOR_FLOAT, &item);
        if (k < 0)
                return k;
        *ret = item.f;
        return 0;
}

int cbor_get_bool(struct cbor_reader *r, bool *ret)
{
        struct cbor_item item;
        int k;

        k = get_typed(r, CBOR_BOOL, &item);
        if (k < 0)
                return k;
        *ret = item.b;
        return 0;
}

int cbor_get_text(struct cbor_reader *r, const char **ret, size_t *ret_len)
{
        struct cbor_item item;
        int k;

        k = get_typed(r, CBOR_TEXT, &item);
        if (k < 0)
                return k;
        *ret = (const char *)item.str.ptr;
        *ret_len = item.str.len;
        return 0;
}

int cbor_get_bytes(struct cbor_reader *r, const uint8_t **ret, size_t *ret_len)
{
        struct cbor_item item;
        int k;

        k = get_typed(r, CBOR_BYTES, &item);
        if (k < 0)
                return k;
        *ret = item.str.ptr;
        *ret_len = item.str.len;
        return 0;
}

int cbor_get_array(struct cbor_reader *r, size_t *ret_count)
{
        struct cbor_item item;
        int k;

        k = get_typed(r, CBOR_ARRAY, &item);
        if (k < 0)
                return k;
        *ret_count = item.count;
        return 0;
}

int cbor_get_map(struct cbor_reader *r, size_t *ret_pairs)
{
        struct cbor_item item;
        int k;

        k = get_typed(r, CBOR_MAP, &item);
        if (k < 0)
                return k;
        *ret_pairs = item.count;
        return 0;
}

int cbor_get_strdup(struct cbor_reader *r, size_t max, char **ret)
{
        const uint8_t *start = r->p;
        const char *s;
        size_t n;
        char *copy;
        int k;

        k = cbor_get_text(r, &s, &n);
        if (k < 0)
                return k;
        if (n > max || memchr(s, '\0', n)) {
                r->p = start;
                return n > max ? -E2BIG : -EBADMSG;
        }
        copy = malloc(n + 1);
        if (!copy) {
                r->p = start;
                return -ENOMEM;
        }
        memcpy(copy, s, n);
        copy[n] = '\0';
        *ret = copy;
        return 0;
}
