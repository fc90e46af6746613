/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb create: make a sandbox and boot it in the background; prints its name.
 */
#include <stdio.h>

#include "cli.h"
#include "options.h"

static void create_usage(FILE *f)
{
        fprintf(f, "Usage: msb create [OPTIONS] IMAGE\n"
                   "\n"
                   "Create a sandbox and boot it in the background; print its name. Run\n"
                   "commands in it with 'msb exec', stop it with 'msb stop'.\n"
                   "\n");
        cli_print_options(f, SCOPE_SANDBOX);
        fprintf(f, "\n"
                   "Examples:\n"
                   "  msb create --name dev base\n"
                   "  msb create --idle-timeout 10m --label team=a base\n");
}

int cmd_create(int argc, char **argv)
{
        struct cli_parsed p = {0};
        struct cli_signals sigs = {-1, -1};
        msb_sandbox *sb = NULL;
        int idx, code;

        idx = cli_parse(argc, argv, SCOPE_SANDBOX, "create", create_usage, &p);
        if (idx <= 0) {
                code = idx == 0 ? 0 : EXIT_USAGE;
                goto out;
        }
        if (idx != argc - 1) {
                cli_error(idx >= argc ? "create needs an IMAGE: 'base' or a root filesystem "
                                        "directory"
                                      : "create takes one IMAGE; run commands with 'msb exec'");
                code = EXIT_USAGE;
                goto out;
        }
        if (msb_sandbox_config_set_image(p.sb, argv[idx]) < 0) {
                code = cli_api_error();
                goto out;
        }
        if (cli_set_pull_progress(&p) < 0) {
                code = EXIT_SYSTEM;
                goto out;
        }
        if (cli_signals_open(&sigs) < 0) {
                code = EXIT_SYSTEM;
                goto out;
        }
        code = cli_create(p.sb, &sigs, &sb);
        if (code == 0) {
                printf("%s\n", msb_sandbox_name(sb));
                msb_sandbox_close(sb);
        }
out:
        cli_parsed_clear(&p);
        cli_signals_close(&sigs);
        return code;
}
