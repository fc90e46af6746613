/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the parser walks a table of the fields (name, type,
 * range, default) so that each check is written once; strings are copied
 * out of the JSON document, which is freed before returning. Unknown keys
 * are ignored (a newer msb may add some); a higher "version" is refused,
 * since it may change what known keys mean.
 */
#include "sbconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>

#include "lib/core/json.h"
#include "lib/core/util.h"
#include "lib/vm/vm.h"

static int bad(char *errmsg, size_t errmsg_size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int bad(char *errmsg, size_t errmsg_size, const char *fmt, ...)
{
        va_list ap;

        if (errmsg_size > 0) {
                va_start(ap, fmt);
                vsnprintf(errmsg, errmsg_size, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

enum field_type {
        FIELD_STRING, /* required, non-empty */
        FIELD_PATH,   /* required absolute path */
        FIELD_PATH_OR_NULL,
        FIELD_UINT32,
        FIELD_UINT64,
        FIELD_BOOL,
};

struct field {
        const char *key;
        enum field_type type;
        size_t offset;
        uint64_t min, max, def;
};

#define F(k, t, member, lo, hi, d)                                                                 \
        {                                                                                          \
                k, t, offsetof(struct sbconfig, member), lo, hi, d                                 \
        }

static const struct field fields[] = {
        F("name", FIELD_STRING, name, 0, 0, 0),
        F("image", FIELD_STRING, image, 0, 0, 0),
        F("base_disk", FIELD_PATH, base_disk, 0, 0, 0),
        F("upper_disk", FIELD_PATH_OR_NULL, upper_disk, 0, 0, 0),
        F("memory_mib", FIELD_UINT32, memory_mib, VM_MIN_MEMORY_MIB, VM_MAX_MEMORY_MIB,
          SBCONFIG_DEF_MEMORY),
        F("cpus", FIELD_UINT32, cpus, 1, VM_MAX_VCPUS, 1),
        F("boot_timeout_ms", FIELD_UINT64, boot_timeout_ms, 0, INT64_MAX, 0),
        F("idle_timeout_ms", FIELD_UINT64, idle_timeout_ms, 0, INT64_MAX, 0),
        F("max_duration_ms", FIELD_UINT64, max_duration_ms, 0, INT64_MAX, 0),
        F("ephemeral", FIELD_BOOL, ephemeral, 0, 1, 0),
};

static int parse_field(const struct field *f, const struct json_value *v, struct sbconfig *c,
                       char *errmsg, size_t errmsg_size)
{
        void *p = (char *)c + f->offset;
        bool absent = !v || v->type == JSON_NULL;
        int64_t n;

        switch (f->type) {
        case FIELD_STRING:
        case FIELD_PATH:
        case FIELD_PATH_OR_NULL:
                if (absent && f->type == FIELD_PATH_OR_NULL)
                        return 0;
                if (!v || v->type != JSON_STRING || v->str.len == 0 ||
                    strlen(v->str.s) != v->str.len)
                        return bad(errmsg, errmsg_size, "%s must be a string", f->key);
                if (f->type != FIELD_STRING && v->str.s[0] != '/')
                        return bad(errmsg, errmsg_size, "%s must be an absolute path", f->key);
                *(char **)p = strdup(v->str.s);
                return *(char **)p ? 0 : -ENOMEM;
        case FIELD_UINT32:
        case FIELD_UINT64:
                n = absent ? (int64_t)f->def : json_int(v, (int64_t)f->min, (int64_t)f->max, -1);
                if (n < 0)
                        return bad(errmsg, errmsg_size, "%s must be an integer from %llu to %llu",
                                   f->key, (unsigned long long)f->min, (unsigned long long)f->max);
                if (f->type == FIELD_UINT32)
                        *(uint32_t *)p = (uint32_t)n;
                else
                        *(uint64_t *)p = (uint64_t)n;
                return 0;
        case FIELD_BOOL:
                if (!absent && v->type != JSON_BOOL)
                        return bad(errmsg, errmsg_size, "%s must be true or false", f->key);
                *(bool *)p = absent ? f->def != 0 : v->b;
                return 0;
        }
        return -EINVAL;
}

/* Each string of the array key through parse into n elements of size
 * bytes at *ret. */
static int parse_array(const struct json_value *net, const char *key, size_t elem, size_t max,
                       int (*parse)(const char *text, void *out), void **ret, size_t *ret_n,
                       char *errmsg, size_t errmsg_size)
{
        const struct json_value *arr = json_get(net, key);
        size_t n = json_count(arr);
        uint8_t *v;

        *ret = NULL;
        *ret_n = 0;
        if (!arr || arr->type == JSON_NULL || n == 0)
                return 0;
        if (arr->type != JSON_ARRAY || n > max)
                return bad(errmsg, errmsg_size, "network.%s must be an array of at most %zu", key,
                           max);
        v = calloc(n, elem);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *text = json_string(json_at(arr, i), NULL);
                if (!text || parse(text, v + i * elem) < 0) {
                        free(v);
                        return bad(errmsg, errmsg_size, "network.%s[%zu] is invalid", key, i);
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int parse_port(const char *text, void *out)
{
        return net_port_parse(text, out);
}

static int parse_nameserver(const char *text, void *out)
{
        return net_nameserver_parse(text, out);
}

static int parse_rule(const char *text, void *out)
{
        return net_policy_parse_rule(text, out);
}

/* "network": absent means enabled with the public profile. */
static int parse_network(const struct json_value *net, struct sbconfig_net *n, char *errmsg,
                         size_t errmsg_size)
{
        const char *profile = json_string(json_get(net, "profile"), "public");
        const char *egress = json_string(json_get(net, "default_egress"), NULL);
        struct net_rule *rules = NULL;
        size_t n_rules = 0;
        int r;

        n->enabled = json_bool(json_get(net, "enabled"), true);
        if (net && net->type != JSON_OBJECT && net->type != JSON_NULL)
                return bad(errmsg, errmsg_size, "network must be an object");
        if (net_policy_from_profile(profile, &n->policy) < 0)
                return bad(errmsg, errmsg_size, "network.profile '%s' is unknown", profile);
        if (egress) {
                if (!streq(egress, "allow") && !streq(egress, "deny"))
                        return bad(errmsg, errmsg_size,
                                   "network.default_egress must be allow or deny");
                n->policy.default_egress = streq(egress, "allow") ? NET_ALLOW : NET_DENY;
        }
        r = parse_array(net, "rules", sizeof(struct net_rule), NET_POLICY_MAX_RULES, parse_rule,
                        (void **)&rules, &n_rules, errmsg, errmsg_size);
        for (size_t i = 0; r >= 0 && i < n_rules; i++)
                r = net_policy_add_rule(&n->policy, &rules[i]);
        free(rules);
        if (r >= 0)
                r = parse_array(net, "ports", sizeof(struct net_port), 256, parse_port,
                                (void **)&n->ports, &n->n_ports, errmsg, errmsg_size);
        if (r >= 0)
                r = parse_array(net, "dns", sizeof(struct sockaddr_in6), 16, parse_nameserver,
                                (void **)&n->dns, &n->n_dns, errmsg, errmsg_size);
        if (r >= 0) {
                int64_t m = json_int(json_get(net, "max_connections"), 0, 1 << 20, -1);
                if (json_get(net, "max_connections") && m < 0)
                        return bad(errmsg, errmsg_size,
                                   "network.max_connections must be an integer up to 1048576");
                n->max_connections = m < 0 ? 0 : (uint32_t)m;
        }
        return r;
}

int sbconfig_parse(const char *text, size_t len, struct sbconfig *ret, char *errmsg,
                   size_t errmsg_size)
{
        struct sbconfig c = {0};
        struct json_doc *doc = NULL;
        const struct json_value *root, *accel;
        int64_t version;
        int r;

        r = json_parse(text, len, &doc, &root);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return bad(errmsg, errmsg_size, "not valid JSON");
        if (root->type != JSON_OBJECT) {
                r = bad(errmsg, errmsg_size, "not a JSON object");
                goto out;
        }
        version = json_int(json_get(root, "version"), 1, INT64_MAX, -1);
        if (version < 0) {
                r = bad(errmsg, errmsg_size, "version must be a positive integer");
                goto out;
        }
        if (version > SBCONFIG_VERSION) {
                r = bad(errmsg, errmsg_size, "version %lld, newer than this msb-sandbox (%d)",
                        (long long)version, SBCONFIG_VERSION);
                goto out;
        }
        for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
                r = parse_field(&fields[i], json_get(root, fields[i].key), &c, errmsg, errmsg_size);
                if (r < 0)
                        goto out;
        }
        accel = json_get(root, "accel");
        if (accel && accel->type != JSON_NULL) {
                const char *a = json_string(accel, "");
                if (!streq(a, "auto") && !streq(a, "kvm") && !streq(a, "tcg")) {
                        r = bad(errmsg, errmsg_size, "accel must be auto, kvm or tcg");
                        goto out;
                }
                c.accel = strdup(a);
                if (!c.accel) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = parse_network(json_get(root, "network"), &c.net, errmsg, errmsg_size);
out:
        json_doc_free(doc);
        if (r < 0) {
                sbconfig_clear(&c);
                return r;
        }
        *ret = c;
        return 0;
}

void sbconfig_clear(struct sbconfig *c)
{
        free(c->name);
        free(c->image);
        free(c->base_disk);
        free(c->upper_disk);
        free(c->accel);
        net_policy_done(&c->net.policy);
        free(c->net.ports);
        free(c->net.dns);
        *c = (struct sbconfig){0};
}
