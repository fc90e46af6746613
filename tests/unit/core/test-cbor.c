/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the CBOR codec: exact encodings of boundary values (RFC 8949
 * appendix A where it has them), round trips of every type, and hostile
 * input: truncation at every offset, huge lengths, indefinite lengths,
 * reserved values, nesting past the cap.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/core/cbor.h"

/* Encodes with put, checks the bytes against the expected hex string. */
static void check_bytes(const struct cbor_buf *b, const char *hex)
{
        size_t n = strlen(hex) / 2, i;

        assert_int_equal(b->err, 0);
        assert_int_equal(b->len, n);
        for (i = 0; i < n; i++) {
                unsigned v;

                assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
                assert_int_equal(b->data[i], v);
        }
}

/* Hex string to bytes (test input). */
static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
        size_t n = strlen(hex) / 2, i;

        assert_true(n <= max);
        for (i = 0; i < n; i++) {
                unsigned v;

                assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
                out[i] = (uint8_t)v;
        }
        return n;
}

static void test_uint_boundaries(void **state)
{
        static const struct {
                uint64_t v;
                const char *hex;
        } cases[] = {
                {0, "00"},
                {1, "01"},
                {23, "17"},
                {24, "1818"},
                {255, "18ff"},
                {256, "190100"},
                {1000, "1903e8"},
                {65535, "19ffff"},
                {65536, "1a00010000"},
                {1000000, "1a000f4240"},
                {UINT32_MAX, "1affffffff"},
                {(uint64_t)1 << 32, "1b0000000100000000"},
                {1000000000000ull, "1b000000e8d4a51000"},
                {UINT64_MAX, "1bffffffffffffffff"},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cbor_buf b;
                struct cbor_reader r;
                uint64_t v;
                int64_t iv;

                cbor_buf_init(&b, 0);
                cbor_put_uint(&b, cases[i].v);
                check_bytes(&b, cases[i].hex);
                cbor_reader_init(&r, b.data, b.len);
                assert_int_equal(cbor_get_uint(&r, &v), 0);
                assert_true(v == cases[i].v);
                assert_true(cbor_reader_done(&r));

                cbor_reader_init(&r, b.data, b.len);
                if (cases[i].v <= INT64_MAX) {
                        assert_int_equal(cbor_get_int(&r, &iv), 0);
                        assert_true((uint64_t)iv == cases[i].v);
                } else {
                        assert_int_equal(cbor_get_int(&r, &iv), -ERANGE);
                        assert_ptr_equal(r.p, b.data); /* cursor kept */
                }
                cbor_buf_free(&b);
        }
}

static void test_int_boundaries(void **state)
{
        static const struct {
                int64_t v;
                const char *hex;
        } cases[] = {
                {0, "00"},
                {10, "0a"},
                {-1, "20"},
                {-10, "29"},
                {-24, "37"},
                {-25, "3818"},
                {-100, "3863"},
                {-256, "38ff"},
                {-257, "390100"},
                {-1000, "3903e7"},
                {-65536, "39ffff"},
                {-65537, "3a00010000"},
                {-4294967296ll, "3affffffff"},
                {-4294967297ll, "3b0000000100000000"},
                {INT64_MAX, "1b7fffffffffffffff"},
                {INT64_MIN, "3b7fffffffffffffff"},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cbor_buf b;
                struct cbor_reader r;
                struct cbor_item it;
                int64_t v;

                cbor_buf_init(&b, 0);
                cbor_put_int(&b, cases[i].v);
                check_bytes(&b, cases[i].hex);
                cbor_reader_init(&r, b.data, b.len);
                assert_int_equal(cbor_get_int(&r, &v), 0);
                assert_true(v == cases[i].v);
                assert_true(cbor_reader_done(&r));
                cbor_reader_init(&r, b.data, b.len);
                assert_int_equal(cbor_next(&r, &it), 0);
                assert_int_equal(it.type, cases[i].v < 0 ? CBOR_NEGINT : CBOR_UINT);
                cbor_buf_free(&b);
        }
}

static void test_negint_out_of_range(void **state)
{
        uint8_t in[16];
        size_t n = unhex("3b8000000000000000", in, sizeof(in)); /* -2^63 - 1 */
        struct cbor_reader r;
        struct cbor_item it;
        int64_t v;

        cbor_reader_init(&r, in, n);
        assert_int_equal(cbor_next(&r, &it), -ERANGE);
        assert_ptr_equal(r.p, in);
        assert_int_equal(cbor_get_int(&r, &v), -ERANGE);
        assert_ptr_equal(r.p, in);
        /* still valid CBOR: skippable inside unknown fields */
        assert_int_equal(cbor_skip(&r), 0);
        assert_true(cbor_reader_done(&r));

        n = unhex("3bffffffffffffffff", in, sizeof(in)); /* -2^64 */
        cbor_reader_init(&r, in, n);
        assert_int_equal(cbor_next(&r, &it), -ERANGE);
        assert_int_equal(cbor_skip(&r), 0);
}

static void test_strings(void **state)
{
        static const size_t lens[] = {0, 1, 23, 24, 255, 256, 65535, 65536};
        size_t i;

        for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                size_t n = lens[i], head = n < 24 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
                char *s = malloc(n + 1);
                struct cbor_buf b;
                struct cbor_reader r;
                const uint8_t *bp;
                const char *tp;
                size_t len;

                assert_non_null(s);
                memset(s, 'x', n);
                s[n] = '\0';
                cbor_buf_init(&b, 0);
                cbor_put_bytes(&b, s, n);
                cbor_put_text(&b, s, n);
                cbor_put_str(&b, s);
                assert_int_equal(b.err, 0);
                assert_int_equal(b.len, 3 * (head + n));
                assert_int_equal(b.data[0] >> 5, 2);
                assert_int_equal(b.data[head + n] >> 5, 3);

                cbor_reader_init(&r, b.data, b.len);
                assert_int_equal(cbor_get_bytes(&r, &bp, &len), 0);
                assert_int_equal(len, n);
                assert_memory_equal(bp, s, n);
                assert_int_equal(cbor_get_text(&r, &tp, &len), 0);
                assert_int_equal(len, n);
                assert_memory_equal(tp, s, n);
                char *copy = NULL;
                assert_int_equal(cbor_get_strdup(&r, n, &copy), 0);
                assert_string_equal(copy, s);
                free(copy);
                assert_true(cbor_reader_done(&r));

                if (n > 0) { /* one byte over the limit */
                        cbor_reader_init(&r, b.data + 2 * (head + n), head + n);
                        copy = NULL;
                        assert_int_equal(cbor_get_strdup(&r, n - 1, &copy), -E2BIG);
                        assert_null(copy);
                        assert_ptr_equal(r.p, b.data + 2 * (head + n));
                }
                cbor_buf_free(&b);
                free(s);
        }
}

static void test_strdup_rejects_nul(void **state)
{
        static const uint8_t in[] = {0x63, 'a', 0, 'b'};
        struct cbor_reader r;
        char *s = NULL;

        cbor_reader_init(&r, in, sizeof(in));
        assert_int_equal(cbor_get_strdup(&r, 100, &s), -EBADMSG);
        assert_null(s);
        assert_ptr_equal(r.p, in);
}

static void test_containers_and_simple(void **state)
{
        struct cbor_buf b;
        struct cbor_reader r;
        struct cbor_item it;
        size_t n;
        bool bv;
        double d;

        cbor_buf_init(&b, 0);
        cbor_put_array(&b, 3);
        cbor_put_bool(&b, true);
        cbor_put_bool(&b, false);
        cbor_put_null(&b);
        cbor_put_map(&b, 2);
        cbor_put_str(&b, "a");
        cbor_put_undefined(&b);
        cbor_put_str(&b, "b");
        cbor_put_tag(&b, 1);
        cbor_put_uint(&b, 1363896240);
        cbor_put_simple(&b, 16);
        cbor_put_simple(&b, 255);
        cbor_put_double(&b, 1.1);
        cbor_put_array(&b, 0);
        cbor_put_map(&b, 0);
        check_bytes(&b, "83f5f4"
                        "f6"
                        "a2"
                        "6161f7"
                        "6162c11a514b67b0"
                        "f0"
                        "f8ff"
                        "fb3ff199999999999a"
                        "80"
                        "a0");

        cbor_reader_init(&r, b.data, b.len);
        assert_int_equal(cbor_get_array(&r, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(cbor_get_bool(&r, &bv), 0);
        assert_true(bv);
        assert_int_equal(cbor_get_bool(&r, &bv), 0);
        assert_false(bv);
        assert_int_equal(cbor_next(&r, &it), 0);
        assert_int_equal(it.type, CBOR_NULL);
        assert_int_equal(cbor_get_map(&r, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(cbor_skip(&r), 0); /* "a" */
        assert_int_equal(cbor_next(&r, &it), 0);
        assert_int_equal(it.type, CBOR_UNDEFINED);
        assert_int_equal(cbor_skip(&r), 0); /* "b" */
        assert_int_equal(cbor_next(&r, &it), 0);
        assert_int_equal(it.type, CBOR_TAG);
        assert_int_equal(it.u, 1);
        assert_int_equal(cbor_next(&r, &it), 0);
        assert_int_equal(it.type, CBOR_UINT);
        assert_int_equal(cbor_next(&r, &it), 0);
        assert_int_equal(it.type, CBOR_SIMPLE);
        assert_int_equal(it.u, 16);
        assert_int_equal(cbor_next(&r, &it), 0);
        assert_int_equal(it.type, CBOR_SIMPLE);
        assert_int_equal(it.u, 255);
        assert_int_equal(cbor_get_float(&r, &d), 0);
        assert_true(d == 1.1);
        assert_int_equal(cbor_get_array(&r, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(cbor_get_map(&r, &n), 0);
        assert_int_equal(n, 0);
        assert_true(cbor_reader_done(&r));

        /* one cbor_skip() steps over the whole document piece by piece */
        cbor_reader_init(&r, b.data, b.len);
        for (n = 0; !cbor_reader_done(&r); n++)
                assert_int_equal(cbor_skip(&r), 0);
        assert_int_equal(n, 7); /* array, map, two simple values, float, array, map */
        cbor_buf_free(&b);
}

static void test_floats(void **state)
{
        static const struct {
                const char *hex;
                double v;
        } cases[] = {
                {"f90000", 0.0},
                {"f98000", -0.0},
                {"f93c00", 1.0},
                {"f93e00", 1.5},
                {"f97bff", 65504.0},
                {"f90001", 5.960464477539063e-8},
                {"f90400", 0.00006103515625},
                {"f9c400", -4.0},
                {"fa47c35000", 100000.0},
                {"fa7f7fffff", 3.4028234663852886e+38},
                {"fb3ff199999999999a", 1.1},
                {"fbc010666666666666", -4.1},
                {"fb7e37e43c8800759c", 1.0e+300},
        };
        uint8_t in[16];
        size_t i, n;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cbor_reader r;
                struct cbor_item it;

                n = unhex(cases[i].hex, in, sizeof(in));
                cbor_reader_init(&r, in, n);
                assert_int_equal(cbor_next(&r, &it), 0);
                assert_int_equal(it.type, CBOR_FLOAT);
                assert_true(it.f == cases[i].v);
                assert_int_equal(signbit(it.f) != 0, signbit(cases[i].v) != 0);
                assert_true(cbor_reader_done(&r));
        }

        /* infinities and NaN in all three widths */
        static const char *const inf[] = {"f97c00", "fa7f800000", "fb7ff0000000000000"};
        static const char *const ninf[] = {"f9fc00", "faff800000", "fbfff0000000000000"};
        static const char *const nan[] = {"f97e00", "fa7fc00000", "fb7ff8000000000000"};
        for (i = 0; i < 3; i++) {
                struct cbor_reader r;
                double d;

                n = unhex(inf[i], in, sizeof(in));
                cbor_reader_init(&r, in, n);
                assert_int_equal(cbor_get_float(&r, &d), 0);
                assert_true(isinf(d) && d > 0);
                n = unhex(ninf[i], in, sizeof(in));
                cbor_reader_init(&r, in, n);
                assert_int_equal(cbor_get_float(&r, &d), 0);
                assert_true(isinf(d) && d < 0);
                n = unhex(nan[i], in, sizeof(in));
                cbor_reader_init(&r, in, n);
                assert_int_equal(cbor_get_float(&r, &d), 0);
                assert_true(isnan(d));
        }

        /* double round trip, including extremes */
        static const double ds[] = {0.0, -0.0, 1e-310, -1.5, 1.7976931348623157e308};
        for (i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
                struct cbor_buf b;
                struct cbor_reader r;
                double d;

                cbor_buf_init(&b, 0);
                cbor_put_double(&b, ds[i]);
                assert_int_equal(b.len, 9);
                cbor_reader_init(&r, b.data, b.len);
                assert_int_equal(cbor_get_float(&r, &d), 0);
                assert_memory_equal(&d, &ds[i], sizeof(d));
                cbor_buf_free(&b);
        }
}

static void test_wrong_type_keeps_cursor(void **state)
{
        static const uint8_t in[] = {0x63, 'a', 'b', 'c'};
        struct cbor_reader r;
        const uint8_t *bp;
        uint64_t u;
        int64_t i;
        bool bv;
        size_t n;
        double d;

        cbor_reader_init(&r, in, sizeof(in));
        assert_int_equal(cbor_get_uint(&r, &u), -EBADMSG);
        assert_int_equal(cbor_get_int(&r, &i), -EBADMSG);
        assert_int_equal(cbor_get_bool(&r, &bv), -EBADMSG);
        assert_int_equal(cbor_get_bytes(&r, &bp, &n), -EBADMSG);
        assert_int_equal(cbor_get_array(&r, &n), -EBADMSG);
        assert_int_equal(cbor_get_map(&r, &n), -EBADMSG);
        assert_int_equal(cbor_get_float(&r, &d), -EBADMSG);
        assert_ptr_equal(r.p, in);
        assert_int_equal(cbor_skip(&r), 0);
        assert_true(cbor_reader_done(&r));
        /* reading past the end */
        assert_int_equal(cbor_get_uint(&r, &u), -EBADMSG);
        assert_int_equal(cbor_skip(&r), -EBADMSG);
}

/* A document that uses every head size and type. */
static void build_sample(struct cbor_buf *b)
{
        uint8_t blob[300];

        memset(blob, 0xab, sizeof(blob));
        cbor_buf_init(b, 0);
        cbor_put_map(b, 4);
        cbor_put_str(b, "argv");
        cbor_put_array(b, 2);
        cbor_put_str(b, "/bin/sh");
        cbor_put_str(b, "-c");
        cbor_put_str(b, "n");
        cbor_put_array(b, 5);
        cbor_put_uint(b, 70000);
        cbor_put_int(b, INT64_MIN);
        cbor_put_uint(b, UINT64_MAX);
        cbor_put_tag(b, 300);
        cbor_put_double(b, 2.5);
        cbor_put_null(b);
        cbor_put_str(b, "b");
        cbor_put_bytes(b, blob, sizeof(blob));
        cbor_put_str(b, "m");
        cbor_put_map(b, 1);
        cbor_put_uint(b, 24);
        cbor_put_bool(b, true);
        assert_int_equal(b->err, 0);
}

static void test_truncated_every_offset(void **state)
{
        struct cbor_buf b;
        size_t cut;

        build_sample(&b);
        for (cut = 0; cut < b.len; cut++) {
                uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
                struct cbor_reader r;

                assert_non_null(copy);
                memcpy(copy, b.data, cut);
                cbor_reader_init(&r, copy, cut);
                assert_int_equal(cbor_skip(&r), -EBADMSG);
                assert_ptr_equal(r.p, copy);

                /* a manual walk must fail somewhere and never read past the end */
                int k = 0;
                while (!cbor_reader_done(&r) && k == 0) {
                        struct cbor_item it;

                        k = cbor_next(&r, &it);
                }
                free(copy);
        }
        {
                struct cbor_reader r;

                cbor_reader_init(&r, b.data, b.len);
                assert_int_equal(cbor_skip(&r), 0);
                assert_true(cbor_reader_done(&r));
        }
        cbor_buf_free(&b);
}

static void test_hostile_lengths(void **state)
{
        static const char *const cases[] = {
                "5bffffffffffffffff00",   /* bytes, 2^64-1 */
                "7bffffffffffffffff00",   /* text, 2^64-1 */
                "7b800000000000000000",   /* text, 2^63 */
                "5b000000010000000000",   /* bytes, 2^32 */
                "5affffffff00",           /* bytes, 2^32-1 */
                "5a0000000200",           /* bytes, 2, 1 present */
                "9bffffffffffffffff00",   /* array, 2^64-1 */
                "9affffffff00",           /* array, 2^32-1 */
                "bbffffffffffffffff0000", /* map, 2^64-1 */
                "bb800000000000000000",   /* map, 2^63: 2*count wraps */
                "b8020102",               /* map, 2 pairs, 1 present */
                "83010203ff",             /* fine array then a stray break */
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint8_t in[32];
                size_t n = unhex(cases[i], in, sizeof(in));
                struct cbor_reader r;
                struct cbor_item it;
                int k;

                cbor_reader_init(&r, in, n);
                if (i == sizeof(cases) / sizeof(cases[0]) - 1) {
                        assert_int_equal(cbor_skip(&r), 0);
                        assert_int_equal(cbor_next(&r, &it), -EBADMSG);
                        continue;
                }
                k = cbor_next(&r, &it);
                if (k == 0) { /* a plausible head, but the items are not there */
                        assert_true(it.type == CBOR_ARRAY || it.type == CBOR_MAP);
                        cbor_reader_init(&r, in, n);
                }
                assert_int_equal(cbor_skip(&r), -EBADMSG);
                assert_ptr_equal(r.p, in);
        }
}

static void test_indefinite_and_reserved(void **state)
{
        unsigned major, ai;

        for (major = 0; major < 8; major++) {
                for (ai = 28; ai < 32; ai++) {
                        uint8_t in[10] = {(uint8_t)(major << 5 | ai)};
                        struct cbor_reader r;
                        struct cbor_item it;
                        int want = ai == 31 && major >= 2 && major <= 5 ? -ENOTSUP : -EBADMSG;

                        cbor_reader_init(&r, in, sizeof(in));
                        assert_int_equal(cbor_next(&r, &it), want);
                        assert_int_equal(cbor_skip(&r), want);
                        assert_ptr_equal(r.p, in);
                }
        }
        /* one-byte simple values below 32 are not well-formed */
        for (ai = 0; ai < 32; ai++) {
                uint8_t in[2] = {0xf8, (uint8_t)ai};
                struct cbor_reader r;
                struct cbor_item it;

                cbor_reader_init(&r, in, sizeof(in));
                assert_int_equal(cbor_next(&r, &it), -EBADMSG);
        }
        /* an indefinite string nested in an array */
        {
                static const uint8_t in[] = {0x82, 0x01, 0x7f, 0x61, 'a', 0xff};
                struct cbor_reader r;

                cbor_reader_init(&r, in, sizeof(in));
                assert_int_equal(cbor_skip(&r), -ENOTSUP);
        }
        /* the encoder refuses the reserved simple values */
        {
                struct cbor_buf b;

                cbor_buf_init(&b, 0);
                cbor_put_simple(&b, 20);
                assert_int_equal(b.err, -EINVAL);
                cbor_put_uint(&b, 1);
                assert_int_equal(b.len, 0);
                cbor_buf_free(&b);
        }
}

/* depth nested arrays (or tags) around a 0. */
static void build_nested(struct cbor_buf *b, size_t depth, bool tags)
{
        size_t i;

        cbor_buf_init(b, 0);
        for (i = 0; i < depth; i++) {
                if (tags)
                        cbor_put_tag(b, 55799);
                else if (i % 2)
                        cbor_put_array(b, 1);
                else {
                        cbor_put_map(b, 1);
                        cbor_put_uint(b, i);
                }
        }
        cbor_put_uint(b, 0);
        assert_int_equal(b->err, 0);
}

static void test_nesting_cap(void **state)
{
        static const size_t depths[] = {
                1, CBOR_MAX_DEPTH - 1, CBOR_MAX_DEPTH, CBOR_MAX_DEPTH + 1, 1000, 200000};
        size_t i;
        int tags;

        for (tags = 0; tags < 2; tags++) {
                for (i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
                        struct cbor_buf b;
                        struct cbor_reader r;

                        build_nested(&b, depths[i], tags);
                        cbor_reader_init(&r, b.data, b.len);
                        if (depths[i] <= CBOR_MAX_DEPTH) {
                                assert_int_equal(cbor_skip(&r), 0);
                                assert_true(cbor_reader_done(&r));
                        } else {
                                assert_int_equal(cbor_skip(&r), -EBADMSG);
                                assert_ptr_equal(r.p, b.data);
                        }
                        cbor_buf_free(&b);
                }
        }
}

static void test_wide_containers(void **state)
{
        /* many siblings are fine: only depth is capped */
        struct cbor_buf b;
        struct cbor_reader r;
        size_t i;

        cbor_buf_init(&b, 0);
        cbor_put_array(&b, 100000);
        for (i = 0; i < 100000; i++)
                cbor_put_array(&b, 0);
        cbor_reader_init(&r, b.data, b.len);
        assert_int_equal(cbor_skip(&r), 0);
        assert_true(cbor_reader_done(&r));
        cbor_buf_free(&b);
}

static void test_encoder_limit(void **state)
{
        struct cbor_buf b;
        static const char text[] = "0123456789abcdef";

        cbor_buf_init(&b, 10);
        cbor_put_uint(&b, 1);
        cbor_put_str(&b, text);
        assert_int_equal(b.err, -EMSGSIZE);
        assert_int_equal(b.len, 2); /* the head went in, the text did not */
        cbor_put_uint(&b, 2);       /* sticky: nothing more */
        assert_int_equal(b.len, 2);
        assert_true(b.cap <= 10);

        cbor_buf_reset(&b);
        assert_int_equal(b.err, 0);
        assert_int_equal(b.len, 0);
        cbor_put_text(&b, text, 9);
        check_bytes(&b, "69303132333435363738");
        cbor_put_null(&b);
        assert_int_equal(b.err, -EMSGSIZE);
        cbor_buf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.max, 10);

        /* no limit: grows through many reallocations */
        cbor_buf_init(&b, 0);
        for (size_t i = 0; i < 100000; i++)
                cbor_put_uint(&b, 1000);
        assert_int_equal(b.err, 0);
        assert_int_equal(b.len, 300000);
        cbor_buf_append(&b, NULL, 0);
        assert_int_equal(b.err, 0);
        cbor_buf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_uint_boundaries),
                cmocka_unit_test(test_int_boundaries),
                cmocka_unit_test(test_negint_out_of_range),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_strdup_rejects_nul),
                cmocka_unit_test(test_containers_and_simple),
                cmocka_unit_test(test_floats),
                cmocka_unit_test(test_wrong_type_keeps_cursor),
                cmocka_unit_test(test_truncated_every_offset),
                cmocka_unit_test(test_hostile_lengths),
                cmocka_unit_test(test_indefinite_and_reserved),
                cmocka_unit_test(test_nesting_cap),
                cmocka_unit_test(test_wide_containers),
                cmocka_unit_test(test_encoder_limit),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
