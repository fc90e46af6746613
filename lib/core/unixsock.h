/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unix stream sockets in a directory given by fd: the path goes through
 * /proc/self/fd/<dirfd>/<name>, so that the 108-byte limit of sun_path never
 * depends on how deep $MSB_HOME is.
 */
#pragma once

/* A listening socket (non-blocking, close-on-exec) at dirfd/name, replacing
 * a stale one. 0 or -errno. */
int unixsock_listen_at(int dirfd, const char *name, int backlog, int *ret_fd);

/* A blocking stream socket (close-on-exec) connected to dirfd/name. 0 or
 * -errno (-ENOENT/-ECONNREFUSED: nobody listens there). */
int unixsock_connect_at(int dirfd, const char *name, int *ret_fd);
