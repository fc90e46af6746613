/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: dirfd is typically an O_PATH fd of the run
 * directory; the kernel resolves /proc/self/fd/<dirfd> to that directory,
 * so the socket inode is created in it whatever its path. Clients connect
 * the same way.
 */
#include "unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/core/macro.h"

static int address(int dirfd, const char *name, struct sockaddr_un *sa)
{
        int n;

        if (dirfd < 0 || !name || !*name || strchr(name, '/'))
                return -EINVAL;
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dirfd, name);
        if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        return 0;
}

int unixsock_listen_at(int dirfd, const char *name, int backlog, int *ret_fd)
{
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        int r;

        r = address(dirfd, name, &sa);
        if (r < 0)
                return r;
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return negative_errno();
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int unixsock_connect_at(int dirfd, const char *name, int *ret_fd)
{
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        int r;

        r = address(dirfd, name, &sa);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}
