/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: configuration objects are plain structs behind
 * setters that validate each value as it arrives, so a bad value fails at
 * the call that passed it, with a message naming it, and a configuration
 * that exists is always valid.
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "internal.h"
#include "lib/core/util.h"
#include "lib/net/net.h"

static bool sandbox_name_is_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > SANDBOX_NAME_MAX || !isalnum((unsigned char)name[0]))
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)name[i];
                if (!isalnum(c) && c != '_' && c != '.' && c != '-')
                        return false;
        }
        return true;
}

int sandbox_name_check(const char *name)
{
        if (!name || !sandbox_name_is_valid(name))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "invalid sandbox name '%s': use 1-128 of [A-Za-z0-9_.-], "
                                 "starting with a letter or digit",
                                 name ? name : "");
        return 0;
}

static int replace_string(char **field, const char *value)
{
        char *copy = NULL;

        if (value) {
                copy = strdup(value);
                if (!copy)
                        return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        free(*field);
        *field = copy;
        return 0;
}

static void strv_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void sandbox_net_clear(struct sandbox_net *n)
{
        free(n->profile);
        strv_free(n->rules, n->n_rules);
        strv_free(n->dns, n->n_dns);
        strv_free(n->ports, n->n_ports);
        *n = (struct sandbox_net){0};
}

msb_sandbox_config *msb_sandbox_config_new(void)
{
        msb_sandbox_config *cfg = calloc(1, sizeof(*cfg));

        if (!cfg)
                return NULL;
        cfg->image = strdup("base");
        if (!cfg->image) {
                free(cfg);
                return NULL;
        }
        cfg->memory_mib = SANDBOX_DEFAULT_MEM_MIB;
        cfg->cpus = SANDBOX_DEFAULT_CPUS;
        cfg->root_disk_bytes = SANDBOX_DEFAULT_DISK;
        cfg->cancel_fd = -1;
        cfg->net.enabled = true;
        cfg->net.default_egress = MSB_NET_DEFAULT;
        return cfg;
}

void msb_sandbox_config_free(msb_sandbox_config *cfg)
{
        if (!cfg)
                return;
        free(cfg->image);
        free(cfg->name);
        free(cfg->accel);
        strv_free(cfg->labels, cfg->n_labels);
        sandbox_net_clear(&cfg->net);
        free(cfg);
}

int msb_sandbox_config_set_image(msb_sandbox_config *cfg, const char *image)
{
        if (!image || !*image)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "image must not be empty");
        return replace_string(&cfg->image, image);
}

int msb_sandbox_config_set_name(msb_sandbox_config *cfg, const char *name)
{
        int r = sandbox_name_check(name);

        return r < 0 ? r : replace_string(&cfg->name, name);
}

int msb_sandbox_config_set_memory_mib(msb_sandbox_config *cfg, uint32_t mib)
{
        if (mib < SANDBOX_MIN_MEM_MIB || mib > SANDBOX_MAX_MEM_MIB)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -ERANGE,
                                 "memory %u MiB is out of range (%u MiB to %u MiB)", mib,
                                 SANDBOX_MIN_MEM_MIB, SANDBOX_MAX_MEM_MIB);
        cfg->memory_mib = mib;
        return 0;
}

int msb_sandbox_config_set_cpus(msb_sandbox_config *cfg, uint32_t cpus)
{
        if (cpus < 1 || cpus > SANDBOX_MAX_CPUS)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -ERANGE,
                                 "cpus %u is out of range (1 to %u)", cpus, SANDBOX_MAX_CPUS);
        cfg->cpus = cpus;
        return 0;
}

int msb_sandbox_config_set_accel(msb_sandbox_config *cfg, const char *accel)
{
        if (!accel || (!streq(accel, "auto") && !streq(accel, "kvm") && !streq(accel, "tcg")))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "unknown accelerator '%s': use auto, kvm or tcg",
                                 accel ? accel : "");
        return replace_string(&cfg->accel, accel);
}

int msb_sandbox_config_set_root_disk_size(msb_sandbox_config *cfg, uint64_t bytes)
{
        if (bytes < SANDBOX_MIN_DISK || bytes > SANDBOX_MAX_DISK)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -ERANGE,
                                 "root disk size is out of range (64M to 16T)");
        cfg->root_disk_bytes = bytes;
        return 0;
}

int msb_sandbox_config_set_boot_timeout_ms(msb_sandbox_config *cfg, uint64_t ms)
{
        cfg->boot_timeout_ms = ms;
        return 0;
}

int msb_sandbox_config_set_cancel_fd(msb_sandbox_config *cfg, int fd)
{
        cfg->cancel_fd = fd < 0 ? -1 : fd;
        return 0;
}

int msb_sandbox_config_set_ephemeral(msb_sandbox_config *cfg, int ephemeral)
{
        cfg->ephemeral = ephemeral != 0;
        return 0;
}

int msb_sandbox_config_set_idle_timeout_ms(msb_sandbox_config *cfg, uint64_t ms)
{
        cfg->idle_timeout_ms = ms;
        return 0;
}

int msb_sandbox_config_set_max_duration_ms(msb_sandbox_config *cfg, uint64_t ms)
{
        cfg->max_duration_ms = ms;
        return 0;
}

void msb_network_init(msb_network *net)
{
        *net = (msb_network){.enabled = 1, .default_egress = MSB_NET_DEFAULT};
}

/* Checks each entry with check (which may rewrite it into canonical form in
 * buf) and copies the results into a new vector. */
static int copy_checked(const char *const *in, size_t n, size_t max, const char *what,
                        int (*check)(const char *text, char *buf, size_t size), char ***ret)
{
        char **v;

        *ret = NULL;
        if (n == 0)
                return 0;
        if (!in || n > max)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -E2BIG, "too many %ss (at most %zu)",
                                 what, max);
        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                char buf[512];
                int r = in[i] ? check(in[i], buf, sizeof(buf)) : -EINVAL;
                if (r < 0) {
                        strv_free(v, i);
                        return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "invalid %s '%s'", what,
                                         in[i] ? in[i] : "");
                }
                v[i] = strdup(buf);
                if (!v[i]) {
                        strv_free(v, i);
                        return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
                }
        }
        *ret = v;
        return 0;
}

static int check_rule(const char *text, char *buf, size_t size)
{
        struct net_rule rule;
        int r = net_policy_parse_rule(text, &rule);

        return r < 0 ? r : net_rule_format(&rule, buf, size);
}

static int check_port(const char *text, char *buf, size_t size)
{
        struct net_port port;
        int r = net_port_parse(text, &port);

        return r < 0 ? r : net_port_format(&port, buf, size);
}

static int check_nameserver(const char *text, char *buf, size_t size)
{
        struct sockaddr_in6 sa;
        int r = net_nameserver_parse(text, &sa);

        if (r < 0)
                return r;
        snprintf(buf, size, "%s", text);
        return 0;
}

int msb_sandbox_config_set_network(msb_sandbox_config *cfg, const msb_network *in)
{
        struct sandbox_net n = {.enabled = in->enabled != 0,
                                .default_egress = in->default_egress,
                                .max_connections = in->max_connections};
        struct net_policy probe;
        int r;

        if (in->profile) {
                if (net_policy_from_profile(in->profile, &probe) < 0)
                        return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                         "unknown network profile '%s': use public, none, all, "
                                         "or groups like public,private,host",
                                         in->profile);
                net_policy_done(&probe);
                n.profile = strdup(in->profile);
                if (!n.profile)
                        return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        if (in->default_egress < MSB_NET_DEFAULT || in->default_egress > MSB_NET_ALLOW) {
                sandbox_net_clear(&n);
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "invalid default egress");
        }
        r = copy_checked(in->rules, in->n_rules, NET_POLICY_MAX_RULES, "network rule", check_rule,
                         &n.rules);
        if (r >= 0)
                r = copy_checked(in->dns_nameservers, in->n_dns_nameservers, 16, "nameserver",
                                 check_nameserver, &n.dns);
        if (r >= 0)
                r = copy_checked(in->ports, in->n_ports, 256, "port", check_port, &n.ports);
        if (r < 0) {
                sandbox_net_clear(&n);
                return r;
        }
        n.n_rules = in->n_rules;
        n.n_dns = in->n_dns_nameservers;
        n.n_ports = in->n_ports;
        sandbox_net_clear(&cfg->net);
        cfg->net = n;
        return 0;
}

int msb_sandbox_config_set_pull_options(msb_sandbox_config *cfg, const msb_pull_options *opts)
{
        cfg->pull = opts;
        return 0;
}

int msb_sandbox_config_set_replace(msb_sandbox_config *cfg, int replace)
{
        cfg->replace = replace != 0;
        return 0;
}

/* Adds or replaces "KEY=VALUE" (or "KEY" for an empty value) in a string
 * vector keyed by what precedes '='. */
static int strv_put_keyed(char ***v, size_t *n, size_t max, const char *kv)
{
        size_t keylen = strcspn(kv, "=");
        char *copy = kv[keylen] ? strdup(kv) : strdup_printf("%s=", kv);
        char **nv;

        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < *n; i++) {
                if (strncmp((*v)[i], copy, keylen + 1) == 0) {
                        free((*v)[i]);
                        (*v)[i] = copy;
                        return 0;
                }
        }
        if (*n >= max) {
                free(copy);
                return -E2BIG;
        }
        nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv) {
                free(copy);
                return -ENOMEM;
        }
        nv[(*n)++] = copy;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

int msb_sandbox_config_add_label(msb_sandbox_config *cfg, const char *kv)
{
        size_t keylen = kv ? strcspn(kv, "=") : 0;
        int r;

        if (!kv || keylen == 0 || keylen > 128 || strlen(kv) > 4096)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "invalid label '%s': expected KEY=VALUE", kv ? kv : "");
        r = strv_put_keyed(&cfg->labels, &cfg->n_labels, 256, kv);
        if (r < 0)
                return error_set(MSB_ERR_INVALID_ARGUMENT, r, "too many labels");
        return 0;
}

msb_exec_config *msb_exec_config_new(void)
{
        msb_exec_config *cfg = calloc(1, sizeof(*cfg));

        if (!cfg)
                return NULL;
        cfg->rows = 24;
        cfg->cols = 80;
        return cfg;
}

void msb_exec_config_free(msb_exec_config *cfg)
{
        if (!cfg)
                return;
        strv_free(cfg->argv, cfg->argc);
        strv_free(cfg->env, cfg->envc);
        free(cfg->cwd);
        free(cfg->user);
        free(cfg->entrypoint);
        free(cfg);
}

static bool string_ok(const char *s)
{
        return s && strlen(s) < PROTO_MAX_STRING;
}

int msb_exec_config_set_argv(msb_exec_config *cfg, size_t argc, const char *const *argv)
{
        char **v;

        if (argc < 1 || argc > PROTO_MAX_ARGS || !argv || !argv[0] || !*argv[0])
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no command given");
        v = calloc(argc + 1, sizeof(char *));
        if (!v)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        for (size_t i = 0; i < argc; i++) {
                if (!string_ok(argv[i]) || !(v[i] = strdup(argv[i]))) {
                        strv_free(v, i);
                        return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                         "argument %zu is missing or too long", i);
                }
        }
        strv_free(cfg->argv, cfg->argc);
        cfg->argv = v;
        cfg->argc = argc;
        return 0;
}

int msb_exec_config_add_env(msb_exec_config *cfg, const char *kv)
{
        const char *eq = kv ? strchr(kv, '=') : NULL;
        int r;

        if (!eq || eq == kv || !string_ok(kv))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "invalid environment entry '%s': expected KEY=VALUE",
                                 kv ? kv : "");
        r = strv_put_keyed(&cfg->env, &cfg->envc, PROTO_MAX_ENV, kv);
        if (r == -E2BIG)
                return error_set(MSB_ERR_INVALID_ARGUMENT, r, "too many environment entries");
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "out of memory");
        return 0;
}

int msb_exec_config_set_cwd(msb_exec_config *cfg, const char *cwd)
{
        if (cwd && (cwd[0] != '/' || !string_ok(cwd)))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "working directory '%s' must be an absolute path", cwd);
        return replace_string(&cfg->cwd, cwd);
}

int msb_exec_config_set_user(msb_exec_config *cfg, const char *user)
{
        if (user && (!*user || !string_ok(user)))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "user must not be empty");
        return replace_string(&cfg->user, user);
}

int msb_exec_config_set_tty(msb_exec_config *cfg, int tty, uint16_t rows, uint16_t cols)
{
        cfg->tty = tty != 0;
        cfg->rows = rows ? rows : 24;
        cfg->cols = cols ? cols : 80;
        return 0;
}

int msb_exec_config_set_stdin(msb_exec_config *cfg, int enabled)
{
        cfg->has_stdin = enabled != 0;
        return 0;
}

static int parse_rlimit_value(const char *s, uint64_t *ret)
{
        if (streq(s, "unlimited") || streq(s, "-1")) {
                *ret = UINT64_MAX;
                return 0;
        }
        return parse_u64(s, ret);
}

int msb_exec_config_add_rlimit(msb_exec_config *cfg, const char *spec)
{
        static const char *const names[] = {
                "cpu",     "fsize", "data",  "stack",      "core",     "rss",  "nproc",  "nofile",
                "memlock", "as",    "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"};
        _cleanup_free_ char *copy = spec ? strdup(spec) : NULL;
        struct proto_rlimit rl = {0};
        char *eq, *colon;
        bool known = false;

        if (!copy || !(eq = strchr(copy, '=')))
                goto invalid;
        *eq = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                known = known || streq(copy, names[i]);
        if (!known || strlen(copy) >= sizeof(rl.resource))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "unknown resource limit '%s' (known: cpu fsize data stack core "
                                 "rss nproc nofile memlock as locks sigpending msgqueue nice "
                                 "rtprio rttime)",
                                 copy);
        strcpy(rl.resource, copy);
        colon = strchr(eq + 1, ':');
        if (colon)
                *colon = '\0';
        if (parse_rlimit_value(eq + 1, &rl.soft) < 0)
                goto invalid;
        rl.hard = rl.soft;
        if (colon && parse_rlimit_value(colon + 1, &rl.hard) < 0)
                goto invalid;
        if (rl.soft > rl.hard)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "resource limit '%s': soft limit above hard limit", spec);
        for (size_t i = 0; i < cfg->n_rlimits; i++) {
                if (streq(cfg->rlimits[i].resource, rl.resource)) {
                        cfg->rlimits[i] = rl;
                        return 0;
                }
        }
        if (cfg->n_rlimits >= PROTO_MAX_RLIMITS)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -E2BIG, "too many resource limits");
        cfg->rlimits[cfg->n_rlimits++] = rl;
        return 0;
invalid:
        return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                         "invalid resource limit '%s': expected NAME=SOFT[:HARD]",
                         spec ? spec : "");
}

int msb_exec_config_set_image_command(msb_exec_config *cfg, int enable)
{
        cfg->image_command = enable != 0;
        return 0;
}

int msb_exec_config_set_entrypoint(msb_exec_config *cfg, const char *entrypoint)
{
        if (entrypoint && (!*entrypoint || !string_ok(entrypoint)))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "the entrypoint must not be empty");
        return replace_string(&cfg->entrypoint, entrypoint);
}

int msb_exec_config_set_detached(msb_exec_config *cfg, int detached)
{
        cfg->detached = detached != 0;
        return 0;
}

int msb_exec_config_set_timeout_ms(msb_exec_config *cfg, uint64_t ms)
{
        cfg->timeout_ms = ms;
        return 0;
}
