/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb cp: copy files and directories between the host and a sandbox.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lib/core/util.h"

static void cp_usage(FILE *f)
{
        fprintf(f, "Usage: msb cp SRC DST\n"
                   "\n"
                   "Copy a file or a directory tree between the host and a running sandbox;\n"
                   "one side is NAME:/path in the sandbox. Modes and symlinks are kept. A\n"
                   "directory copied onto an existing directory goes inside it.\n"
                   "\n"
                   "Examples:\n"
                   "  msb cp ./src dev:/work\n"
                   "  msb cp dev:/var/log/app.log .\n");
}

/* "NAME:/path" → name and path (pointers into a copy); 0 when arg is a
 * host path. */
static int split_remote(const char *arg, char **ret_name, const char **ret_path)
{
        const char *colon = strchr(arg, ':');
        char *name;

        if (!colon || colon == arg || colon[1] != '/')
                return 0;
        name = strndup(arg, (size_t)(colon - arg));
        if (!name)
                return -1;
        if (strchr(name, '/')) { /* ./a:/b is a host path */
                free(name);
                return 0;
        }
        *ret_name = name;
        *ret_path = colon + 1;
        return 1;
}

int cmd_cp(int argc, char **argv)
{
        _cleanup_free_ char *src_name = NULL, *dst_name = NULL;
        const char *src_path = NULL, *dst_path = NULL;
        msb_sandbox *sb = NULL;
        int src_remote, dst_remote, r;

        if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                cp_usage(stdout);
                return 0;
        }
        if (argc != 3) {
                cli_error("cp needs a SRC and a DST");
                fprintf(stderr, "Run 'msb cp --help' for usage.\n");
                return EXIT_USAGE;
        }
        src_remote = split_remote(argv[1], &src_name, &src_path);
        dst_remote = split_remote(argv[2], &dst_name, &dst_path);
        if (src_remote < 0 || dst_remote < 0) {
                cli_error("out of memory");
                return EXIT_SYSTEM;
        }
        if (src_remote == dst_remote) {
                cli_error("one side of cp must be NAME:/path in a sandbox, the other a host "
                          "path");
                return EXIT_USAGE;
        }
        if (msb_sandbox_open(src_remote ? src_name : dst_name, &sb) < 0)
                return cli_api_error();
        if (src_remote)
                r = msb_fs_copy_out(sb, src_path, argv[2]);
        else
                r = msb_fs_copy_in(sb, argv[1], dst_path);
        msb_sandbox_close(sb);
        return r < 0 ? cli_api_error() : 0;
}
