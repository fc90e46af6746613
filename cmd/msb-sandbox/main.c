/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-sandbox: the supervisor of one sandbox (docs/supervisor.md).
 *
 *   msb-sandbox --home HOME --name NAME --ready-fd N [--parent-fd M]
 *
 * Theory of operation: the library spawns this in a session of its own,
 * with stdin on /dev/null, stdout/stderr on logs/supervisor.log and no fd
 * but those and the two given. main() makes that true whoever started it
 * (fds 0-2 opened on /dev/null if closed, every other fd closed), raises
 * the fd limit, ignores SIGPIPE and SIGHUP, moves to / with umask 077, and
 * hands over to supervisor_run(). It does not ask for PR_SET_PDEATHSIG: a
 * sandbox outlives the msb that started it (--parent-fd is how a launcher
 * that wants otherwise says so). SIGTERM and SIGINT stop the sandbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/util.h"
#include "lib/readyline.h"
#include "lib/supervisor/supervisor.h"

static void usage_error(int ready_fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bad invocation: say so on stderr and, when possible, on the ready fd. */
static void usage_error(int ready_fd, const char *fmt, ...)
{
        struct readyline rl = {.ok = false};
        char *line = NULL;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(rl.message, sizeof(rl.message), fmt, ap);
        va_end(ap);
        snprintf(rl.kind, sizeof(rl.kind), "%s", READY_INVALID_ARGUMENT);
        fprintf(stderr, "msb-sandbox: %s\n", rl.message);
        if (ready_fd >= 0 && readyline_format(&rl, &line) >= 0)
                (void)write_all(ready_fd, line, strlen(line));
        free(line);
        exit(1);
}

static int parse_fd(const char *s)
{
        uint64_t v;

        if (parse_u64(s, &v) < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0)
                return -1;
        return (int)v;
}

/* fds 0-2 open (on /dev/null if they were closed), everything above them
 * closed except keep_a and keep_b. */
static void sanitize_fds(int keep_a, int keep_b)
{
        int lo = MIN(keep_a, keep_b), hi = MAX(keep_a, keep_b);

        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
                        exit(1);
        /* close 3..lo-1, lo+1..hi-1, hi+1..; a missing keep is -1 */
        if (lo < 0)
                lo = hi;
        if (lo < 0) {
                (void)close_range(3, ~0U, 0);
                return;
        }
        if (lo > 3)
                (void)close_range(3, (unsigned)lo - 1, 0);
        if (hi > lo + 1)
                (void)close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
        (void)close_range((unsigned)hi + 1, ~0U, 0);
}

static void raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"home", required_argument, NULL, 'h'},
                {"name", required_argument, NULL, 'n'},
                {"ready-fd", required_argument, NULL, 'r'},
                {"parent-fd", required_argument, NULL, 'p'},
                {},
        };
        const char *home = NULL, *name = NULL, *ready_arg = NULL, *parent_arg = NULL;
        struct supervisor_args args = {.ready_fd = -1, .parent_fd = -1};
        char *real_home;
        int c, status;

        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case 'h':
                        home = optarg;
                        break;
                case 'n':
                        name = optarg;
                        break;
                case 'r':
                        ready_arg = optarg;
                        break;
                case 'p':
                        parent_arg = optarg;
                        break;
                default:
                        usage_error(-1, "usage: msb-sandbox --home HOME --name NAME --ready-fd "
                                        "N [--parent-fd M]");
                }
        }
        if (ready_arg && (args.ready_fd = parse_fd(ready_arg)) < 0)
                usage_error(-1, "--ready-fd %s: not an open file descriptor", ready_arg);
        if (parent_arg && (args.parent_fd = parse_fd(parent_arg)) < 0)
                usage_error(args.ready_fd, "--parent-fd %s: not an open file descriptor",
                            parent_arg);
        if (optind != argc || !home || !name || !ready_arg)
                usage_error(args.ready_fd, "usage: msb-sandbox --home HOME --name NAME "
                                           "--ready-fd N [--parent-fd M]");
        if (args.ready_fd < 3 || args.parent_fd == args.ready_fd ||
            (args.parent_fd >= 0 && args.parent_fd < 3))
                usage_error(args.ready_fd, "the ready and parent fds must be distinct and above 2");

        sanitize_fds(args.ready_fd, args.parent_fd);
        (void)fcntl(args.ready_fd, F_SETFD, FD_CLOEXEC);
        if (args.parent_fd >= 0)
                (void)fcntl(args.parent_fd, F_SETFD, FD_CLOEXEC);
        raise_nofile();
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        umask(077);

        real_home = realpath(home, NULL);
        if (!real_home)
                usage_error(args.ready_fd, "--home %s: %s", home, strerror(errno));
        if (chdir("/") < 0)
                usage_error(args.ready_fd, "chdir /: %s", strerror(errno));
        args.home = real_home;
        args.name = name;
        status = supervisor_run(&args);
        free(real_home);
        return status;
}
