/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The options of run, create and exec: one table (options.c) for parsing
 * and for the help text.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "microsandbox.h"

#define SCOPE_SANDBOX 1u /* how a sandbox is made: run, create */
#define SCOPE_EXEC    2u /* how a command runs: run, exec */
#define SCOPE_RUN     4u /* run only */

struct cli_pull_ui;

#define CLI_MAX_REPEAT 256 /* values of one repeatable option */

struct cli_parsed {
        msb_sandbox_config *sb;
        msb_exec_config *ex;
        msb_pull_options *pull;
        struct cli_pull_ui *pull_ui;
        const char *name;         /* --name, if given */
        const char *timeout_text; /* --timeout as typed, for messages */
        bool tty, interactive, detach;
        bool has_command;
        msb_network net; /* points into the arrays below */
        bool net_set;
        const char *net_rules[CLI_MAX_REPEAT];
        const char *net_dns[CLI_MAX_REPEAT];
        const char *net_ports[CLI_MAX_REPEAT];
};

/* Parses the options of scope into p (configs allocated here; free with
 * cli_parsed_clear()). Returns the index of the first operand, 0 when help
 * was printed, -1 after printing an error. */
int cli_parse(int argc, char **argv, unsigned scope, const char *command, void (*usage)(FILE *),
              struct cli_parsed *p);
void cli_parsed_clear(struct cli_parsed *p);

/* Sets the command from argv[first...] (after an optional "--"), if any
 * (has_command). Also settles tty size and stdin. -1 after printing an
 * error. */
int cli_set_command(struct cli_parsed *p, int argc, char **argv, int first);

/* Pull progress on stderr for the image of a run or create; -1 on OOM. */
int cli_set_pull_progress(struct cli_parsed *p);

void cli_print_options(FILE *f, unsigned scope);
