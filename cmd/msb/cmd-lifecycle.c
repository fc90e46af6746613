/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb start, stop, restart, rm: lifecycle operations on sandboxes by name.
 * Each takes one or more names and reports per name; the exit code is that
 * of the first failure.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lib/core/util.h"

#define DEFAULT_STOP_TIMEOUT_MS (10 * 1000)

struct lifecycle {
        const char *verb;
        const char *usage;
        bool takes_timeout;
        bool takes_force;
        int (*act)(const char *name, const struct lifecycle *lc, uint64_t timeout_ms, bool force,
                   int cancel_fd);
};

static int act_start(const char *name, const struct lifecycle *lc, uint64_t timeout_ms, bool force,
                     int cancel_fd)
{
        return msb_sandbox_start(name, cancel_fd);
}

static int act_stop(const char *name, const struct lifecycle *lc, uint64_t timeout_ms, bool force,
                    int cancel_fd)
{
        return msb_sandbox_stop(name, timeout_ms);
}

static int act_restart(const char *name, const struct lifecycle *lc, uint64_t timeout_ms,
                       bool force, int cancel_fd)
{
        int r = msb_sandbox_stop(name, timeout_ms);

        return r < 0 ? r : msb_sandbox_start(name, cancel_fd);
}

static int act_rm(const char *name, const struct lifecycle *lc, uint64_t timeout_ms, bool force,
                  int cancel_fd)
{
        return msb_sandbox_remove(name, force);
}

static const struct lifecycle lifecycles[] = {
        {"start",
         "Usage: msb start NAME...\n\nBoot stopped sandboxes; their files are as they "
         "were left.\n",
         false, false, act_start},
        {"stop",
         "Usage: msb stop [--timeout DURATION] NAME...\n\nShut sandboxes down cleanly; "
         "kill those still running after the timeout\n(default 10s; 0 kills at once).\n",
         true, false, act_stop},
        {"restart",
         "Usage: msb restart [--timeout DURATION] NAME...\n\nStop, then start "
         "sandboxes.\n",
         true, false, act_restart},
        {"rm",
         "Usage: msb rm [-f] NAME...\n\nRemove stopped sandboxes: their disks, logs and "
         "record. -f removes\nrunning ones too (they are killed first).\n",
         false, true, act_rm},
};

static int run_lifecycle(const struct lifecycle *lc, int argc, char **argv)
{
        static const struct option options[] = {
                {"timeout", required_argument, NULL, 't'},
                {"force", no_argument, NULL, 'f'},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        uint64_t timeout_ms = DEFAULT_STOP_TIMEOUT_MS;
        struct cli_signals sigs = {-1, -1};
        bool force = false;
        int c, code = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+t:fqh", options, NULL)) != -1) {
                switch (c) {
                case 't':
                        if (!lc->takes_timeout)
                                goto usage;
                        if (cli_parse_duration("--timeout", optarg, &timeout_ms) < 0)
                                return EXIT_USAGE;
                        break;
                case 'f':
                        if (!lc->takes_force)
                                goto usage;
                        force = true;
                        break;
                case 'q':
                        cli_quiet = true;
                        break;
                case 'h':
                        fputs(lc->usage, stdout);
                        return 0;
                default:
                        goto usage;
                }
        }
        if (optind >= argc) {
                cli_error("%s needs at least one sandbox NAME", lc->verb);
                goto usage;
        }
        if (cli_signals_open(&sigs) < 0)
                return EXIT_SYSTEM;
        for (int i = optind; i < argc; i++) {
                if (lc->act(argv[i], lc, timeout_ms, force, sigs.stop_fd) < 0) {
                        int r = cli_api_error();
                        if (code == 0)
                                code = r;
                } else if (!cli_quiet) {
                        printf("%s\n", argv[i]);
                }
        }
        cli_signals_close(&sigs);
        return code;
usage:
        fprintf(stderr, "Run 'msb %s --help' for usage.\n", lc->verb);
        return EXIT_USAGE;
}

static int lifecycle_named(const char *verb, int argc, char **argv)
{
        for (size_t i = 0; i < ARRAY_SIZE(lifecycles); i++)
                if (streq(lifecycles[i].verb, verb))
                        return run_lifecycle(&lifecycles[i], argc, argv);
        return EXIT_USAGE;
}

int cmd_start(int argc, char **argv)
{
        return lifecycle_named("start", argc, argv);
}

int cmd_stop(int argc, char **argv)
{
        return lifecycle_named("stop", argc, argv);
}

int cmd_restart(int argc, char **argv)
{
        return lifecycle_named("restart", argc, argv);
}

int cmd_rm(int argc, char **argv)
{
        return lifecycle_named("rm", argc, argv);
}
