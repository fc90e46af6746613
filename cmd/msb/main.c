/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb: the command-line front end. main() parses the global options, picks
 * the subcommand and exits with what it returns; everything else lives in
 * libmicrosandbox.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lib/core/util.h"

struct command {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
        const char *group;
};

static const struct command commands[] = {
        {"run", cmd_run, "Run a command in a new sandbox", "Sandboxes"},
        {"create", cmd_create, "Create a sandbox and boot it in the background", "Sandboxes"},
        {"exec", cmd_exec, "Run a command in a running sandbox", "Sandboxes"},
        {"start", cmd_start, "Boot stopped sandboxes", "Sandboxes"},
        {"stop", cmd_stop, "Shut sandboxes down", "Sandboxes"},
        {"restart", cmd_restart, "Stop, then start sandboxes", "Sandboxes"},
        {"ls", cmd_ls, "List sandboxes", "Sandboxes"},
        {"status", cmd_status, "Show the state of a sandbox", "Sandboxes"},
        {"inspect", cmd_inspect, "Show everything about a sandbox as JSON", "Sandboxes"},
        {"cp", cmd_cp, "Copy files between the host and a sandbox", "Sandboxes"},
        {"logs", cmd_logs, "Show what ran in a sandbox and what its system said", "Sandboxes"},
        {"ping", cmd_ping, "Check that a sandbox answers", "Sandboxes"},
        {"rm", cmd_rm, "Remove sandboxes", "Sandboxes"},
        {"pull", cmd_pull, "Download an image from a registry", "Images"},
        {"image", cmd_image, "Manage images: ls, inspect, rm, prune, import", "Images"},
        {"save", cmd_save, "Write images to an archive (docker or oci format)", "Images"},
        {"load", cmd_load, "Read images from an archive", "Images"},
        {"registry", cmd_registry, "Log in to registries: login, logout, ls", "Images"},
        {"doctor", cmd_doctor, "Check that this host can run sandboxes", "Host"},
        {"version", cmd_version, "Show version information", "Host"},
};

static void usage(FILE *f)
{
        const char *group = NULL;

        fprintf(f, "Usage: msb [OPTIONS] COMMAND [ARG...]\n"
                   "\n"
                   "Run untrusted code in microVM sandboxes: each sandbox is a real VM with its\n"
                   "own Linux kernel.\n");
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
                if (!group || !streq(group, commands[i].group)) {
                        group = commands[i].group;
                        fprintf(f, "\n%s:\n", group);
                }
                fprintf(f, "  %-10s  %s\n", commands[i].name, commands[i].summary);
        }
        fprintf(f, "\n"
                   "Options:\n"
                   "      --log-level LEVEL  Log level: error, warn, info, debug (or MSB_LOG)\n"
                   "  -h, --help             Show this help\n"
                   "  -v, --version          Show the version\n"
                   "\n"
                   "Examples:\n"
                   "  msb run base -- uname -a          Run one command in a fresh sandbox\n"
                   "  msb run -t base                   Open a shell in a fresh sandbox\n"
                   "  msb create --name dev base        Keep a sandbox running...\n"
                   "  msb exec dev -- ls /              ...and run commands in it\n"
                   "\n"
                   "Run 'msb COMMAND --help' for more about a command.\n");
}

static void log_to_stderr(msb_log_level level, const char *msg, void *userdata)
{
        static const char *const names[] = {"error", "warn", "info", "debug"};

        fprintf(stderr, "msb[%s]: %s\n", names[level], msg);
}

static int setup_logging(const char *level_name)
{
        static const char *const names[] = {"error", "warn", "info", "debug"};

        if (!level_name || !*level_name)
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                if (streq(level_name, names[i])) {
                        msb_set_log_handler(log_to_stderr, (msb_log_level)i, NULL);
                        return 0;
                }
        }
        cli_error("unknown log level '%s': use error, warn, info or debug", level_name);
        return -1;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"log-level", required_argument, NULL, 'L'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'v'},
                {},
        };
        const char *level = getenv("MSB_LOG");
        int c;

        while ((c = getopt_long(argc, argv, "+hv", options, NULL)) != -1) {
                switch (c) {
                case 'L':
                        level = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'v':
                        return cmd_version(0, NULL);
                default:
                        fprintf(stderr, "Run 'msb --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (setup_logging(level) < 0)
                return EXIT_USAGE;
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
                if (streq(argv[optind], commands[i].name)) {
                        int sub_argc = argc - optind;
                        char **sub_argv = argv + optind;
                        optind = 0; /* reset getopt for the subcommand */
                        return commands[i].fn(sub_argc, sub_argv);
                }
        }
        cli_error("unknown command '%s'", argv[optind]);
        fprintf(stderr, "Run 'msb --help' for the list of commands.\n");
        return EXIT_USAGE;
}
