/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the frame layer: the exact header bytes, hostile lengths,
 * and a stream of frames delivered one byte at a time, in random chunks
 * (through frame_reader_space/commit and through frame_reader_feed), and as
 * frames of the largest allowed size.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/core/frame.h"
#include "lib/core/macro.h"

static void test_begin_end(void **state)
{
        static const uint8_t want[] = {0, 0, 0, 8, 0x01, 0x02, 0x03, 0x04, 0x06, 'a', 'b', 'c'};
        struct cbor_buf b;
        size_t start;
        uint32_t len, id;
        uint8_t flags;

        cbor_buf_init(&b, 0);
        start = frame_begin(&b, 0x01020304, FRAME_SESSION_START | FRAME_SHUTDOWN);
        assert_int_equal(start, 0);
        cbor_buf_append(&b, "abc", 3);
        assert_int_equal(frame_end(&b, start), 0);
        assert_int_equal(b.len, sizeof(want));
        assert_memory_equal(b.data, want, sizeof(want));
        assert_int_equal(frame_parse_header(b.data, &len, &id, &flags), 0);
        assert_int_equal(len, 8);
        assert_int_equal(id, 0x01020304);
        assert_int_equal(flags, 6);

        /* a second frame after the first, empty body */
        start = frame_begin(&b, 7, FRAME_TERMINAL);
        assert_int_equal(start, sizeof(want));
        assert_int_equal(frame_end(&b, start), 0);
        assert_int_equal(frame_parse_header(b.data + start, &len, &id, &flags), 0);
        assert_int_equal(len, 5);
        assert_int_equal(id, 7);
        assert_int_equal(flags, FRAME_TERMINAL);

        /* frame_end without a whole header, or with a start past the end */
        assert_int_equal(frame_end(&b, b.len + 1), -EINVAL);
        cbor_buf_append(&b, "xy", 2);
        assert_int_equal(frame_end(&b, b.len - 2), -EINVAL);
        assert_int_equal(b.len, sizeof(want) + FRAME_HEADER_LEN);
        cbor_buf_free(&b);
}

static void test_parse_header_lengths(void **state)
{
        static const struct {
                uint32_t len;
                int ret;
        } cases[] = {
                {0, -EBADMSG},
                {4, -EBADMSG},
                {5, 0},
                {6, 0},
                {FRAME_MAX_LEN, 0},
                {FRAME_MAX_LEN + 1, -EBADMSG},
                {0x80000000u, -EBADMSG},
                {UINT32_MAX, -EBADMSG},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint8_t hdr[FRAME_HEADER_LEN] = {
                        (uint8_t)(cases[i].len >> 24),
                        (uint8_t)(cases[i].len >> 16),
                        (uint8_t)(cases[i].len >> 8),
                        (uint8_t)cases[i].len,
                        0xff,
                        0xff,
                        0xff,
                        0xfe,
                        0x80,
                };
                uint32_t len = 0xdead, id = 0xdead;
                uint8_t flags = 0xaa;

                assert_int_equal(frame_parse_header(hdr, &len, &id, &flags), cases[i].ret);
                if (cases[i].ret == 0) {
                        assert_int_equal(len, cases[i].len);
                        assert_int_equal(id, 0xfffffffe);
                        assert_int_equal(flags, 0x80);
                } else { /* out-parameters untouched */
                        assert_int_equal(len, 0xdead);
                        assert_int_equal(id, 0xdead);
                        assert_int_equal(flags, 0xaa);
                }
        }
}

static void test_frame_end_too_big(void **state)
{
        struct cbor_buf b;
        uint8_t *body = calloc(1, FRAME_MAX_BODY + 1);
        size_t start;
        struct frame_reader fr;
        struct frame f;

        assert_non_null(body);
        cbor_buf_init(&b, 0);
        /* exactly the largest body */
        start = frame_begin(&b, 1, 0);
        cbor_buf_append(&b, body, FRAME_MAX_BODY);
        assert_int_equal(frame_end(&b, start), 0);
        assert_int_equal(b.len, 4 + FRAME_MAX_LEN);
        /* one byte more fails and removes only the partial frame */
        start = frame_begin(&b, 2, 0);
        cbor_buf_append(&b, body, FRAME_MAX_BODY + 1);
        assert_int_equal(frame_end(&b, start), -EMSGSIZE);
        assert_int_equal(b.len, 4 + FRAME_MAX_LEN);

        /* the largest frame passes through a reader */
        frame_reader_init(&fr);
        assert_int_equal(frame_reader_feed(&fr, b.data, b.len), 0);
        assert_int_equal(frame_reader_next(&fr, &f), 1);
        assert_int_equal(f.id, 1);
        assert_int_equal(f.body_len, FRAME_MAX_BODY);
        assert_int_equal(frame_reader_next(&fr, &f), 0);
        frame_reader_free(&fr);

        /* a buffer that failed earlier: frame_end reports it */
        cbor_buf_free(&b);
        cbor_buf_init(&b, 16);
        start = frame_begin(&b, 3, 0);
        cbor_buf_append(&b, body, 100);
        assert_int_equal(frame_end(&b, start), -EMSGSIZE);
        assert_int_equal(b.len, 0);
        cbor_buf_free(&b);
        free(body);
}

/* A stream of n frames whose bodies are (id, len) derived; lens cover 0,
 * small, around the header size and a few KiB. */
struct stream {
        uint8_t *data;
        size_t len;
        size_t n;
};

static size_t body_len_of(size_t i)
{
        static const size_t lens[] = {0, 1, 3, 4, 5, 8, 9, 100, 4091, 4096, 5000, 70000};

        return lens[i % (sizeof(lens) / sizeof(lens[0]))];
}

static void build_stream(struct stream *s, size_t n)
{
        struct cbor_buf b;
        size_t i, j;

        cbor_buf_init(&b, 0);
        for (i = 0; i < n; i++) {
                size_t start = frame_begin(&b, (uint32_t)i, (uint8_t)(i & 7));
                size_t bl = body_len_of(i);

                for (j = 0; j < bl; j++) {
                        uint8_t c = (uint8_t)(i * 31 + j);

                        cbor_buf_append(&b, &c, 1);
                }
                assert_int_equal(frame_end(&b, start), 0);
        }
        s->data = b.data;
        s->len = b.len;
        s->n = n;
}

static void check_frame(const struct frame *f, size_t i)
{
        size_t j, bl = body_len_of(i);

        assert_int_equal(f->id, i);
        assert_int_equal(f->flags, i & 7);
        assert_int_equal(f->body_len, bl);
        for (j = 0; j < bl; j++)
                if (f->body[j] != (uint8_t)(i * 31 + j))
                        fail_msg("frame %zu byte %zu differs", i, j);
}

/* Delivers the stream in chunks (size from chunk(), via space/commit when
 * use_space, else via feed) and checks every frame comes out in order. */
static void run_stream(const struct stream *s, size_t (*chunk)(size_t off), bool use_space)
{
        struct frame_reader fr;
        struct frame f;
        size_t off = 0, got = 0;
        int r;

        frame_reader_init(&fr);
        while (off < s->len) {
                size_t want = chunk(off); /* once: MIN() evaluates twice */

                want = MIN(want, s->len - off);

                if (use_space) {
                        size_t avail = 0;
                        uint8_t *p = frame_reader_space(&fr, want, &avail);

                        assert_non_null(p);
                        assert_true(avail > 0);
                        want = MIN(want, avail);
                        memcpy(p, s->data + off, want);
                        frame_reader_commit(&fr, want);
                } else {
                        assert_int_equal(frame_reader_feed(&fr, s->data + off, want), 0);
                }
                off += want;
                while ((r = frame_reader_next(&fr, &f)) == 1)
                        check_frame(&f, got++);
                assert_int_equal(r, 0);
                /* never more than one frame on the wire plus one chunk */
                assert_true(fr.cap <= 4 + FRAME_MAX_LEN + 70000);
        }
        assert_int_equal(got, s->n);
        assert_int_equal(frame_reader_next(&fr, &f), 0);
        frame_reader_free(&fr);
}

static size_t chunk_one(size_t off)
{
        return 1;
}

static size_t chunk_random(size_t off)
{
        static const size_t sizes[] = {1, 2, 3, 4, 5, 8, 9, 10, 13, 100, 1000, 4096, 65536};

        return sizes[(size_t)rand() % (sizeof(sizes) / sizeof(sizes[0]))];
}

static size_t chunk_huge(size_t off)
{
        return SIZE_MAX;
}

static void test_stream_one_byte(void **state)
{
        struct stream s;

        build_stream(&s, 30);
        run_stream(&s, chunk_one, true);
        run_stream(&s, chunk_one, false);
        free(s.data);
}

static void test_stream_random_chunks(void **state)
{
        struct stream s;
        unsigned seed;

        build_stream(&s, 200);
        for (seed = 1; seed <= 20; seed++) {
                srand(seed);
                run_stream(&s, chunk_random, seed % 2);
        }
        run_stream(&s, chunk_huge, false); /* all at once */
        run_stream(&s, chunk_huge, true);  /* as much as space() offers */
        free(s.data);
}

static void test_space_is_capped(void **state)
{
        struct frame_reader fr;
        size_t avail;
        uint8_t *p;

        /* asking for more than a frame gives at most one frame's worth */
        frame_reader_init(&fr);
        p = frame_reader_space(&fr, SIZE_MAX, &avail);
        assert_non_null(p);
        assert_int_equal(avail, 4 + FRAME_MAX_LEN);
        /* the start of a maximal frame, then all of it: still no growth */
        p[0] = (uint8_t)(FRAME_MAX_LEN >> 24);
        p[1] = (uint8_t)(FRAME_MAX_LEN >> 16);
        p[2] = (uint8_t)(FRAME_MAX_LEN >> 8);
        p[3] = (uint8_t)FRAME_MAX_LEN;
        memset(p + 4, 0, avail - 4);
        frame_reader_commit(&fr, avail);
        p = frame_reader_space(&fr, 1, &avail);
        assert_non_null(p);
        assert_int_equal(avail, 0);  /* take the frame first */
        frame_reader_commit(&fr, 5); /* commit past the space is clamped */
        assert_int_equal(fr.len, fr.cap);
        struct frame f;
        assert_int_equal(frame_reader_next(&fr, &f), 1);
        assert_int_equal(f.body_len, FRAME_MAX_BODY);
        p = frame_reader_space(&fr, 1, &avail);
        assert_non_null(p);
        assert_int_equal(avail, 4 + FRAME_MAX_LEN);
        frame_reader_free(&fr);
}

static void test_hostile_lengths_poison(void **state)
{
        static const uint32_t bad[] = {0, 1, 4, FRAME_MAX_LEN + 1, UINT32_MAX};
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                /* a good frame first, then the bad length */
                uint8_t in[] = {0,
                                0,
                                0,
                                6,
                                0,
                                0,
                                0,
                                9,
                                0,
                                'x',
                                (uint8_t)(bad[i] >> 24),
                                (uint8_t)(bad[i] >> 16),
                                (uint8_t)(bad[i] >> 8),
                                (uint8_t)bad[i],
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0};
                struct frame_reader fr;
                struct frame f;
                size_t avail;

                frame_reader_init(&fr);
                assert_int_equal(frame_reader_feed(&fr, in, sizeof(in)), 0);
                assert_int_equal(frame_reader_next(&fr, &f), 1);
                assert_int_equal(f.id, 9);
                assert_int_equal(f.body_len, 1);
                assert_int_equal(frame_reader_next(&fr, &f), -EBADMSG);
                assert_int_equal(frame_reader_next(&fr, &f), -EBADMSG); /* sticky */
                assert_int_equal(frame_reader_feed(&fr, in, sizeof(in)), -EBADMSG);
                assert_int_equal(frame_reader_next(&fr, &f), -EBADMSG);
                /* space() recycles the buffer: a poisoned reader holds nothing */
                assert_non_null(frame_reader_space(&fr, 16, &avail));
                assert_int_equal(fr.len, 0);
                frame_reader_commit(&fr, 16);
                assert_int_equal(frame_reader_next(&fr, &f), -EBADMSG);
                frame_reader_free(&fr);
        }

        /* the bad length is noticed as soon as its 4 bytes are there */
        {
                static const uint8_t in[] = {0xff, 0xff, 0xff, 0xff};
                struct frame_reader fr;
                struct frame f;

                frame_reader_init(&fr);
                assert_int_equal(frame_reader_feed(&fr, in, 3), 0);
                assert_int_equal(frame_reader_next(&fr, &f), 0);
                assert_int_equal(frame_reader_feed(&fr, in + 3, 1), 0);
                assert_int_equal(frame_reader_next(&fr, &f), -EBADMSG);
                frame_reader_free(&fr);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_begin_end),
                cmocka_unit_test(test_parse_header_lengths),
                cmocka_unit_test(test_frame_end_too_big),
                cmocka_unit_test(test_stream_one_byte),
                cmocka_unit_test(test_stream_random_chunks),
                cmocka_unit_test(test_space_is_capped),
                cmocka_unit_test(test_hostile_lengths_poison),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
