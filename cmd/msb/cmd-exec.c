/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb exec: run a command in a running sandbox, attached to this terminal.
 */
#include <stdio.h>

#include "cli.h"
#include "options.h"

static void exec_usage(FILE *f)
{
        fprintf(f, "Usage: msb exec [OPTIONS] NAME [--] COMMAND [ARG...]\n"
                   "\n"
                   "Run a command in a running sandbox, stream its output and exit with its\n"
                   "exit code (the same codes as 'msb run').\n"
                   "\n");
        cli_print_options(f, SCOPE_EXEC);
        fprintf(f, "\n"
                   "Examples:\n"
                   "  msb exec dev -- ls -l /\n"
                   "  msb exec -t dev -- sh\n");
}

int cmd_exec(int argc, char **argv)
{
        struct cli_parsed p = {0};
        struct cli_signals sigs = {-1, -1};
        msb_sandbox *sb = NULL;
        int idx, code;

        idx = cli_parse(argc, argv, SCOPE_EXEC, "exec", exec_usage, &p);
        if (idx <= 0) {
                code = idx == 0 ? 0 : EXIT_USAGE;
                goto out;
        }
        if (idx >= argc) {
                cli_error("exec needs a sandbox NAME and a COMMAND");
                code = EXIT_USAGE;
                goto out;
        }
        if (cli_set_command(&p, argc, argv, idx + 1) < 0) {
                code = EXIT_USAGE;
                goto out;
        }
        if (!p.has_command) {
                cli_error("exec needs a COMMAND after the sandbox name");
                code = EXIT_USAGE;
                goto out;
        }
        if (cli_signals_open(&sigs) < 0) {
                code = EXIT_SYSTEM;
                goto out;
        }
        if (msb_sandbox_open(argv[idx], &sb) < 0) {
                code = cli_api_error();
                goto out;
        }
        code = cli_exec_attached(sb, &p, &sigs);
        msb_sandbox_close(sb);
out:
        cli_parsed_clear(&p);
        cli_signals_close(&sigs);
        return code;
}
