/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the msb front end: the subcommand table, exit codes and
 * the one-line error printer. Every subcommand is `int cmd_<verb>(int argc,
 * char **argv)` returning the process exit code; only main() exits.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "microsandbox.h"

/* Exit codes of msb itself (docs/cli.md). The command's own status passes
 * through unchanged; 126/127/128+N follow the shell. */
enum {
        EXIT_FAILURE_GENERIC = 1, /* a command that is not run: e.g. doctor found problems */
        EXIT_REGISTRY = 112,
        EXIT_NOT_RUNNING = 113,
        EXIT_CONFLICT = 114,
        EXIT_NOT_FOUND = 115,
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

/* "3 minutes", "2 days" since a Unix time in ms ("-" when 0), and the same
 * with " ago". Return buf. */
const char *cli_format_age(int64_t ms, char *buf, size_t size);
const char *cli_format_ago(int64_t ms, char *buf, size_t size);

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

/* Pull progress (pull-progress.c): bars on a terminal, lines otherwise. */
struct cli_pull_ui;
struct cli_pull_ui *cli_pull_ui_new(FILE *out, bool quiet);
void cli_pull_progress(const msb_pull_event *ev, void *userdata); /* userdata: the ui */
const char *cli_pull_ui_ref(const struct cli_pull_ui *ui);        /* canonical, once known */
void cli_pull_ui_free(struct cli_pull_ui *ui);

struct cli_parsed;
/* Creates (and boots) a sandbox, cancellable by the stop signals; prints
 * the accelerator notice unless quiet. 0, or the exit code of the failure. */
int cli_create(msb_sandbox_config *cfg, const struct cli_signals *sigs, msb_sandbox **ret);

/* Runs the parsed command in sb attached to the terminal: the exit code. */
int cli_exec_attached(msb_sandbox *sb, const struct cli_parsed *p, const struct cli_signals *sigs);

/* Starts the (detached) command and waits until it started: 0 or an exit
 * code after printing why it did not. */
int cli_start_detached(msb_sandbox *sb, const msb_exec_config *cfg);

int cmd_create(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_version(int argc, char **argv);
