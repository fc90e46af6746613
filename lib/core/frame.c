/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: framing of the host/agent byte stream.
 *
 * Reading: the frame_reader keeps one buffer; bytes [start, len) are
 * received but not yet handed out. frame_reader_next() looks at the 4-byte
 * length at `start`, poisons the reader if it is outside [5, FRAME_MAX_LEN]
 * (a stream cannot be resynchronised after a bad length), and yields a frame
 * once all of it is held; the frame points into the buffer. Consumed bytes
 * are reclaimed lazily: when the reader is empty the indices go back to 0,
 * and frame_reader_space() slides the unconsumed tail to the front before it
 * grows anything. Growth through frame_reader_space() stops at one whole
 * frame on the wire (4 + FRAME_MAX_LEN bytes), so a peer cannot make us hold
 * more than that (the space offered may then be smaller than asked for, and
 * is 0 while whole frames wait to be taken). frame_reader_feed() copies what
 * the caller already holds and may exceed that cap by as much. A poisoned
 * reader discards what it is given.
 *
 * Writing: frame_begin() appends a header with a zero length and remembers
 * where it starts; frame_end() patches the length once the body is there, or
 * removes the partial frame from the buffer if it failed.
 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* One whole frame as it travels: the length field and what it counts. */
#define FRAME_WIRE_MAX ((size_t)FRAME_MAX_LEN + 4u)

static void store_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t load_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool frame_len_ok(uint32_t len)
{
        return len >= 5 && len <= FRAME_MAX_LEN;
}

void frame_reader_init(struct frame_reader *fr)
{
        *fr = (struct frame_reader){0};
}

void frame_reader_free(struct frame_reader *fr)
{
        free(fr->buf);
        *fr = (struct frame_reader){0};
}

/* Slides the unconsumed bytes to the front of the buffer. */
static void compact(struct frame_reader *fr)
{
        if (fr->start == 0)
                return;
        memmove(fr->buf, fr->buf + fr->start, fr->len - fr->start);
        fr->len -= fr->start;
        fr->start = 0;
}

/* Makes room for `want` more bytes, growing to at most `limit` in all. */
static int reserve(struct frame_reader *fr, size_t want, size_t limit)
{
        size_t need, cap;
        uint8_t *p;

        if (fr->cap - fr->len >= want)
                return 0;
        compact(fr);
        if (fr->cap - fr->len >= want)
                return 0;
        need = want > SIZE_MAX - fr->len ? SIZE_MAX : fr->len + want;
        cap = fr->cap ? fr->cap : 4096;
        while (cap < need && cap < limit)
                cap = cap > limit / 2 ? limit : cap * 2;
        cap = MIN(MAX(cap, fr->cap), MAX(limit, fr->cap));
        if (cap == fr->cap)
                return 0;
        p = realloc(fr->buf, cap);
        if (!p)
                return -ENOMEM;
        fr->buf = p;
        fr->cap = cap;
        return 0;
}

uint8_t *frame_reader_space(struct frame_reader *fr, size_t want, size_t *ret_avail)
{
        if (fr->err) /* nothing will be parsed again: recycle the buffer */
                fr->start = fr->len = 0;
        if (reserve(fr, MAX(want, (size_t)1), FRAME_WIRE_MAX) < 0)
                return NULL;
        *ret_avail = fr->cap - fr->len;
        return fr->buf + fr->len;
}

void frame_reader_commit(struct frame_reader *fr, size_t n)
{
        fr->len += MIN(n, fr->cap - fr->len);
}

int frame_reader_feed(struct frame_reader *fr, const void *data, size_t n)
{
        size_t held = fr->len - fr->start;
        size_t limit;
        int r;

        if (fr->err)
                return fr->err;
        if (n == 0)
                return 0;
        limit = n > SIZE_MAX - held ? SIZE_MAX : held + n;
        r = reserve(fr, n, MAX(limit, FRAME_WIRE_MAX));
        if (r < 0)
                return r;
        if (fr->cap - fr->len < n)
                return -ENOMEM;
        memcpy(fr->buf + fr->len, data, n);
        fr->len += n;
        return 0;
}

int frame_reader_next(struct frame_reader *fr, struct frame *ret)
{
        size_t held = fr->len - fr->start;
        const uint8_t *p;
        uint32_t len;

        if (fr->err)
                return fr->err;
        if (held < 4) {
                if (held == 0)
                        fr->start = fr->len = 0;
                return 0;
        }
        p = fr->buf + fr->start;
        len = load_be32(p);
        if (!frame_len_ok(len)) {
                fr->err = -EBADMSG;
                return fr->err;
        }
        if (held - 4 < len)
                return 0;
        ret->id = load_be32(p + 4);
        ret->flags = p[8];
        ret->body = p + FRAME_HEADER_LEN;
        ret->body_len = len - 5;
        fr->start += 4 + (size_t)len;
        return 1;
}

size_t frame_begin(struct cbor_buf *b, uint32_t id, uint8_t flags)
{
        uint8_t hdr[FRAME_HEADER_LEN];
        size_t start = b->len;

        store_be32(hdr, 0);
        store_be32(hdr + 4, id);
        hdr[8] = flags;
        cbor_buf_append(b, hdr, sizeof(hdr));
        return start;
}

int frame_end(struct cbor_buf *b, size_t start)
{
        size_t len;

        if (start > b->len)
                return -EINVAL;
        if (b->err) {
                b->len = start;
                return b->err;
        }
        if (b->len - start < FRAME_HEADER_LEN) {
                b->len = start;
                return -EINVAL;
        }
        len = b->len - start - 4;
        if (len > FRAME_MAX_LEN) {
                b->len = start;
                return -EMSGSIZE;
        }
        store_be32(b->data + start, (uint32_t)len);
        return 0;
}

int frame_parse_header(const uint8_t hdr[FRAME_HEADER_LEN], uint32_t *ret_len, uint32_t *ret_id,
                       uint8_t *ret_flags)
{
        uint32_t len = load_be32(hdr);

        if (!frame_len_ok(len))
                return -EBADMSG;
        *ret_len = len;
        *ret_id = load_be32(hdr + 4);
        *ret_flags = hdr[8];
        return 0;
}
