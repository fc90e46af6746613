/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the options shared by run, create and exec live in
 * one table; each entry says which commands take it, how it is parsed and
 * how it is explained. The getopt table and the help text of each command
 * are generated from it, so the two can never disagree.
 */
#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "lib/core/util.h"

enum opt_id {
        O_NAME = 256,
        O_MEMORY,
        O_CPUS,
        O_ROOT_DISK,
        O_ACCEL,
        O_BOOT_TIMEOUT,
        O_IDLE_TIMEOUT,
        O_MAX_DURATION,
        O_LABEL,
        O_REPLACE,
        O_ENV,
        O_WORKDIR,
        O_USER,
        O_TTY,
        O_INTERACTIVE,
        O_TIMEOUT,
        O_RLIMIT,
        O_DETACH,
        O_PULL,
        O_ENTRYPOINT,
        O_NET,
        O_NET_RULE,
        O_NO_NET,
        O_NET_DEFAULT_EGRESS,
        O_DNS,
        O_PORT,
        O_MAX_CONNECTIONS,
        O_QUIET,
        O_HELP,
};

struct cli_option {
        int id;
        const char *name;
        char key;        /* short option, or 0 */
        const char *arg; /* argument name for the help, NULL: a flag */
        unsigned scopes;
        const char *help;
};

static const struct cli_option options[] = {
        {O_NAME, "name", 'n', "NAME", SCOPE_SANDBOX, "Name of the sandbox (default: generated)"},
        {O_DETACH, "detach", 'd', NULL, SCOPE_RUN,
         "Keep the sandbox; run COMMAND in the background"},
        {O_ENTRYPOINT, "entrypoint", 0, "CMD", SCOPE_RUN,
         "Run CMD instead of the image's Entrypoint"},
        {O_PULL, "pull", 0, "POLICY", SCOPE_SANDBOX,
         "When to pull: always, if-missing (default), never"},
        {O_ENV, "env", 'e', "KEY=VALUE", SCOPE_EXEC,
         "Set a variable (KEY alone: copy it from here)"},
        {O_WORKDIR, "workdir", 'w', "DIR", SCOPE_EXEC, "Working directory inside the sandbox"},
        {O_USER, "user", 'u', "USER", SCOPE_EXEC, "Run as name, uid, uid:gid or name:group"},
        {O_TTY, "tty", 't', NULL, SCOPE_EXEC, "Allocate a terminal (shells, interactive use)"},
        {O_INTERACTIVE, "interactive", 'i', NULL, SCOPE_EXEC,
         "Forward stdin even when it is a terminal"},
        {O_TIMEOUT, "timeout", 0, "DURATION", SCOPE_EXEC,
         "Kill the command after DURATION (exit code 124)"},
        {O_RLIMIT, "rlimit", 0, "NAME=SOFT[:HARD]", SCOPE_EXEC,
         "Set a resource limit, e.g. nofile=1024"},
        {O_MEMORY, "memory", 'm', "SIZE", SCOPE_SANDBOX, "Guest memory (default 512M)"},
        {O_CPUS, "cpus", 'c', "N", SCOPE_SANDBOX, "Number of vCPUs (default 1)"},
        {O_ROOT_DISK, "root-disk", 0, "SIZE", SCOPE_SANDBOX,
         "Size of the writable root layer (default 4G)"},
        {O_LABEL, "label", 0, "KEY=VALUE", SCOPE_SANDBOX, "Attach a label (repeatable)"},
        {O_IDLE_TIMEOUT, "idle-timeout", 0, "DURATION", SCOPE_SANDBOX,
         "Stop after DURATION with nothing running"},
        {O_MAX_DURATION, "max-duration", 0, "DURATION", SCOPE_SANDBOX,
         "Stop DURATION after each start"},
        {O_REPLACE, "replace", 0, NULL, SCOPE_SANDBOX, "Remove a sandbox of the same name first"},
        {O_PORT, "port", 'p', "[BIND:]HOST:GUEST[/udp]", SCOPE_SANDBOX,
         "Publish a guest port (bind 127.0.0.1 by default)"},
        {O_NET, "net", 0, "PROFILE", SCOPE_SANDBOX,
         "public (default), none, all, or e.g. public,host"},
        {O_NET_RULE, "net-rule", 0, "RULE", SCOPE_SANDBOX,
         "allow|deny[:egress|ingress]@TARGET[:PROTO[:PORT]]"},
        {O_NET_DEFAULT_EGRESS, "net-default-egress", 0, "allow|deny", SCOPE_SANDBOX,
         "What flows no rule matches get"},
        {O_NO_NET, "no-net", 0, NULL, SCOPE_SANDBOX, "No network interface at all"},
        {O_DNS, "dns-nameserver", 0, "IP[:PORT]", SCOPE_SANDBOX,
         "Upstream resolver (default: the host's)"},
        {O_MAX_CONNECTIONS, "max-connections", 0, "N", SCOPE_SANDBOX,
         "Concurrent TCP connections (default 256)"},
        {O_ACCEL, "accel", 0, "auto|kvm|tcg", SCOPE_SANDBOX,
         "Accelerator (default: auto, or $MSB_ACCEL)"},
        {O_BOOT_TIMEOUT, "boot-timeout", 0, "DURATION", SCOPE_SANDBOX,
         "How long to wait for the guest to boot"},
        {O_QUIET, "quiet", 'q', NULL, SCOPE_SANDBOX | SCOPE_EXEC,
         "Print nothing but the command's output"},
        {O_HELP, "help", 'h', NULL, SCOPE_SANDBOX | SCOPE_EXEC, "Show this help"},
};

void cli_print_options(FILE *f, unsigned scope)
{
        fprintf(f, "Options:\n");
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const struct cli_option *o = &options[i];
                char left[64];

                if (!(o->scopes & scope))
                        continue;
                char key[8] = "    ";

                if (o->key)
                        snprintf(key, sizeof(key), "-%c, ", o->key);
                snprintf(left, sizeof(left), "%s--%s%s%s", key, o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
                if (strlen(left) <= 28)
                        fprintf(f, "  %-28s %s\n", left, o->help);
                else
                        fprintf(f, "  %s\n  %-28s %s\n", left, "", o->help);
        }
}

static int set_env(msb_exec_config *cfg, const char *arg)
{
        _cleanup_free_ char *kv = NULL;
        const char *value;

        if (strchr(arg, '='))
                return msb_exec_config_add_env(cfg, arg);
        value = getenv(arg);
        if (!value)
                return 0; /* like docker: an unset variable is left out */
        kv = strdup_printf("%s=%s", arg, value);
        return kv ? msb_exec_config_add_env(cfg, kv) : -1;
}

/* Appends arg to a fixed-size list of option values. */
static int push(const char **list, size_t *n, const char *arg, const char *opt)
{
        if (*n >= CLI_MAX_REPEAT) {
                cli_error("too many %s options (at most %d)", opt, CLI_MAX_REPEAT);
                return -1;
        }
        list[(*n)++] = arg;
        return 0;
}

/* Applies one option; -1 after printing an error. */
static int apply(struct cli_parsed *p, int id, const char *arg)
{
        uint64_t bytes, ms;
        uint32_t n;
        int r = 0;

        switch (id) {
        case O_NAME:
                r = msb_sandbox_config_set_name(p->sb, arg);
                p->name = arg;
                break;
        case O_MEMORY:
                if (cli_parse_size("--memory", arg, &bytes) < 0)
                        return -1;
                if (!strpbrk(arg, "KkMmGgTtPpBb"))
                        bytes <<= 20; /* a bare number means MiB */
                r = msb_sandbox_config_set_memory_mib(p->sb,
                                                      (uint32_t)MIN(bytes >> 20, UINT32_MAX));
                break;
        case O_CPUS:
                if (cli_parse_uint("--cpus", arg, 1, 64, &n) < 0)
                        return -1;
                r = msb_sandbox_config_set_cpus(p->sb, n);
                break;
        case O_ROOT_DISK:
                if (cli_parse_size("--root-disk", arg, &bytes) < 0)
                        return -1;
                r = msb_sandbox_config_set_root_disk_size(p->sb, bytes);
                break;
        case O_ACCEL:
                r = msb_sandbox_config_set_accel(p->sb, arg);
                break;
        case O_BOOT_TIMEOUT:
                if (cli_parse_duration("--boot-timeout", arg, &ms) < 0)
                        return -1;
                r = msb_sandbox_config_set_boot_timeout_ms(p->sb, ms);
                break;
        case O_IDLE_TIMEOUT:
                if (cli_parse_duration("--idle-timeout", arg, &ms) < 0)
                        return -1;
                r = msb_sandbox_config_set_idle_timeout_ms(p->sb, ms);
                break;
        case O_MAX_DURATION:
                if (cli_parse_duration("--max-duration", arg, &ms) < 0)
                        return -1;
                r = msb_sandbox_config_set_max_duration_ms(p->sb, ms);
                break;
        case O_LABEL:
                r = msb_sandbox_config_add_label(p->sb, arg);
                break;
        case O_REPLACE:
                r = msb_sandbox_config_set_replace(p->sb, 1);
                break;
        case O_ENV:
                r = set_env(p->ex, arg);
                break;
        case O_WORKDIR:
                r = msb_exec_config_set_cwd(p->ex, arg);
                break;
        case O_USER:
                r = msb_exec_config_set_user(p->ex, arg);
                break;
        case O_TTY:
                p->tty = true;
                break;
        case O_INTERACTIVE:
                p->interactive = true;
                break;
        case O_TIMEOUT:
                if (cli_parse_duration("--timeout", arg, &ms) < 0)
                        return -1;
                if (ms == 0) {
                        cli_error("--timeout must be more than 0");
                        return -1;
                }
                p->timeout_text = arg;
                r = msb_exec_config_set_timeout_ms(p->ex, ms);
                break;
        case O_RLIMIT:
                r = msb_exec_config_add_rlimit(p->ex, arg);
                break;
        case O_DETACH:
                p->detach = true;
                break;
        case O_NET:
                p->net.profile = arg;
                p->net_set = true;
                break;
        case O_NET_RULE:
                r = push(p->net_rules, &p->net.n_rules, arg, "--net-rule");
                p->net_set = true;
                break;
        case O_NO_NET:
                p->net.enabled = 0;
                p->net_set = true;
                break;
        case O_NET_DEFAULT_EGRESS:
                if (!streq(arg, "allow") && !streq(arg, "deny")) {
                        cli_error("--net-default-egress takes allow or deny, not '%s'", arg);
                        return -1;
                }
                p->net.default_egress = streq(arg, "allow") ? MSB_NET_ALLOW : MSB_NET_DENY;
                p->net_set = true;
                break;
        case O_DNS:
                r = push(p->net_dns, &p->net.n_dns_nameservers, arg, "--dns-nameserver");
                p->net_set = true;
                break;
        case O_PORT:
                r = push(p->net_ports, &p->net.n_ports, arg, "--port");
                p->net_set = true;
                break;
        case O_MAX_CONNECTIONS:
                if (cli_parse_uint("--max-connections", arg, 1, 1u << 20, &n) < 0)
                        return -1;
                p->net.max_connections = n;
                p->net_set = true;
                break;
        case O_ENTRYPOINT:
                r = msb_exec_config_set_entrypoint(p->ex, arg);
                break;
        case O_PULL:
                if (streq(arg, "always"))
                        r = msb_pull_options_set_policy(p->pull, MSB_PULL_ALWAYS);
                else if (streq(arg, "if-missing") || streq(arg, "missing"))
                        r = msb_pull_options_set_policy(p->pull, MSB_PULL_IF_MISSING);
                else if (streq(arg, "never"))
                        r = msb_pull_options_set_policy(p->pull, MSB_PULL_NEVER);
                else {
                        cli_error("unknown pull policy '%s': use always, if-missing or never", arg);
                        return -1;
                }
                break;
        case O_QUIET:
                cli_quiet = true;
                break;
        }
        if (r < 0) {
                if (id != O_NET_RULE && id != O_DNS && id != O_PORT)
                        cli_api_error();
                return -1;
        }
        return 0;
}

int cli_parse(int argc, char **argv, unsigned scope, const char *command, void (*usage)(FILE *),
              struct cli_parsed *p)
{
        struct option longopts[ARRAY_SIZE(options) + 1] = {0};
        char shortopts[2 * ARRAY_SIZE(options) + 2] = "+";
        size_t nl = 0, ns = 1;
        int c;

        p->sb = msb_sandbox_config_new();
        p->ex = msb_exec_config_new();
        p->pull = msb_pull_options_new();
        if (!p->sb || !p->ex || !p->pull) {
                cli_error("out of memory");
                return -1;
        }
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const struct cli_option *o = &options[i];
                if (!(o->scopes & scope))
                        continue;
                longopts[nl++] = (struct option){o->name, o->arg ? required_argument : no_argument,
                                                 NULL, o->id};
                if (o->key) {
                        shortopts[ns++] = o->key;
                        if (o->arg)
                                shortopts[ns++] = ':';
                }
        }
        msb_network_init(&p->net);
        p->net.rules = p->net_rules;
        p->net.dns_nameservers = p->net_dns;
        p->net.ports = p->net_ports;
        optind = 0;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
                int id = c;

                for (size_t i = 0; c < 256 && i < ARRAY_SIZE(options); i++)
                        if (options[i].key == c)
                                id = options[i].id;
                if (id == O_HELP) {
                        usage(stdout);
                        return 0;
                }
                if (id < 256) {
                        fprintf(stderr, "Run 'msb %s --help' for usage.\n", command);
                        return -1;
                }
                if (apply(p, id, optarg) < 0)
                        return -1;
        }
        if (p->net_set && msb_sandbox_config_set_network(p->sb, &p->net) < 0) {
                cli_api_error();
                return -1;
        }
        return optind;
}

void cli_parsed_clear(struct cli_parsed *p)
{
        msb_sandbox_config_free(p->sb);
        msb_exec_config_free(p->ex);
        msb_pull_options_free(p->pull);
        cli_pull_ui_free(p->pull_ui);
        *p = (struct cli_parsed){0};
}

int cli_set_command(struct cli_parsed *p, int argc, char **argv, int first)
{
        uint16_t rows = 24, cols = 80;
        struct winsize ws;

        if (first < argc && streq(argv[first], "--"))
                first++;
        if (first < argc) {
                if (msb_exec_config_set_argv(p->ex, (size_t)(argc - first),
                                             (const char *const *)argv + first) < 0)
                        return cli_api_error(), -1;
                p->has_command = true;
        }
        if (p->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
                rows = ws.ws_row;
                cols = ws.ws_col;
        }
        msb_exec_config_set_tty(p->ex, p->tty, rows, cols);
        /* Like docker: a terminal on stdin is only read with -t or -i; a pipe
         * or a file always is. Detached commands read nothing. */
        p->interactive = !p->detach && (p->interactive || p->tty || !isatty(STDIN_FILENO));
        msb_exec_config_set_stdin(p->ex, p->interactive);
        msb_exec_config_set_detached(p->ex, p->detach);
        return 0;
}

int cli_set_pull_progress(struct cli_parsed *p)
{
        p->pull_ui = cli_pull_ui_new(stderr, cli_quiet);
        if (!p->pull_ui) {
                cli_error("out of memory");
                return -1;
        }
        msb_pull_options_set_progress(p->pull, cli_pull_progress, p->pull_ui);
        msb_sandbox_config_set_pull_options(p->sb, p->pull);
        return 0;
}
