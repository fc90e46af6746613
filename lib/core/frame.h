/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frames of the host/agent byte stream (DESIGN §5):
 *
 *   [len: u32 BE][id: u32 BE][flags: u8][body: len - 5 bytes]
 *
 * len counts id, flags and body (so len >= 5) and is at most FRAME_MAX_LEN.
 * A frame_reader accumulates bytes from a stream (reads of any size) and
 * yields whole frames; a length outside [5, FRAME_MAX_LEN] poisons the reader
 * (-EBADMSG from then on), since the stream cannot be resynchronised.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cbor.h"

#define FRAME_HEADER_LEN 9u /* len + id + flags */
#define FRAME_MAX_LEN    (4u * 1024u * 1024u)
#define FRAME_MAX_BODY   (FRAME_MAX_LEN - 5u)

#define FRAME_TERMINAL      0x01u /* last frame of a session */
#define FRAME_SESSION_START 0x02u /* first frame of a session */
#define FRAME_SHUTDOWN      0x04u

struct frame {
        uint32_t id;
        uint8_t flags;
        const uint8_t *body; /* points into the reader's buffer */
        size_t body_len;
};

struct frame_reader {
        uint8_t *buf;
        size_t len;   /* bytes held */
        size_t start; /* offset of the first unconsumed byte */
        size_t cap;
        int err; /* sticky -EBADMSG once a bad length was seen */
};

void frame_reader_init(struct frame_reader *fr);
void frame_reader_free(struct frame_reader *fr);

/* Space to read into: at least `want` bytes (grows the buffer, up to one whole
 * frame plus the header). Returns NULL on allocation failure. After reading n
 * bytes into it call frame_reader_commit(fr, n). At the cap *ret_avail may be
 * smaller than want, and is 0 only while whole frames wait in the buffer:
 * take them with frame_reader_next() first. A poisoned reader recycles its
 * buffer (what is read into it is discarded). */
uint8_t *frame_reader_space(struct frame_reader *fr, size_t want, size_t *ret_avail);
void frame_reader_commit(struct frame_reader *fr, size_t n);

/* Copies bytes in (for callers that already hold them). 0, -ENOMEM, or
 * -EBADMSG once the reader is poisoned (the bytes are dropped). */
int frame_reader_feed(struct frame_reader *fr, const void *data, size_t n);

/* Yields the next whole frame: 1 and *ret filled (valid until the next call
 * on this reader), 0 when more bytes are needed, -EBADMSG on a bad length. */
int frame_reader_next(struct frame_reader *fr, struct frame *ret);

/* Encoding: frame_begin() appends a header with a placeholder length,
 * the caller appends the body (CBOR) to the same buffer, and frame_end()
 * patches the length. frame_end() fails with -EMSGSIZE past FRAME_MAX_LEN
 * and returns b->err if the buffer had failed; on failure it removes the
 * partial frame (b->len = start), so frames queued before it stay intact. */
size_t frame_begin(struct cbor_buf *b, uint32_t id, uint8_t flags);
int frame_end(struct cbor_buf *b, size_t start);

/* Parses a header from 9 bytes: 0, or -EBADMSG on a bad length. */
int frame_parse_header(const uint8_t hdr[FRAME_HEADER_LEN], uint32_t *ret_len, uint32_t *ret_id,
                       uint8_t *ret_flags);
