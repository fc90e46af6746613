/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the frame reader. The input is a byte stream; its
 * first byte picks how the stream is cut into reads (sizes drawn from the
 * stream itself) and whether bytes arrive through frame_reader_feed() or
 * frame_reader_space()/commit(). The frames that come out must be exactly
 * those a plain sequential parse of the whole stream (frame_parse_header)
 * finds, in order, and the reader must poison itself exactly where that
 * parse meets a bad length. The buffer may never exceed one wire frame plus
 * one read.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lib/core/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_READ 70000u

/* The sequential reference parse: the next frame at *off, 1 / 0 / -EBADMSG. */
static int ref_next(const uint8_t *s, size_t size, size_t *off, struct frame *f)
{
        uint32_t len, id;
        uint8_t flags;

        if (size - *off < 4)
                return 0;
        if (size - *off < FRAME_HEADER_LEN) {
                /* the length alone decides poisoning */
                uint8_t hdr[FRAME_HEADER_LEN] = {0};

                memcpy(hdr, s + *off, size - *off);
                return frame_parse_header(hdr, &len, &id, &flags) < 0 ? -EBADMSG : 0;
        }
        if (frame_parse_header(s + *off, &len, &id, &flags) < 0)
                return -EBADMSG;
        if (size - *off - 4 < len)
                return 0;
        f->id = id;
        f->flags = flags;
        f->body = s + *off + FRAME_HEADER_LEN;
        f->body_len = len - 5;
        *off += 4 + (size_t)len;
        return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct frame_reader fr;
        size_t off = 0, ref_off, sched = 0;
        uint8_t mode;
        int ref = 0;

        if (size < 1)
                return 0;
        mode = data[0];
        data++;
        size--;

        ref_off = 0;
        frame_reader_init(&fr);
        while (off < size) {
                size_t want;
                struct frame f, g;
                int k;

                /* read sizes: 1..256 from the stream, or everything */
                if (mode & 0x80)
                        want = size - off;
                else
                        want = 1 + data[sched++ % size] % ((mode & 0x3f) + 1);
                if (want > size - off)
                        want = size - off;
                if ((mode & 0x40) || fr.err) {
                        k = frame_reader_feed(&fr, data + off, want);
                        if (fr.err) {
                                assert(k == -EBADMSG);
                                break;
                        }
                        assert(k == 0);
                } else {
                        size_t avail = 0;
                        uint8_t *p = frame_reader_space(&fr, want, &avail);

                        assert(p);
                        assert(avail > 0);
                        if (want > avail)
                                want = avail;
                        memcpy(p, data + off, want);
                        frame_reader_commit(&fr, want);
                }
                off += want;
                assert(fr.cap <= 4 + FRAME_MAX_LEN + size);

                while ((k = frame_reader_next(&fr, &f)) == 1) {
                        ref = ref_next(data, off, &ref_off, &g);
                        assert(ref == 1);
                        assert(f.id == g.id && f.flags == g.flags && f.body_len == g.body_len);
                        assert(f.body_len == 0 || memcmp(f.body, g.body, f.body_len) == 0);
                }
                ref = ref_next(data, off, &ref_off, &g);
                assert(k == ref);
                if (k < 0) {
                        assert(frame_reader_next(&fr, &f) == -EBADMSG);
                        break;
                }
        }
        frame_reader_free(&fr);
        return 0;
}
