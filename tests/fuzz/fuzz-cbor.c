/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the CBOR decoder. Three walks over the same input
 * must agree with each other and with the encoder:
 *  - cbor_skip() item by item; a failure must leave the cursor in place;
 *  - a flat cbor_next() walk with an explicit stack of pending counts, the
 *    same nesting rule as cbor_skip(): where no item is a negative integer
 *    below INT64_MIN (cbor_next's -ERANGE), it must accept exactly what
 *    cbor_skip() accepts and end at the same place;
 *  - every item of a flat cbor_next() walk is re-encoded with the
 *    cbor_put_*() functions (shortest heads) and decoded again to the same
 *    items;
 *  - the typed getters at every item start: each one either fails without
 *    moving the cursor or agrees with cbor_next().
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITEMS 4096

static void encode_item(struct cbor_buf *b, const struct cbor_item *it)
{
        switch (it->type) {
        case CBOR_UINT:
                cbor_put_uint(b, it->u);
                break;
        case CBOR_NEGINT:
                cbor_put_int(b, it->i);
                break;
        case CBOR_BYTES:
                cbor_put_bytes(b, it->str.ptr, it->str.len);
                break;
        case CBOR_TEXT:
                cbor_put_text(b, (const char *)it->str.ptr, it->str.len);
                break;
        case CBOR_ARRAY:
                cbor_put_array(b, it->count);
                break;
        case CBOR_MAP:
                cbor_put_map(b, it->count);
                break;
        case CBOR_TAG:
                cbor_put_tag(b, it->u);
                break;
        case CBOR_BOOL:
                cbor_put_bool(b, it->b);
                break;
        case CBOR_NULL:
                cbor_put_null(b);
                break;
        case CBOR_UNDEFINED:
                cbor_put_undefined(b);
                break;
        case CBOR_SIMPLE:
                cbor_put_simple(b, (uint8_t)it->u);
                break;
        case CBOR_FLOAT:
                cbor_put_double(b, it->f);
                break;
        }
}

static void assert_same_item(const struct cbor_item *a, const struct cbor_item *b)
{
        assert(a->type == b->type);
        switch (a->type) {
        case CBOR_UINT:
        case CBOR_TAG:
        case CBOR_SIMPLE:
                assert(a->u == b->u);
                break;
        case CBOR_NEGINT:
                assert(a->i == b->i && a->i < 0);
                break;
        case CBOR_BYTES:
        case CBOR_TEXT:
                assert(a->str.len == b->str.len);
                assert(a->str.len == 0 || memcmp(a->str.ptr, b->str.ptr, a->str.len) == 0);
                break;
        case CBOR_ARRAY:
        case CBOR_MAP:
                assert(a->count == b->count);
                break;
        case CBOR_BOOL:
                assert(a->b == b->b);
                break;
        case CBOR_FLOAT:
                assert(memcmp(&a->f, &b->f, sizeof(double)) == 0);
                break;
        default:
                break;
        }
}

/* Skips one item with cbor_next() only; the same contract as cbor_skip(). */
static int walk_skip(struct cbor_reader *r, bool *saw_erange)
{
        uint64_t pending[CBOR_MAX_DEPTH + 1];
        const uint8_t *start = r->p;
        size_t depth = 1;

        pending[0] = 1;
        while (depth > 0) {
                struct cbor_item it;
                uint64_t children = 0;
                int k;

                if (pending[depth - 1] == 0) {
                        depth--;
                        continue;
                }
                pending[depth - 1]--;
                k = cbor_next(r, &it);
                if (k == -ERANGE)
                        *saw_erange = true;
                if (k < 0) {
                        r->p = start;
                        return k;
                }
                if (it.type == CBOR_ARRAY)
                        children = it.count;
                else if (it.type == CBOR_MAP)
                        children = 2 * (uint64_t)it.count;
                else if (it.type == CBOR_TAG)
                        children = 1;
                if (children == 0)
                        continue;
                if (depth > CBOR_MAX_DEPTH) {
                        r->p = start;
                        return -EBADMSG;
                }
                pending[depth++] = children;
        }
        return 0;
}

static void check_getters(const uint8_t *p, const uint8_t *end)
{
        struct cbor_reader r0, r;
        struct cbor_item it;
        int have;

        cbor_reader_init(&r0, p, (size_t)(end - p));
        r = r0;
        have = cbor_next(&r, &it) == 0;
        const uint8_t *after = r.p;

#define CHECK(call, ok_type)                                                                       \
        do {                                                                                       \
                r = r0;                                                                            \
                int k_ = (call);                                                                   \
                if (k_ < 0)                                                                        \
                        assert(r.p == r0.p);                                                       \
                else                                                                               \
                        assert(have && (ok_type) && r.p == after);                                 \
        } while (0)

        uint64_t u;
        int64_t i;
        bool b;
        double d;
        const char *s;
        const uint8_t *bp;
        size_t n;
        char *dup = NULL;

        CHECK(cbor_get_uint(&r, &u), it.type == CBOR_UINT && u == it.u);
        CHECK(cbor_get_int(&r, &i), (it.type == CBOR_UINT && (uint64_t)i == it.u) ||
                                            (it.type == CBOR_NEGINT && i == it.i));
        CHECK(cbor_get_bool(&r, &b), it.type == CBOR_BOOL && b == it.b);
        CHECK(cbor_get_float(&r, &d), it.type == CBOR_FLOAT);
        CHECK(cbor_get_text(&r, &s, &n), it.type == CBOR_TEXT && n == it.str.len);
        CHECK(cbor_get_bytes(&r, &bp, &n), it.type == CBOR_BYTES && n == it.str.len);
        CHECK(cbor_get_array(&r, &n), it.type == CBOR_ARRAY && n == it.count);
        CHECK(cbor_get_map(&r, &n), it.type == CBOR_MAP && n == it.count);
        CHECK(cbor_get_strdup(&r, 64, &dup),
              it.type == CBOR_TEXT && it.str.len <= 64 && strlen(dup) == it.str.len);
        free(dup);
#undef CHECK
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cbor_item items[MAX_ITEMS];
        size_t n_items = 0, enc_len, i;
        struct cbor_reader r, w;
        struct cbor_buf b;
        bool saw_erange = false;

        /* 1 + 2: cbor_skip() against the cbor_next() walk, item by item */
        cbor_reader_init(&r, data, size);
        cbor_reader_init(&w, data, size);
        while (!cbor_reader_done(&r)) {
                const uint8_t *before = r.p;
                int k1 = cbor_skip(&r), k2;

                if (k1 < 0) {
                        assert(r.p == before);
                } else {
                        assert(r.p > before);
                }
                k2 = walk_skip(&w, &saw_erange);
                if (!saw_erange) {
                        assert(k1 == k2);
                        assert(r.p == w.p);
                }
                if (k1 < 0 || k2 < 0)
                        break;
        }

        /* 3: flat walk, re-encode, decode again */
        cbor_reader_init(&r, data, size);
        while (n_items < MAX_ITEMS && !cbor_reader_done(&r)) {
                check_getters(r.p, r.end);
                if (cbor_next(&r, &items[n_items]) < 0)
                        break;
                n_items++;
        }
        cbor_buf_init(&b, 0);
        for (i = 0; i < n_items; i++)
                encode_item(&b, &items[i]);
        assert(b.err == 0);
        assert(b.len <= size + 8 * n_items); /* shortest heads (floats may widen) */
        /* Containers whose items were cut off in the input are still
         * announced; size bytes of padding (zeros: uint 0) satisfy any count
         * the input could carry, since counts are checked against the bytes
         * left. */
        enc_len = b.len;
        for (i = 0; i < size; i++)
                cbor_put_uint(&b, 0);
        cbor_reader_init(&r, b.data, b.len);
        for (i = 0; i < n_items; i++) {
                struct cbor_item again;

                assert(cbor_next(&r, &again) == 0);
                assert_same_item(&items[i], &again);
        }
        assert((size_t)(r.p - b.data) == enc_len);
        cbor_buf_free(&b);
        return 0;
}
