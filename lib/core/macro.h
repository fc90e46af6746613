/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small macros shared by every module, host and guest: cleanup attributes for
 * owned resources (systemd style), ownership transfer, and array helpers.
 *
 * An owned pointer or fd is declared with a cleanup attribute; it is released
 * when the variable leaves scope unless TAKE_PTR()/TAKE_FD() handed it on.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f)     __attribute__((cleanup(f)))
#define _cleanup_free_   _cleanup_(freep)
#define _cleanup_close_  _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _unused_         __attribute__((unused))
#define _noreturn_       __attribute__((noreturn))
#define _printf_(a, b)   __attribute__((format(printf, a, b)))
#define _likely_(x)      __builtin_expect(!!(x), 1)
#define _unlikely_(x)    __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Returns the pointer and leaves NULL behind, so a cleanup attribute skips it. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p_ = (p);                                                           \
                (p) = NULL;                                                                        \
                _p_;                                                                               \
        })

/* Returns the fd and leaves -1 behind. */
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -1;                                                                         \
                _fd_;                                                                              \
        })

/* Defines foo_freep(struct foo **p) that calls foo_free(*p), for _cleanup_(). */
#define DEFINE_FREEP(type, func)                                                                   \
        static inline void func##p(type **p)                                                       \
        {                                                                                          \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

static inline void freep(void *p)
{
        free(*(void **)p);
}

/* Closes fd when it is valid, keeps errno intact, and returns -1 to assign. */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd)
{
        safe_close(*fd);
}

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

/* The negative errno of the last libc failure, never 0 (a bare -1 is a bug). */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}
