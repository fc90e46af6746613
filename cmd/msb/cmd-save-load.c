/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb save and msb load: images to and from tar archives, in Docker's
 * `docker save` format or as an OCI image layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "lib/core/util.h"

static void save_usage(FILE *f)
{
        fprintf(f, "Usage: msb save [OPTIONS] IMAGE...\n"
                   "\n"
                   "Write images to a tar archive (to stdout unless -o).\n"
                   "\n"
                   "Options:\n"
                   "  -o, --output FILE         Write to FILE\n"
                   "      --format docker|oci   docker save layout (default) or OCI image layout\n"
                   "  -h, --help                Show this help\n"
                   "\n"
                   "Examples:\n"
                   "  msb save alpine -o alpine.tar\n"
                   "  msb save --format oci app:1 app:2 | gzip > app.tar.gz\n");
}

int cmd_save(int argc, char **argv)
{
        enum { OPT_FORMAT = 256 };
        static const struct option options[] = {
                {"output", required_argument, NULL, 'o'},
                {"format", required_argument, NULL, OPT_FORMAT},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        msb_archive_format format = MSB_ARCHIVE_DOCKER;
        const char *output = NULL;
        _cleanup_free_ char *tmp = NULL;
        int c, fd = STDOUT_FILENO, code = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case OPT_FORMAT:
                        if (streq(optarg, "docker")) {
                                format = MSB_ARCHIVE_DOCKER;
                        } else if (streq(optarg, "oci")) {
                                format = MSB_ARCHIVE_OCI;
                        } else {
                                cli_error("unknown format '%s': use docker or oci", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        save_usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb save --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                cli_error("save needs an IMAGE");
                return EXIT_USAGE;
        }
        if (!output && isatty(STDOUT_FILENO)) {
                cli_error("refusing to write an archive to a terminal: use -o FILE or a pipe");
                return EXIT_USAGE;
        }
        if (output) {
                /* written beside, renamed when complete: no half archive under FILE */
                tmp = strdup_printf("%s.tmp-%d", output, (int)getpid());
                if (!tmp)
                        return EXIT_SYSTEM;
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0) {
                        cli_error("cannot create %s: %m", output);
                        return EXIT_SYSTEM;
                }
        }
        if (msb_image_save((const char *const *)argv + optind, (size_t)(argc - optind), format,
                           fd) < 0)
                code = cli_api_error();
        if (output) {
                if (code == 0 && (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, output) < 0)) {
                        cli_error("cannot write %s: %m", output);
                        code = EXIT_SYSTEM;
                } else if (code != 0) {
                        close(fd);
                }
                if (code != 0)
                        unlink(tmp);
        }
        return code;
}

int cmd_load(int argc, char **argv)
{
        static const struct option options[] = {
                {"input", required_argument, NULL, 'i'},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *input = NULL;
        bool quiet = cli_quiet;
        char **refs = NULL;
        size_t n = 0;
        int c, fd = STDIN_FILENO, code = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "i:qh", options, NULL)) != -1) {
                switch (c) {
                case 'i':
                        input = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        printf("Usage: msb load [-i FILE]\n"
                               "\n"
                               "Add the images of an archive (docker save or OCI layout; plain,\n"
                               "gzip or zstd) read from FILE or stdin.\n"
                               "\n"
                               "Options:\n"
                               "  -i, --input FILE  Read FILE instead of stdin\n"
                               "  -q, --quiet       Print only the references\n"
                               "  -h, --help        Show this help\n");
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb load --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                cli_error("load takes no arguments (use -i FILE)");
                return EXIT_USAGE;
        }
        if (input) {
                fd = open(input, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        cli_error("cannot open %s: %m", input);
                        return EXIT_USAGE;
                }
        } else if (isatty(STDIN_FILENO)) {
                cli_error("load reads an archive from stdin, which is a terminal: use -i FILE");
                return EXIT_USAGE;
        }
        if (msb_image_load(fd, &refs, &n) < 0) {
                code = cli_api_error();
        } else {
                for (size_t i = 0; i < n; i++)
                        printf(quiet ? "%s\n" : "Loaded image: %s\n", refs[i]);
        }
        msb_strv_free(refs);
        if (input)
                close(fd);
        return code;
}
