/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON (RFC 8259): a writer for what we emit (config.json, control answers,
 * log lines, `inspect`, `ls --format json`) and a bounded parser for what we
 * read back (the same files and sockets, which a user or a compromised
 * process may have tampered with, so the parser treats its input as
 * hostile: depth, size and count limits, strict syntax, UTF-8 checked).
 *
 * Writer: appends to a growable buffer with a sticky error; commas and
 * key/value separators are placed automatically. Strings are escaped; bytes
 * that are not valid UTF-8 are written as \u00XX escapes of the byte value
 * (json_put_bytes_lossy reports whether that happened).
 *
 * Parser: json_parse() builds a tree of struct json_value in one allocation
 * arena; accessors never fail on a wrong type, they return NULL/defaults, so
 * reading optional fields stays short.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define JSON_MAX_DEPTH  64         /* nested arrays/objects, writer and parser */
#define JSON_MAX_STRING (1u << 20) /* bytes of one decoded string or key */
#define JSON_MAX_VALUES (1u << 20) /* values in one document */

/* ---- writer ---- */

struct json_writer {
        char *data; /* NUL-terminated */
        size_t len;
        size_t cap;
        int err; /* sticky: -ENOMEM, -E2BIG (nesting past JSON_MAX_DEPTH),
                  * -EINVAL (an end without a begin, or right after a key;
                  * a key at the top level or right after a key) */
        unsigned depth;
        bool need_comma[JSON_MAX_DEPTH + 1];
        bool after_key;
};

void json_writer_init(struct json_writer *w);
void json_writer_free(struct json_writer *w);
/* Hands over the text (NUL-terminated) or NULL on error; w is reset. */
char *json_writer_steal(struct json_writer *w);
/* The same with a newline appended: one line of JSON Lines. *ret_len is its
 * length, the newline included. */
char *json_writer_steal_line(struct json_writer *w, size_t *ret_len);

void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_put_string(struct json_writer *w, const char *s); /* NULL writes null */
/* Arbitrary bytes as a string; returns true if some bytes were not UTF-8. */
bool json_put_bytes_lossy(struct json_writer *w, const void *data, size_t len);
void json_put_int(struct json_writer *w, int64_t v);
void json_put_uint(struct json_writer *w, uint64_t v);
void json_put_bool(struct json_writer *w, bool v);
void json_put_null(struct json_writer *w);
/* True when data is entirely valid UTF-8 (what json_put_bytes_lossy writes
 * without loss). */
bool json_utf8_valid(const void *data, size_t len);
/* A pre-serialised JSON value (e.g. a stored config), inserted verbatim. */
void json_put_raw(struct json_writer *w, const char *json);

/* Shorthands for "key": value inside an object. */
void json_kv_string(struct json_writer *w, const char *key, const char *s);
void json_kv_int(struct json_writer *w, const char *key, int64_t v);
void json_kv_uint(struct json_writer *w, const char *key, uint64_t v);
void json_kv_bool(struct json_writer *w, const char *key, bool v);
/* "key": [the n strings of v] */
void json_kv_strv(struct json_writer *w, const char *key, char *const *v, size_t n);

/* ---- parser ---- */

enum json_type {
        JSON_NULL,
        JSON_BOOL,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
};

struct json_value {
        enum json_type type;
        union {
                bool b;
                struct {
                        double d;
                        int64_t i;   /* valid when is_int */
                        bool is_int; /* an integer literal that fits int64_t */
                } num;
                struct {
                        char *s; /* NUL-terminated, UTF-8 (may hold \u0000 as a
                                  * NUL: len tells the real length) */
                        size_t len;
                } str;
                struct {
                        struct json_value *items; /* arrays: values; objects: values */
                        char **keys;              /* objects only */
                        size_t count;
                } c;
        };
};

struct json_doc; /* owns every value of one parse */

/* Parses exactly one JSON value (surrounding whitespace allowed). -EBADMSG
 * on a syntax error (including invalid UTF-8, a lone surrogate escape and an
 * object key holding U+0000), -E2BIG past the limits (JSON_MAX_DEPTH,
 * JSON_MAX_STRING, JSON_MAX_VALUES, a number beyond the range of double),
 * -ENOMEM. Duplicate keys are kept; json_get() returns the last one. */
int json_parse(const char *text, size_t len, struct json_doc **ret_doc,
               const struct json_value **ret_root);
void json_doc_free(struct json_doc *doc);
DEFINE_FREEP(struct json_doc, json_doc_free)

/* Accessors: NULL/default when v is NULL or of another type. */
const struct json_value *json_get(const struct json_value *obj, const char *key);
const struct json_value *json_at(const struct json_value *arr, size_t i);
size_t json_count(const struct json_value *v); /* items of an array/object */
const char *json_string(const struct json_value *v, const char *def);
bool json_bool(const struct json_value *v, bool def);
/* An integer literal within [min, max], else def. */
int64_t json_int(const struct json_value *v, int64_t min, int64_t max, int64_t def);
