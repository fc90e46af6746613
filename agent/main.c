/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: msb-agentd has two modes.
 *
 * As PID 1 (the initramfs's /init), it sets up the guest (init.c), serves
 * the protocol on the virtio port until core.shutdown, and powers the VM off
 * with the upper disk clean.
 *
 * With --serve-fd N (tests, or any host process), it serves the protocol on
 * an inherited descriptor in the current root with no PID-1 duties; it is a
 * child subreaper so orphans of its commands are reaped as PID 1 would. It
 * ends when the peer closes the stream or sends core.shutdown.
 *
 * Signals are blocked before anything else, so none is lost before the
 * server's signalfd exists.
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/util.h"

static void stderr_log(enum log_level level, const char *msg, void *userdata)
{
        fprintf(stderr, "msb-agentd: %s\n", msg);
}

static int usage(FILE *f, int code)
{
        fprintf(f, "Usage: msb-agentd [--serve-fd FD]\n"
                   "\n"
                   "The microsandbox guest agent. As PID 1 it sets up the guest and serves\n"
                   "the host on the virtio port \"msb.agent\"; --serve-fd serves the same\n"
                   "protocol on an inherited descriptor instead (tests).\n");
        return code;
}

static _noreturn_ void run_pid1(uint64_t boot_ns)
{
        struct agent_server_config cfg = {.vport = true, .pid1 = true, .boot_ns = boot_ns};

        agent_init_early();
        cfg.port_fd = agent_init_boot(boot_ns);
        agent_server_run(&cfg);
        agent_init_poweroff();
}

static int serve_fd(const char *arg, uint64_t boot_ns)
{
        struct agent_server_config cfg = {.boot_ns = boot_ns};
        enum log_level level = LOG_LEVEL_WARN;
        const char *env = getenv("MSB_LOG");
        uint64_t fd;

        if (parse_u64(arg, &fd) < 0 || fd > INT32_MAX) {
                fprintf(stderr, "msb-agentd: invalid descriptor \"%s\"\n", arg);
                return 2;
        }
        if (env && log_level_from_string(env, &level) < 0)
                level = LOG_LEVEL_WARN;
        log_set_handler(stderr_log, level, NULL);
        cfg.port_fd = (int)fd;
        if (fd_set_nonblock(cfg.port_fd, true) < 0 || fd_set_cloexec(cfg.port_fd, true) < 0) {
                fprintf(stderr, "msb-agentd: descriptor %s: %s\n", arg, strerror(errno));
                return 2;
        }
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
                log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
        return agent_server_run(&cfg) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
        uint64_t boot_ns = now_ns(CLOCK_BOOTTIME);
        int r;

        umask(022);
        r = agent_server_block_signals();
        if (getpid() == 1) {
                if (r < 0)
                        agent_init_fatal("blocking signals: %s", strerror(-r));
                run_pid1(boot_ns);
        }
        if (r < 0) {
                fprintf(stderr, "msb-agentd: blocking signals: %s\n", strerror(-r));
                return 1;
        }
        if (argc == 3 && streq(argv[1], "--serve-fd"))
                return serve_fd(argv[2], boot_ns);
        if (argc == 2 && streq(argv[1], "--version")) {
                printf("msb-agentd %s\n", MSB_VERSION);
                return 0;
        }
        if (argc == 2 && (streq(argv[1], "--help") || streq(argv[1], "-h")))
                return usage(stdout, 0);
        return usage(stderr, 2);
}
