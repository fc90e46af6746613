/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers used on both sides of the VM boundary: full reads and writes, fd
 * flags, clocks, strings and the parsers for sizes and durations that every
 * front end accepts ("512M", "4G", "90s", "1h30m").
 *
 * Everything here builds with glibc and with musl (the agent is static musl).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "macro.h"

/* Writes all of buf, retrying on EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);

/* Reads until n bytes or EOF, retrying on EINTR. Bytes read or -errno. */
ssize_t read_full(int fd, void *buf, size_t n);

/* Reads a whole small file (at most max bytes) into a NUL-terminated buffer. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Writes a whole file (create/truncate, mode) from a string. 0 or -errno. */
int write_file(const char *path, const char *text, mode_t mode);

/* The same through PATH.<pid>.tmp and rename(), so that a reader sees the
 * old text or the new, never half of it; nothing is left behind on
 * failure. 0 or -errno. */
int write_file_replace(const char *path, const char *text, mode_t mode);

int fd_set_nonblock(int fd, bool on);
int fd_set_cloexec(int fd, bool on);

/* Nanoseconds of the given clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...). */
uint64_t now_ns(clockid_t clock);

/* mkdir -p with the given mode for each created directory. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* rm -rf: removes path and everything below it, never following symlinks.
 * A missing path is success. 0 or -errno. */
int rm_rf(const char *path);

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* Returns the rest of s after prefix, or NULL when s does not start with it. */
const char *startswith(const char *s, const char *prefix);

/* Copies s into dst (size > 0) like snprintf("%s"), but when s must be cut
 * it is cut before a UTF-8 character rather than inside one, so valid UTF-8
 * stays valid. Returns dst. */
char *copy_utf8(char *dst, size_t size, const char *s);

/* asprintf that returns the string or NULL on failure. */
char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "4096", "512K", "512M", "4G", "1T" (binary units, optional trailing "B" or
 * "iB"; case-insensitive) to bytes. -EINVAL on junk, -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *ret_bytes);

/* "250ms", "30s", "5m", "1h30m", "2d", or a bare number of seconds, to
 * milliseconds. -EINVAL on junk, -ERANGE on overflow. */
int parse_duration_ms(const char *s, uint64_t *ret_ms);

/* Parses a decimal unsigned integer that must fill the whole string. */
int parse_u64(const char *s, uint64_t *ret);

/* Unix milliseconds as "2026-11-26T14:00:00.123Z" (UTC) into buf (at least
 * 25 bytes). Returns buf. */
const char *format_time_iso(int64_t ms, char *buf, size_t size);

/* Parses "2026-11-26T14:00:00Z", with optional fractional seconds and a
 * "+HH:MM"/"-HH:MM" offset instead of Z, to Unix milliseconds. */
int parse_time_iso(const char *s, int64_t *ret_ms);

/* Standard base64 (RFC 4648, with padding) of data, NUL-terminated, to
 * free(); NULL on allocation failure. */
char *base64_encode(const void *data, size_t len);

/* Decodes standard base64 (padding optional) into a new buffer, with a NUL
 * after its *ret_len bytes (so text comes out as a string). -EBADMSG on a
 * character outside the alphabet. */
int base64_decode(const char *s, uint8_t **ret, size_t *ret_len);

/* Formats a byte count as "1.5 MiB" into buf. Returns buf. */
const char *format_bytes(uint64_t bytes, char *buf, size_t size);
