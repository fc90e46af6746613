/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb image ls|inspect|rm|prune|import: the images in the cache.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/core/json.h"
#include "lib/core/util.h"

static void image_usage(FILE *f)
{
        fprintf(f, "Usage: msb image COMMAND [OPTIONS] [ARG...]\n"
                   "\n"
                   "Manage images.\n"
                   "\n"
                   "Commands:\n"
                   "  ls                      List images\n"
                   "  inspect IMAGE...        Show images as JSON\n"
                   "  rm [-f] IMAGE...        Remove images (refused while a sandbox uses one)\n"
                   "  prune                   Remove untagged images, unused blobs and leftovers\n"
                   "  import DIR|TAR --tag NAME\n"
                   "                          Make an image from a root filesystem\n"
                   "\n"
                   "Run 'msb image COMMAND --help' for more about a command.\n");
}

static int image_ls(int argc, char **argv)
{
        enum { OPT_FORMAT = 256, OPT_DIGESTS };
        static const struct option options[] = {
                {"format", required_argument, NULL, OPT_FORMAT},
                {"digests", no_argument, NULL, OPT_DIGESTS},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        bool json = false, quiet = false, full = false;
        msb_image_info *list = NULL;
        size_t n = 0;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
                switch (c) {
                case OPT_FORMAT:
                        if (!streq(optarg, "table") && !streq(optarg, "json")) {
                                cli_error("unknown format '%s': use table or json", optarg);
                                return EXIT_USAGE;
                        }
                        json = streq(optarg, "json");
                        break;
                case OPT_DIGESTS:
                        full = true;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        printf("Usage: msb image ls [OPTIONS]\n"
                               "\n"
                               "List images: repository, tag, digest, size, age.\n"
                               "\n"
                               "Options:\n"
                               "      --digests            Show whole digests\n"
                               "      --format table|json  Output format (default table)\n"
                               "  -q, --quiet              Print references (or digests) only\n"
                               "  -h, --help               Show this help\n");
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb image ls --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                cli_error("image ls takes no arguments");
                return EXIT_USAGE;
        }
        if (msb_image_list(&list, &n) < 0)
                return cli_api_error();
        if (json) {
                struct json_writer w;
                char t[32], *text;

                json_writer_init(&w);
                json_begin_array(&w);
                for (size_t i = 0; i < n; i++) {
                        json_begin_object(&w);
                        json_kv_string(&w, "ref", list[i].ref);
                        json_kv_string(&w, "repository", list[i].repository);
                        json_kv_string(&w, "tag", list[i].tag);
                        json_kv_string(&w, "digest", list[i].digest);
                        json_kv_uint(&w, "size", list[i].size);
                        json_kv_uint(&w, "disk_size", list[i].disk_size);
                        json_kv_string(&w, "created",
                                       list[i].created_ms
                                               ? format_time_iso(list[i].created_ms, t, sizeof(t))
                                               : NULL);
                        json_kv_string(&w, "added",
                                       format_time_iso(list[i].added_ms, t, sizeof(t)));
                        json_end_object(&w);
                }
                json_end_array(&w);
                text = json_writer_steal(&w);
                if (text)
                        printf("%s\n", text);
                free(text);
        } else if (quiet) {
                for (size_t i = 0; i < n; i++)
                        printf("%s\n", list[i].ref ? list[i].ref : list[i].digest);
        } else {
                printf("%-40s %-16s %-*s %-10s %s\n", "REPOSITORY", "TAG", full ? 71 : 12, "DIGEST",
                       "SIZE", "CREATED");
                for (size_t i = 0; i < n; i++) {
                        char size[32], t[48];

                        printf("%-40s %-16s %-*.*s %-10s %s\n",
                               list[i].repository ? list[i].repository : "<none>",
                               list[i].tag ? list[i].tag : "<none>", full ? 71 : 12, full ? 71 : 12,
                               full ? list[i].digest : list[i].digest + 7,
                               format_bytes(list[i].size, size, sizeof(size)),
                               cli_format_ago(list[i].created_ms, t, sizeof(t)));
                }
        }
        msb_image_list_free(list, n);
        return 0;
}

static int image_inspect(int argc, char **argv)
{
        int code = 0;

        if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
                printf("Usage: msb image inspect IMAGE...\n"
                       "\n"
                       "Show images as a JSON array: references, digest, sizes, platform,\n"
                       "config, layers, root disk, and the manifest and config documents.\n");
                return argc < 2 ? EXIT_USAGE : 0;
        }
        printf("[");
        for (int i = 1, printed = 0; i < argc; i++) {
                char *json = NULL;

                if (msb_image_inspect(argv[i], &json) < 0) {
                        code = cli_api_error();
                        continue;
                }
                printf("%s%s", printed++ ? "," : "", json);
                free(json);
        }
        printf("]\n");
        return code;
}

static int image_rm(int argc, char **argv)
{
        static const struct option options[] = {
                {"force", no_argument, NULL, 'f'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        bool force = false;
        int c, code = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "fh", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        force = true;
                        break;
                case 'h':
                        printf("Usage: msb image rm [-f] IMAGE...\n"
                               "\n"
                               "Remove images: the reference, and what only it used in the\n"
                               "cache. IMAGE may be sha256:DIGEST (every reference of it).\n"
                               "\n"
                               "Options:\n"
                               "  -f, --force  Remove even while a sandbox uses it\n"
                               "  -h, --help   Show this help\n");
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb image rm --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                cli_error("image rm needs an IMAGE");
                return EXIT_USAGE;
        }
        for (int i = optind; i < argc; i++) {
                if (msb_image_remove(argv[i], force) < 0)
                        code = cli_api_error();
                else if (!cli_quiet)
                        printf("Removed %s\n", argv[i]);
        }
        return code;
}

static int image_prune(int argc, char **argv)
{
        uint64_t freed = 0;
        char size[32];

        if (argc > 1) {
                if (streq(argv[1], "-h") || streq(argv[1], "--help")) {
                        printf("Usage: msb image prune\n"
                               "\n"
                               "Remove untagged images no sandbox uses, blobs no image uses and\n"
                               "what interrupted pulls left. Waits for pulls in progress.\n");
                        return 0;
                }
                cli_error("image prune takes no arguments");
                return EXIT_USAGE;
        }
        if (msb_image_prune(&freed) < 0)
                return cli_api_error();
        printf("Freed %s\n", format_bytes(freed, size, sizeof(size)));
        return 0;
}

static int image_import(int argc, char **argv)
{
        static const struct option options[] = {
                {"tag", required_argument, NULL, 't'},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *tag = NULL;
        bool quiet = cli_quiet;
        char *digest = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "t:qh", options, NULL)) != -1) {
                switch (c) {
                case 't':
                        tag = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        printf("Usage: msb image import DIR|TAR --tag NAME[:TAG]\n"
                               "\n"
                               "Make an image of one layer from a root filesystem: a directory\n"
                               "or a tar file (plain, gzip or zstd). Files you own become\n"
                               "root's, like a rootless container's.\n"
                               "\n"
                               "Options:\n"
                               "  -t, --tag NAME[:TAG]  The image's name (required)\n"
                               "  -q, --quiet           Print only the digest\n"
                               "  -h, --help            Show this help\n"
                               "\n"
                               "Example:\n"
                               "  msb image import ./rootfs --tag mytools:1\n");
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb image import --help' for usage.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind != argc - 1 || !tag) {
                cli_error("image import needs one DIR or TAR and --tag NAME");
                return EXIT_USAGE;
        }
        if (msb_image_import(argv[optind], tag, &digest) < 0)
                return cli_api_error();
        if (quiet)
                printf("%s\n", digest);
        else
                printf("Imported %s as %s\n", digest, tag);
        free(digest);
        return 0;
}

int cmd_image(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int argc, char **argv);
        } subs[] = {
                {"ls", image_ls},         {"list", image_ls},   {"inspect", image_inspect},
                {"rm", image_rm},         {"remove", image_rm}, {"prune", image_prune},
                {"import", image_import},
        };

        if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
                image_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
                if (streq(argv[1], subs[i].name))
                        return subs[i].fn(argc - 1, argv + 1);
        cli_error("unknown image command '%s'", argv[1]);
        fprintf(stderr, "Run 'msb image --help' for usage.\n");
        return EXIT_USAGE;
}
