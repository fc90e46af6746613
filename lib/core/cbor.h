/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small CBOR (RFC 8949) codec: exactly what the host/agent protocol needs.
 *
 * Encoding appends to a growable buffer with a sticky error, so a message is
 * built with a run of cbor_put_*() calls and checked once at the end.
 *
 * Decoding is a bounded cursor over untrusted bytes. cbor_next() reads one
 * item head; strings come back as slices into the input (no copies). Only
 * definite lengths are accepted (we never emit indefinite ones); tags,
 * simple values and floats are decoded so that cbor_skip() can step over
 * them inside unknown fields. Nesting depth is capped.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CBOR_MAX_DEPTH 32

/* ---- encoder ---- */

struct cbor_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
        size_t max; /* 0: no limit; else growing past it sets err = -EMSGSIZE */
        int err;    /* first error (-ENOMEM, -EMSGSIZE), sticky */
};

void cbor_buf_init(struct cbor_buf *b, size_t max);
void cbor_buf_free(struct cbor_buf *b);
/* Forget the contents, keep the allocation; clears err. */
void cbor_buf_reset(struct cbor_buf *b);
/* Raw bytes (used by the frame layer for headers). */
void cbor_buf_append(struct cbor_buf *b, const void *data, size_t n);

void cbor_put_uint(struct cbor_buf *b, uint64_t v);
void cbor_put_int(struct cbor_buf *b, int64_t v);
void cbor_put_bool(struct cbor_buf *b, bool v);
void cbor_put_null(struct cbor_buf *b);
void cbor_put_bytes(struct cbor_buf *b, const void *data, size_t n);
void cbor_put_text(struct cbor_buf *b, const char *s, size_t n);
void cbor_put_str(struct cbor_buf *b, const char *s); /* NUL-terminated text */
void cbor_put_array(struct cbor_buf *b, size_t count);
void cbor_put_map(struct cbor_buf *b, size_t pairs);
/* Added for completeness (tests, fuzzing, unknown fields of later versions). */
void cbor_put_tag(struct cbor_buf *b, uint64_t tag); /* one item must follow */
void cbor_put_undefined(struct cbor_buf *b);
/* Simple values 0..19 and 32..255; 20..31 set err = -EINVAL. */
void cbor_put_simple(struct cbor_buf *b, uint8_t v);
void cbor_put_double(struct cbor_buf *b, double v); /* always 8 bytes */

/* ---- decoder ---- */

enum cbor_type {
        CBOR_UINT,   /* u */
        CBOR_NEGINT, /* i (the value, always < 0 and >= INT64_MIN) */
        CBOR_BYTES,  /* str.ptr/str.len */
        CBOR_TEXT,   /* str.ptr/str.len (not NUL-terminated; not UTF-8 checked) */
        CBOR_ARRAY,  /* count = items that follow */
        CBOR_MAP,    /* count = pairs that follow */
        CBOR_TAG,    /* u = tag number; one item follows */
        CBOR_BOOL,   /* b */
        CBOR_NULL,
        CBOR_UNDEFINED,
        CBOR_SIMPLE, /* u = simple value */
        CBOR_FLOAT,  /* f */
};

struct cbor_item {
        enum cbor_type type;
        union {
                uint64_t u;
                int64_t i;
                bool b;
                double f;
                size_t count;
                struct {
                        const uint8_t *ptr;
                        size_t len;
                } str;
        };
};

struct cbor_reader {
        const uint8_t *p;
        const uint8_t *end;
};

void cbor_reader_init(struct cbor_reader *r, const void *data, size_t n);
static inline bool cbor_reader_done(const struct cbor_reader *r)
{
        return r->p >= r->end;
}

/* Reads one item head. Containers: the caller then reads count items (or
 * 2*count for maps). -EBADMSG on malformed or truncated input, -ENOTSUP for
 * indefinite lengths, -ERANGE for a negative integer below INT64_MIN. A
 * string's length is checked against the input, and a container's count
 * against the bytes left (each item needs one). Every decoding function
 * leaves the cursor where it was when it fails. */
int cbor_next(struct cbor_reader *r, struct cbor_item *ret);

/* Skips one complete item, nested ones included (any negative integer too),
 * up to CBOR_MAX_DEPTH nested containers/tags (-EBADMSG past it); no recursion. */
int cbor_skip(struct cbor_reader *r);

/* Typed readers: read the next item and require its type (-EBADMSG if not).
 * cbor_get_int accepts UINT and NEGINT that fit int64_t (-ERANGE if not). */
int cbor_get_float(struct cbor_reader *r, double *ret); /* half, single or double */
int cbor_get_uint(struct cbor_reader *r, uint64_t *ret);
int cbor_get_int(struct cbor_reader *r, int64_t *ret);
int cbor_get_bool(struct cbor_reader *r, bool *ret);
int cbor_get_text(struct cbor_reader *r, const char **ret, size_t *ret_len);
int cbor_get_bytes(struct cbor_reader *r, const uint8_t **ret, size_t *ret_len);
int cbor_get_array(struct cbor_reader *r, size_t *ret_count);
int cbor_get_map(struct cbor_reader *r, size_t *ret_pairs);
/* Text copied into a new NUL-terminated string; rejects embedded NULs and
 * strings longer than max bytes (-E2BIG). */
int cbor_get_strdup(struct cbor_reader *r, size_t max, char **ret);
