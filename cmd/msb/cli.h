/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the msb front end: the subcommand table, exit codes and
 * the one-line error printer. Every subcommand is `int cmd_<verb>(int argc,
 * char **argv)` returning the process exit code; only main() exits.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "microsandbox.h"

/* Exit codes of msb itself (docs/cli.md). The command's own status passes
 * through unchanged; 126/127/128+N follow the shell. */
enum {
        EXIT_CMD_CANNOT_EXEC = 126,
        EXIT_CMD_NOT_FOUND = 127,
        EXIT_USAGE = 125,
        EXIT_TIMEOUT = 124,
        EXIT_IMAGE_NOT_FOUND = 123,
        EXIT_IMAGE_INVALID = 122,
        EXIT_HOST_MISSING = 121,
        EXIT_ACCEL = 120,
        EXIT_BOOT_TIMEOUT = 119,
        EXIT_VM_FAILED = 118,
        EXIT_PROTOCOL = 117,
        EXIT_SYSTEM = 116,
        EXIT_INTERRUPTED = 130,
};

/* Global flags parsed by main(). */
extern bool cli_quiet;

/* Prints "msb: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the last API error and returns the exit code for its kind. */
int cli_api_error(void);

/* Parsers for option values that print their own error; 0 or -EINVAL. */
int cli_parse_size(const char *opt, const char *value, uint64_t *ret);
int cli_parse_duration(const char *opt, const char *value, uint64_t *ret_ms);
int cli_parse_uint(const char *opt, const char *value, uint32_t min, uint32_t max, uint32_t *ret);

/* Signals msb handles itself, blocked and read through signalfds. */
struct cli_signals {
        int stop_fd;  /* SIGINT, SIGTERM, SIGHUP, SIGQUIT */
        int other_fd; /* SIGUSR1, SIGUSR2, SIGWINCH */
};
int cli_signals_open(struct cli_signals *ret);
void cli_signals_close(struct cli_signals *s);

struct cli_attach_opts {
        bool tty;
        bool forward_stdin;
        const char *timeout_text; /* for the timeout message */
        const struct cli_signals *signals;
};

/* Runs a started command attached to this terminal: stdin forwarded,
 * stdout/stderr written out, signals and window size passed on. Returns the
 * exit code msb should end with. */
int cli_attach(msb_exec *ex, const struct cli_attach_opts *opts);

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_version(int argc, char **argv);
