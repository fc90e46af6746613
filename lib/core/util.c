/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: thin, errno-correct wrappers over libc. Every function
 * returns 0 (or a count) on success and -errno on failure; none prints or
 * exits, so the library, the supervisor and the agent can all share them.
 */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int write_all(int fd, const void *buf, size_t n)
{
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

ssize_t read_full(int fd, void *buf, size_t n)
{
        char *p = buf;
        size_t done = 0;

        while (done < n) {
                ssize_t k = read(fd, p + done, n - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                done += (size_t)k;
        }
        return (ssize_t)done;
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        n = read_full(fd, buf, max + 1);
        if (n < 0)
                return (int)n;
        if ((size_t)n > max)
                return -EFBIG;
        buf[n] = '\0';
        if (ret_len)
                *ret_len = (size_t)n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int write_file(const char *path, const char *text, mode_t mode)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        int r;

        if (fd < 0)
                return negative_errno();
        r = write_all(fd, text, strlen(text));
        if (r < 0)
                return r;
        if (close(TAKE_FD(fd)) < 0)
                return negative_errno();
        return 0;
}

int write_file_replace(const char *path, const char *text, mode_t mode)
{
        _cleanup_free_ char *tmp = strdup_printf("%s.%d.tmp", path, (int)getpid());
        int r;

        if (!tmp)
                return -ENOMEM;
        r = write_file(tmp, text, mode);
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r;
}

static int fd_update_flag(int fd, int get, int set, int flag, bool on)
{
        int flags = fcntl(fd, get);
        int nflags;

        if (flags < 0)
                return negative_errno();
        nflags = on ? flags | flag : flags & ~flag;
        if (nflags != flags && fcntl(fd, set, nflags) < 0)
                return negative_errno();
        return 0;
}

int fd_set_nonblock(int fd, bool on)
{
        return fd_update_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, on);
}

int fd_set_cloexec(int fd, bool on)
{
        return fd_update_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, on);
}

uint64_t now_ns(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *copy = strdup(path);
        struct stat st;
        char *p;

        if (!copy)
                return -ENOMEM;
        if (!*copy)
                return -ENOENT;
        for (p = copy + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(copy, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        if (mkdir(copy, mode) < 0) {
                if (errno != EEXIST)
                        return negative_errno();
                /* EEXIST: fine only if it is a directory (or a link to one) */
                if (stat(copy, &st) < 0)
                        return negative_errno();
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }
        return 0;
}

static int rm_rf_at(int parent_fd, const char *name)
{
        struct stat st;
        int r = 0;

        if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (S_ISDIR(st.st_mode)) {
                int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *d;
                struct dirent *de;

                if (fd < 0)
                        return negative_errno();
                d = fdopendir(fd);
                if (!d) {
                        r = negative_errno();
                        close(fd);
                        return r;
                }
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        int k = rm_rf_at(dirfd(d), de->d_name);
                        if (k < 0 && r == 0)
                                r = k;
                }
                closedir(d);
                if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                        r = negative_errno();
                return r;
        }
        if (unlinkat(parent_fd, name, 0) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int rm_rf(const char *path)
{
        return rm_rf_at(AT_FDCWD, path);
}

const char *startswith(const char *s, const char *prefix)
{
        size_t n = strlen(prefix);

        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

char *copy_utf8(char *dst, size_t size, const char *s)
{
        size_t n = strnlen(s, size);

        if (n == size)
                /* s is too long: step back over continuation bytes to the
                 * start of the character that would be split. */
                for (n = size - 1; n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80; n--)
                        ;
        memcpy(dst, s, n);
        dst[n] = '\0';
        return dst;
}

char *strdup_printf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

int parse_u64(const char *s, uint64_t *ret)
{
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                if (!isdigit((unsigned char)*s))
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        *ret = v;
        return 0;
}

/* Reads leading digits of *s into *ret, advancing *s. -EINVAL if none. */
static int take_number(const char **s, uint64_t *ret)
{
        uint64_t v = 0;
        const char *p = *s;

        if (!isdigit((unsigned char)*p))
                return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
                if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        *s = p;
        *ret = v;
        return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *ret)
{
        if (b != 0 && a > UINT64_MAX / b)
                return -ERANGE;
        *ret = a * b;
        return 0;
}

int parse_size(const char *s, uint64_t *ret_bytes)
{
        static const char units[] = "KMGTP";
        uint64_t v, mult = 1;
        const char *u;
        int r;

        if (!s)
                return -EINVAL;
        r = take_number(&s, &v);
        if (r < 0)
                return r;
        if ((*s == 'b' || *s == 'B') && s[1] == '\0') {
                s++;
        } else if (*s) {
                u = strchr(units, toupper((unsigned char)*s));
                if (!u)
                        return -EINVAL;
                for (long i = 0; i <= u - units; i++)
                        mult *= 1024;
                s++;
                if (*s == 'i' || *s == 'I')
                        s++;
                if (*s == 'b' || *s == 'B')
                        s++;
                if (*s)
                        return -EINVAL;
        }
        r = mul_checked(v, mult, &v);
        if (r < 0)
                return r;
        *ret_bytes = v;
        return 0;
}

int parse_duration_ms(const char *s, uint64_t *ret_ms)
{
        uint64_t total = 0;
        int r;

        if (!s || !*s)
                return -EINVAL;
        while (*s) {
                uint64_t v, mult, part;

                r = take_number(&s, &v);
                if (r < 0)
                        return r;
                if (startswith(s, "ms")) {
                        mult = 1;
                        s += 2;
                } else if (*s == 's' || *s == '\0') {
                        mult = 1000;
                        s += *s ? 1 : 0;
                } else if (*s == 'm') {
                        mult = 60 * 1000;
                        s++;
                } else if (*s == 'h') {
                        mult = 3600 * 1000;
                        s++;
                } else if (*s == 'd') {
                        mult = 86400 * 1000;
                        s++;
                } else {
                        return -EINVAL;
                }
                r = mul_checked(v, mult, &part);
                if (r < 0)
                        return r;
                if (total > UINT64_MAX - part)
                        return -ERANGE;
                total += part;
        }
        *ret_ms = total;
        return 0;
}

const char *format_bytes(uint64_t bytes, char *buf, size_t size)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double)bytes;
        size_t i = 0;

        while (v >= 1024 && i + 1 < ARRAY_SIZE(units)) {
                v /= 1024;
                i++;
        }
        if (i == 0)
                snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[i]);
        return buf;
}

const char *format_time_iso(int64_t ms, char *buf, size_t size)
{
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&secs, &tm);
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        return buf;
}

int parse_time_iso(const char *s, int64_t *ret_ms)
{
        struct tm tm = {0};
        const char *p;
        int64_t ms = 0, offset_s = 0;
        time_t secs;

        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') {
                int digits = 0;
                for (p++; isdigit((unsigned char)*p); p++, digits++)
                        if (digits < 3)
                                ms = ms * 10 + (*p - '0');
                if (digits == 0)
                        return -EINVAL;
                for (; digits < 3; digits++)
                        ms *= 10;
        }
        if (*p == 'Z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int hh, mm;
                if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
                        return -EINVAL;
                offset_s = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
                p += 6;
        } else {
                return -EINVAL;
        }
        if (*p)
                return -EINVAL;
        secs = timegm(&tm);
        if (secs == (time_t)-1)
                return -EINVAL;
        *ret_ms = ((int64_t)secs - offset_s) * 1000 + ms;
        return 0;
}

static const char base64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len)
{
        const uint8_t *p = data;
        char *out, *o;

        if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
                return NULL;
        out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        o = out;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                *o++ = base64_alphabet[v >> 18 & 63];
                *o++ = base64_alphabet[v >> 12 & 63];
                *o++ = i + 1 < len ? base64_alphabet[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? base64_alphabet[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

int base64_decode(const char *s, uint8_t **ret, size_t *ret_len)
{
        size_t n = strlen(s), len = 0;
        uint8_t *out = malloc(n / 4 * 3 + 3);
        uint32_t acc = 0;
        int bits = 0;

        if (!out)
                return -ENOMEM;
        for (; *s && *s != '='; s++) {
                const char *c = strchr(base64_alphabet, *s);
                if (!c || !*s) {
                        free(out);
                        return -EBADMSG;
                }
                acc = acc << 6 | (uint32_t)(c - base64_alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[len++] = (uint8_t)(acc >> bits);
                }
        }
        out[len] = '\0';
        *ret = out;
        *ret_len = len;
        return 0;
}
