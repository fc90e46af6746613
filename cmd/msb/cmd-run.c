/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb run: boot a sandbox and run one command in it. Attached (the
 * default), the sandbox is ephemeral: removed when the command ends, and msb
 * exits with the command's exit code. With -d the sandbox stays, the command
 * runs in the background, and msb prints the sandbox name.
 */
#include <stdio.h>

#include "cli.h"
#include "options.h"

static void run_usage(FILE *f)
{
        fprintf(f, "Usage: msb run [OPTIONS] IMAGE [--] [COMMAND [ARG...]]\n"
                   "\n"
                   "Run a command in a new sandbox, stream its output and exit with its exit\n"
                   "code; the sandbox is removed when the command ends. With -d, the sandbox\n"
                   "is kept and the command runs in the background.\n"
                   "\n"
                   "IMAGE is an OCI image (alpine, python:3.12, localhost:5000/app@sha256:...),\n"
                   "'base' (the built-in busybox image) or the path of a directory holding a\n"
                   "root filesystem. COMMAND replaces the image's Cmd and follows its\n"
                   "Entrypoint; without it the image's own command runs.\n"
                   "\n");
        cli_print_options(f, SCOPE_SANDBOX | SCOPE_EXEC | SCOPE_RUN);
        fprintf(f, "\n"
                   "Exit status: the command's own; 126 cannot execute, 127 not found, 128+N\n"
                   "killed by signal N, 124 timed out, 112-125 msb failed (docs/cli.md).\n"
                   "\n"
                   "Examples:\n"
                   "  msb run base -- uname -a\n"
                   "  echo hello | msb run base -- tr a-z A-Z\n"
                   "  msb run python:3.12 -- python3 -c 'print(1)'\n"
                   "  msb run -t -m 1G base\n"
                   "  msb run -d --name web base -- httpd -f -p 8080\n");
}

int cmd_run(int argc, char **argv)
{
        struct cli_parsed p = {0};
        struct cli_signals sigs = {-1, -1};
        msb_sandbox *sb = NULL;
        int idx, code;

        idx = cli_parse(argc, argv, SCOPE_SANDBOX | SCOPE_EXEC | SCOPE_RUN, "run", run_usage, &p);
        if (idx <= 0) {
                code = idx == 0 ? 0 : EXIT_USAGE;
                goto out;
        }
        if (idx >= argc) {
                cli_error("run needs an IMAGE: 'base' or a root filesystem directory");
                fprintf(stderr, "Run 'msb run --help' for usage.\n");
                code = EXIT_USAGE;
                goto out;
        }
        if (msb_sandbox_config_set_image(p.sb, argv[idx]) < 0) {
                code = cli_api_error();
                goto out;
        }
        if (cli_set_command(&p, argc, argv, idx + 1) < 0 || cli_set_pull_progress(&p) < 0) {
                code = EXIT_USAGE;
                goto out;
        }
        msb_exec_config_set_image_command(p.ex, 1);
        msb_sandbox_config_set_ephemeral(p.sb, !p.detach);
        if (cli_signals_open(&sigs) < 0) {
                code = EXIT_SYSTEM;
                goto out;
        }
        code = cli_create(p.sb, &sigs, &sb);
        if (code != 0)
                goto out;
        if (p.detach) {
                code = cli_start_detached(sb, p.ex);
                if (code == 0)
                        printf("%s\n", msb_sandbox_name(sb));
                msb_sandbox_close(sb);
                goto out;
        }
        code = cli_exec_attached(sb, &p, &sigs);
        msb_sandbox_destroy(sb);
out:
        cli_parsed_clear(&p);
        cli_signals_close(&sigs);
        return code;
}
