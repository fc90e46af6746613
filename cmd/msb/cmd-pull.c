/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb pull: download an image and build its root disk, with a progress bar
 * per layer on a terminal (bytes, rate, ETA), a line per event otherwise,
 * nothing but the reference with -q.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lib/core/util.h"

static void pull_usage(FILE *f)
{
        fprintf(f, "Usage: msb pull [OPTIONS] IMAGE\n"
                   "\n"
                   "Download an image (for linux/amd64) and build its root disk. IMAGE is\n"
                   "NAME[:TAG] or NAME@sha256:DIGEST; short names are on Docker Hub\n"
                   "(alpine = docker.io/library/alpine:latest).\n"
                   "\n"
                   "Options:\n"
                   "      --insecure           Allow plain HTTP and unverified TLS\n"
                   "      --ca-certs FILE      Also trust the CAs in this PEM file\n"
                   "      --timeout DURATION   Give up when the registry sends nothing for this\n"
                   "                           long (default 30s)\n"
                   "      --max-entries N      Refuse images of more files (default 4Mi)\n"
                   "      --max-file-size SIZE Refuse images with a larger file (default 64G)\n"
                   "      --max-size SIZE      Refuse images with more data (default 256G)\n"
                   "  -q, --quiet              Print only the image reference\n"
                   "  -h, --help               Show this help\n"
                   "\n"
                   "Credentials come from 'msb registry login', then ~/.docker/config.json\n"
                   "(its credential helpers included, as Docker runs them).\n"
                   "\n"
                   "Examples:\n"
                   "  msb pull alpine\n"
                   "  msb pull ghcr.io/org/tool:1.2\n"
                   "  msb pull localhost:5000/app@sha256:...\n");
}

int cmd_pull(int argc, char **argv)
{
        enum {
                OPT_INSECURE = 256,
                OPT_CA_CERTS,
                OPT_TIMEOUT,
                OPT_MAX_ENTRIES,
                OPT_MAX_FILE_SIZE,
                OPT_MAX_SIZE,
        };
        static const struct option options[] = {
                {"insecure", no_argument, NULL, OPT_INSECURE},
                {"ca-certs", required_argument, NULL, OPT_CA_CERTS},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"max-entries", required_argument, NULL, OPT_MAX_ENTRIES},
                {"max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE},
                {"max-size", required_argument, NULL, OPT_MAX_SIZE},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct cli_pull_ui *ui = NULL;
        bool quiet = cli_quiet;
        struct cli_signals sigs = {-1, -1};
        msb_pull_options *o = msb_pull_options_new();
        char *digest = NULL;
        uint64_t ms, max_entries = 0, max_file = 0, max_total = 0;
        int c, code = 0;

        if (!o) {
                cli_error("out of memory");
                return EXIT_SYSTEM;
        }
        optind = 0;
        while ((c = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
                switch (c) {
                case OPT_INSECURE:
                        msb_pull_options_set_insecure(o, 1);
                        break;
                case OPT_CA_CERTS:
                        if (msb_pull_options_set_ca_certs(o, optarg) < 0)
                                code = cli_api_error();
                        break;
                case OPT_TIMEOUT:
                        if (cli_parse_duration("--timeout", optarg, &ms) < 0)
                                code = EXIT_USAGE;
                        else if (msb_pull_options_set_timeout_ms(o, ms) < 0)
                                code = cli_api_error();
                        break;
                case OPT_MAX_ENTRIES:
                        if (parse_u64(optarg, &max_entries) < 0 || max_entries == 0) {
                                cli_error("invalid --max-entries '%s'", optarg);
                                code = EXIT_USAGE;
                        }
                        break;
                case OPT_MAX_FILE_SIZE:
                        if (cli_parse_size("--max-file-size", optarg, &max_file) < 0)
                                code = EXIT_USAGE;
                        break;
                case OPT_MAX_SIZE:
                        if (cli_parse_size("--max-size", optarg, &max_total) < 0)
                                code = EXIT_USAGE;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        pull_usage(stdout);
                        goto out;
                default:
                        fprintf(stderr, "Run 'msb pull --help' for usage.\n");
                        code = EXIT_USAGE;
                }
                if (code)
                        goto out;
        }
        if (optind != argc - 1) {
                cli_error(optind >= argc ? "pull needs an IMAGE" : "pull takes one IMAGE");
                fprintf(stderr, "Run 'msb pull --help' for usage.\n");
                code = EXIT_USAGE;
                goto out;
        }
        if (cli_signals_open(&sigs) < 0) {
                code = EXIT_SYSTEM;
                goto out;
        }
        msb_pull_options_set_limits(o, max_entries, max_file, max_total);
        msb_pull_options_set_cancel_fd(o, sigs.stop_fd);
        ui = cli_pull_ui_new(stdout, quiet);
        if (!ui) {
                cli_error("out of memory");
                code = EXIT_SYSTEM;
                goto out;
        }
        msb_pull_options_set_progress(o, cli_pull_progress, ui);
        if (msb_image_pull(argv[optind], o, &digest) < 0) {
                code = cli_api_error();
                goto out;
        }
        if (quiet)
                printf("%s\n", cli_pull_ui_ref(ui) ? cli_pull_ui_ref(ui) : argv[optind]);
out:
        free(digest);
        cli_pull_ui_free(ui);
        cli_signals_close(&sigs);
        msb_pull_options_free(o);
        return code;
}
