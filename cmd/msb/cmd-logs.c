/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb logs: what commands in a sandbox printed, and what its system said.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lib/core/util.h"

static void logs_usage(FILE *f)
{
        fprintf(f, "Usage: msb logs [OPTIONS] NAME\n"
                   "\n"
                   "Show the output of the commands run in a sandbox (stdout and stderr go to\n"
                   "msb's stdout and stderr), and with --source system its kernel log and\n"
                   "lifecycle events.\n"
                   "\n"
                   "Options:\n"
                   "  -f, --follow               Keep printing new entries while it runs\n"
                   "      --tail N               Only the last N entries\n"
                   "      --since TIME           Only entries since TIME: a duration (10m) or\n"
                   "                             a timestamp (2026-11-26T14:00:00Z)\n"
                   "      --source SOURCE        stdout, stderr, system or all (default:\n"
                   "                             stdout and stderr); repeatable\n"
                   "      --timestamps           Prefix each entry with its time\n"
                   "  -h, --help                 Show this help\n");
}

static int parse_source(const char *s, unsigned *mask)
{
        static const struct {
                const char *name;
                unsigned bits;
        } map[] = {
                {"stdout", MSB_LOG_SOURCE_STDOUT},
                {"stderr", MSB_LOG_SOURCE_STDERR},
                {"system", MSB_LOG_SOURCE_SYSTEM},
                {"all", MSB_LOG_SOURCE_ALL},
        };

        for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
                if (streq(s, map[i].name)) {
                        *mask |= map[i].bits;
                        return 0;
                }
        }
        cli_error("unknown log source '%s': use stdout, stderr, system or all", s);
        return -1;
}

static int parse_since(const char *s, int64_t *ret_ms)
{
        struct timespec now;
        uint64_t ago;

        if (parse_time_iso(s, ret_ms) == 0)
                return 0;
        if (parse_duration_ms(s, &ago) < 0) {
                cli_error("invalid --since '%s': use a duration (10m) or a timestamp "
                          "(2026-11-26T14:00:00Z)",
                          s);
                return -1;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        *ret_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (int64_t)ago;
        return 0;
}

int cmd_logs(int argc, char **argv)
{
        enum { OPT_TAIL = 256, OPT_SINCE, OPT_SOURCE, OPT_TIMESTAMPS };
        static const struct option options[] = {
                {"follow", no_argument, NULL, 'f'},
                {"tail", required_argument, NULL, OPT_TAIL},
                {"since", required_argument, NULL, OPT_SINCE},
                {"source", required_argument, NULL, OPT_SOURCE},
                {"timestamps", no_argument, NULL, OPT_TIMESTAMPS},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        msb_logs_options opts = {0};
        bool timestamps = false;
        msb_log_entry e;
        msb_logs *logs;
        uint32_t tail;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+fh", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        opts.follow = 1;
                        break;
                case OPT_TAIL:
                        if (cli_parse_uint("--tail", optarg, 0, UINT32_MAX, &tail) < 0)
                                return EXIT_USAGE;
                        opts.tail = tail;
                        break;
                case OPT_SINCE:
                        if (parse_since(optarg, &opts.since_ms) < 0)
                                return EXIT_USAGE;
                        break;
                case OPT_SOURCE:
                        if (parse_source(optarg, &opts.sources) < 0)
                                return EXIT_USAGE;
                        break;
                case OPT_TIMESTAMPS:
                        timestamps = true;
                        break;
                case 'h':
                        logs_usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb logs --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind != argc - 1) {
                cli_error("logs needs exactly one sandbox NAME");
                return EXIT_USAGE;
        }
        if (msb_logs_open(argv[optind], &opts, &logs) < 0)
                return cli_api_error();
        while ((r = msb_logs_next(logs, &e, -1)) > 0) {
                int fd = e.source == MSB_LOG_SOURCE_STDERR ? STDERR_FILENO : STDOUT_FILENO;
                if (timestamps) {
                        char t[32], prefix[40];
                        int n = snprintf(prefix, sizeof(prefix), "%s ",
                                         e.ts_ms ? format_time_iso(e.ts_ms, t, sizeof(t)) : "-");
                        (void)write_all(fd, prefix, (size_t)n);
                }
                if (write_all(fd, e.data, e.len) < 0)
                        break; /* the reader went away */
        }
        msb_logs_close(logs);
        return r < 0 ? cli_api_error() : 0;
}
