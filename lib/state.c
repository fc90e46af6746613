/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the database says what a sandbox should be; the
 * supervisor's flock on `lock` says whether it really runs. A supervisor
 * that died (kill -9, OOM) releases its lock with its last breath, so a
 * reader that finds a "running" record with a free lock, while no lifecycle
 * operation holds `op.lock`, knows the run crashed and records it, once.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"
#include "internal.h"
#include "paths.h"
#include "lib/core/unixsock.h"
#include "lib/core/util.h"

int sandbox_paths_init(const char *name, struct sandbox_paths *ret)
{
        struct sandbox_paths p = {0};
        int r;

        r = paths_home(&p.home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r,
                                 "cannot find a home for msb state: set MSB_HOME");
        p.dir = strdup_printf("%s/sandboxes/%s", p.home, name);
        p.run_dir = strdup_printf("%s/run/%s", p.home, name);
        if (!p.dir || !p.run_dir) {
                sandbox_paths_clear(&p);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        *ret = p;
        return 0;
}

void sandbox_paths_clear(struct sandbox_paths *p)
{
        free(p->home);
        free(p->dir);
        free(p->run_dir);
        *p = (struct sandbox_paths){0};
}

int state_open(struct store **ret)
{
        _cleanup_free_ char *home = NULL;
        char msg[256] = "";
        int r;

        r = paths_home(&home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r,
                                 "cannot find a home for msb state: set MSB_HOME");
        r = store_open(home, ret, msg, sizeof(msg));
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "%s", *msg ? msg : strerror(-r));
        return 0;
}

/* 1 if someone holds dir/file, 0 if not (or it does not exist). */
static int lock_held(const char *dir, const char *file)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, file);
        _cleanup_close_ int fd = -1;

        if (!path)
                return 0;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? 1 : 0;
        return 0; /* released on close */
}

bool state_supervisor_alive(const char *dir)
{
        return lock_held(dir, "lock") == 1;
}

int state_op_lock(const char *dir, int *ret_fd)
{
        _cleanup_free_ char *path = strdup_printf("%s/op.lock", dir);
        int fd;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, LOCK_EX) < 0) {
                if (errno != EINTR) {
                        int r = negative_errno();
                        close(fd);
                        return r;
                }
        }
        *ret_fd = fd;
        return 0;
}

static bool status_is_live(const char *status)
{
        return streq(status, "starting") || streq(status, "running") || streq(status, "stopping");
}

int state_get(struct store *st, const char *name, struct store_sandbox *ret)
{
        struct sandbox_paths p;
        struct store_run run;
        int r;

        r = store_sandbox_get(st, name, ret);
        if (r == -ENOENT)
                return error_set(MSB_ERR_NOT_FOUND, r, "no sandbox named '%s'", name);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "reading the state of '%s': %s", name,
                                 strerror(-r));
        if (!status_is_live(ret->status))
                return 0;
        r = sandbox_paths_init(name, &p);
        if (r < 0) {
                store_sandbox_clear(ret);
                return r;
        }
        if (!state_supervisor_alive(p.dir) && lock_held(p.dir, "op.lock") != 1) {
                if (store_run_last(st, ret->id, &run) == 0) {
                        if (run.ended_at == 0)
                                store_run_end(st, run.id, "crashed", "crashed");
                        store_run_clear(&run);
                }
                store_sandbox_set_status(st, name, "crashed");
                free(ret->status);
                ret->status = strdup("crashed");
        }
        sandbox_paths_clear(&p);
        if (!ret->status) {
                store_sandbox_clear(ret);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        return 0;
}

int state_open_get(const char *name, struct store **ret_st, struct store_sandbox *ret)
{
        struct store *st;
        int r;

        r = sandbox_name_check(name);
        if (r < 0)
                return r;
        r = state_open(&st);
        if (r < 0)
                return r;
        r = state_get(st, name, ret);
        if (r < 0) {
                store_close(st);
                return r;
        }
        *ret_st = st;
        return 0;
}

int state_connect(const char *dir, const char *sock, int *ret_fd)
{
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return negative_errno();
        return unixsock_connect_at(dfd, sock, ret_fd);
}
