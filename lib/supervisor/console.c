/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a read of at most 64 KiB becomes one append to the
 * log, so the console costs one write(2) per chunk however many bytes the
 * guest wrote one at a time. One drain reads at most DRAIN_MAX, so that a
 * guest flooding its console cannot starve the other events of the loop;
 * level-triggered epoll brings the rest on the next round.
 */
#include "console.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "logfile.h"
#include "lib/core/log.h"
#include "lib/core/util.h"

#define CHUNK     (64u * 1024u)
#define DRAIN_MAX (1024u * 1024u)

struct console {
        int fd;
        struct logfile *log;
        bool warned; /* about a log write that failed */
};

int console_new(const char *path, uint64_t max_bytes, struct console **ret, int *ret_qemu_fd)
{
        _cleanup_(console_freep) struct console *c = NULL;
        int sv[2], r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        r = write_file(path, "", 0600);
        if (r >= 0)
                r = logfile_open(path, max_bytes, &c->log);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        c->fd = sv[0];
        r = fd_set_nonblock(c->fd, true);
        if (r < 0) {
                close(sv[1]);
                return r;
        }
        *ret_qemu_fd = sv[1];
        *ret = TAKE_PTR(c);
        return 0;
}

struct console *console_free(struct console *c)
{
        if (!c)
                return NULL;
        safe_close(c->fd);
        logfile_free(c->log);
        free(c);
        return NULL;
}

int console_fd(const struct console *c)
{
        return c->fd;
}

int console_drain(struct console *c)
{
        _cleanup_free_ char *buf = malloc(CHUNK);
        size_t total = 0;

        if (!buf)
                return 0; /* try again on the next event */
        while (total < DRAIN_MAX) {
                ssize_t n = recv(c->fd, buf, CHUNK, 0);
                int r;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? 0 : 1;
                if (n == 0)
                        return 1;
                total += (size_t)n;
                r = logfile_append(c->log, buf, (size_t)n);
                if (r < 0 && !c->warned) {
                        c->warned = true;
                        log_warn("the console log cannot be written (%s): console output is lost",
                                 strerror(-r));
                }
        }
        return 0;
}
