/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the supervisor is started through a double fork so
 * that it is nobody's child here (no zombie for the library's process, no
 * SIGCHLD surprises for an embedding program) and runs in its own session.
 * A pipe and a socket join it to us: it writes one JSON line on the ready
 * pipe when it has started (or failed), and it watches the parent socket,
 * whose EOF means
 * "the launcher is gone: stop" until we send a detach byte. A cancelled
 * start therefore needs nothing but closing our end of the parent socket.
 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "paths.h"
#include "readyline.h"
#include "lib/core/util.h"

_Noreturn static void exec_supervisor(const char *bin, const struct sandbox_paths *p,
                                      const char *name, int ready_fd, int parent_fd)
{
        _cleanup_free_ char *log = strdup_printf("%s/logs/supervisor.log", p->dir);
        int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        int log_fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
        char *argv[] = {"msb-sandbox", "--home", p->home,       "--name", (char *)name,
                        "--ready-fd",  "3",      "--parent-fd", "4",      NULL};

        if (null_fd < 0 || log_fd < 0)
                _exit(127);
        /* Move the pipes out of the way of 0-4 first, then place everything. */
        ready_fd = fcntl(ready_fd, F_DUPFD_CLOEXEC, 10);
        parent_fd = fcntl(parent_fd, F_DUPFD_CLOEXEC, 10);
        log_fd = fcntl(log_fd, F_DUPFD_CLOEXEC, 10);
        if (ready_fd < 0 || parent_fd < 0 || log_fd < 0 || dup2(null_fd, 0) < 0 ||
            dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 || dup2(ready_fd, 3) < 0 ||
            dup2(parent_fd, 4) < 0)
                _exit(127);
        close_range(5, ~0U, 0);
        execv(bin, argv);
        dprintf(2, "msb: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
}

static int spawn(const char *bin, const struct sandbox_paths *p, const char *name, int ready_fd,
                 int parent_fd)
{
        sigset_t all, old;
        pid_t pid;
        int status;

        /* The children must not run our signal handlers or inherit a mask. */
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);
        pid = fork();
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                for (int sig = 1; sig < NSIG; sig++)
                        signal(sig, SIG_DFL);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (setsid() < 0)
                        _exit(127);
                pid = fork();
                if (pid < 0)
                        _exit(127);
                if (pid == 0)
                        exec_supervisor(bin, p, name, ready_fd, parent_fd);
                _exit(0);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (pid < 0)
                return negative_errno();
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

static msb_error_kind kind_from_name(const char *kind)
{
        static const struct {
                const char *name;
                msb_error_kind kind;
        } map[] = {
                {READY_INVALID_ARGUMENT, MSB_ERR_INVALID_ARGUMENT},
                {READY_IMAGE_NOT_FOUND, MSB_ERR_IMAGE_NOT_FOUND},
                {READY_IMAGE_INVALID, MSB_ERR_IMAGE_INVALID},
                {READY_HOST_MISSING, MSB_ERR_HOST_MISSING},
                {READY_ACCEL_UNAVAILABLE, MSB_ERR_ACCEL_UNAVAILABLE},
                {READY_BOOT_TIMEOUT, MSB_ERR_BOOT_TIMEOUT},
                {READY_VM_FAILED, MSB_ERR_VM_FAILED},
                {READY_PROTOCOL, MSB_ERR_PROTOCOL},
                {READY_CONFLICT, MSB_ERR_CONFLICT},
                {READY_CANCELLED, MSB_ERR_CANCELLED},
        };

        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (streq(kind, map[i].name))
                        return map[i].kind;
        return MSB_ERR_SYSTEM;
}

/* Reads the ready line: 0 with line filled, -EPIPE if the supervisor died
 * silently, -ETIMEDOUT, -ECANCELED. */
static int read_ready_line(int fd, int cancel_fd, uint64_t wait_ms, char *line, size_t size)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + wait_ms * 1000000ULL;
        size_t len = 0;

        for (;;) {
                struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
                                        {.fd = cancel_fd, .events = POLLIN}};
                uint64_t now = now_ns(CLOCK_MONOTONIC);
                ssize_t n;
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(pfd, 2, (int)MIN((deadline - now) / 1000000ULL + 1, 1000));
                if (r < 0 && errno != EINTR)
                        return negative_errno();
                if (pfd[1].revents)
                        return -ECANCELED;
                if (!pfd[0].revents)
                        continue;
                n = read(fd, line + len, size - 1 - len);
                if (n < 0 && errno != EINTR && errno != EAGAIN)
                        return negative_errno();
                if (n == 0)
                        return len > 0 ? 0 : -EPIPE;
                if (n > 0)
                        len += (size_t)n;
                line[len] = '\0';
                if (strchr(line, '\n') || len == size - 1)
                        return 0;
        }
}

static int parse_ready(const char *line, struct launch_result *ret)
{
        struct readyline rl;

        if (readyline_parse(line, strlen(line), &rl) < 0)
                return error_set(MSB_ERR_SYSTEM, -EBADMSG,
                                 "the sandbox supervisor answered nonsense at start");
        if (!rl.ok)
                return error_set(kind_from_name(rl.kind), -EIO, "%s", rl.message);
        *ret = (struct launch_result){
                .start_ns = rl.start_ns,
                .guest_boot_ns = rl.guest_boot_ns,
                .guest_ready_ns = rl.guest_ready_ns,
        };
        snprintf(ret->accel, sizeof(ret->accel), "%s", rl.accel);
        snprintf(ret->notice, sizeof(ret->notice), "%s", rl.notice);
        return 0;
}

int launch_supervisor(const struct sandbox_paths *p, const char *name, bool keep_watch,
                      int cancel_fd, uint64_t wait_ms, int *ret_parent_fd,
                      struct launch_result *ret)
{
        _cleanup_free_ char *bin = NULL;
        _cleanup_close_ int ready_rd = -1, parent_wr = -1;
        char line[READYLINE_MAX + 1];
        int ready[2], parent[2], r;

        r = paths_supervisor(&bin);
        if (r < 0)
                return error_set(MSB_ERR_HOST_MISSING, r,
                                 "the sandbox supervisor is missing: %s (run 'make', or set "
                                 "MSB_SUPERVISOR)",
                                 bin ? bin : "msb-sandbox");
        if (pipe2(ready, O_CLOEXEC) < 0)
                return error_set(MSB_ERR_SYSTEM, negative_errno(), "pipe: %m");
        /* a socket, so that writing to a dead supervisor is EPIPE, not SIGPIPE */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, parent) < 0) {
                r = negative_errno();
                close(ready[0]);
                close(ready[1]);
                return error_set(MSB_ERR_SYSTEM, r, "pipe: %s", strerror(-r));
        }
        ready_rd = ready[0];
        parent_wr = parent[1];
        r = spawn(bin, p, name, ready[1], parent[0]);
        close(ready[1]);
        close(parent[0]);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot start the sandbox supervisor: %s",
                                 strerror(-r));
        r = read_ready_line(ready_rd, cancel_fd, wait_ms, line, sizeof(line));
        if (r == -ECANCELED)
                return error_set(MSB_ERR_CANCELLED, r, "start cancelled");
        if (r == -ETIMEDOUT)
                return error_set(MSB_ERR_BOOT_TIMEOUT, r,
                                 "the sandbox supervisor did not report within %llu s",
                                 (unsigned long long)(wait_ms / 1000));
        if (r < 0)
                return error_set(MSB_ERR_VM_FAILED, r,
                                 "the sandbox supervisor exited during the start (see %s/logs/"
                                 "supervisor.log)",
                                 p->dir);
        r = parse_ready(line, ret);
        if (r < 0)
                return r;
        if (keep_watch) {
                *ret_parent_fd = TAKE_FD(parent_wr);
                return 0;
        }
        *ret_parent_fd = -1;
        if (send(parent_wr, "D", 1, MSG_NOSIGNAL) != 1)
                return error_set(MSB_ERR_VM_FAILED, -EPIPE,
                                 "the sandbox supervisor exited right after the start");
        return 0;
}
