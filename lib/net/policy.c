/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a policy is a list of rules and two defaults. The
 * gateway asks it one question per new flow (direction, protocol, address
 * with its groups, port, and the names this sandbox resolved to that
 * address) and one per DNS name. Every rule that matches is ranked by
 * specificity (net.h); the best decides, deny winning ties. Questions are
 * rare (one per flow, never per packet), so a linear scan is enough and
 * keeps the semantics obvious. The decisive rule is returned so that the
 * log line and the counters can say which rule it was.
 *
 * Names compare in lower case without a trailing dot; a suffix rule
 * "*.example.com" matches "a.example.com" and "a.b.example.com" but not
 * "example.com" itself.
 */
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/util.h"
#include "packet.h"

static const struct {
        const char *name;
        uint32_t bit;
} groups[] = {
        {"public", NET_GROUP_PUBLIC},     {"private", NET_GROUP_PRIVATE},
        {"loopback", NET_GROUP_LOOPBACK}, {"link-local", NET_GROUP_LINK_LOCAL},
        {"metadata", NET_GROUP_METADATA}, {"multicast", NET_GROUP_MULTICAST},
        {"host", NET_GROUP_HOST},
};

static const char *const protos[] = {"any", "tcp", "udp", "icmp"};

static int group_from_name(const char *s, uint32_t *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
                if (streq(s, groups[i].name)) {
                        *ret = groups[i].bit;
                        return 0;
                }
        return -EINVAL;
}

static const char *group_name(uint32_t bit)
{
        for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
                if (groups[i].bit == bit)
                        return groups[i].name;
        return "?";
}

static int proto_from_name(const char *s, size_t n, enum net_proto *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(protos); i++)
                if (strlen(protos[i]) == n && strncmp(s, protos[i], n) == 0) {
                        *ret = (enum net_proto)i;
                        return 0;
                }
        return -EINVAL;
}

/* Lower-cases and checks a DNS name: labels of 1-63 of [a-z0-9_-], at most
 * NET_NAME_MAX in all, one trailing dot tolerated. */
static int name_normalize(const char *s, size_t n, char *out)
{
        size_t label = 0;

        if (n > 0 && s[n - 1] == '.')
                n--;
        if (n == 0 || n > NET_NAME_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = (char)tolower((unsigned char)s[i]);
                if (c == '.') {
                        if (label == 0)
                                return -EINVAL;
                        label = 0;
                } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
                        if (++label > 63)
                                return -EINVAL;
                } else {
                        return -EINVAL;
                }
                out[i] = c;
        }
        if (label == 0)
                return -EINVAL;
        out[n] = '\0';
        return 0;
}

/* Zeroes the host bits of a beyond prefix. */
static void addr_mask(struct in6_addr *a, unsigned prefix)
{
        for (unsigned i = 0; i < 16; i++) {
                unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
                a->s6_addr[i] &= (uint8_t)(0xff00u >> keep);
        }
}

static bool addr_in(const struct in6_addr *a, const struct in6_addr *net, unsigned prefix)
{
        struct in6_addr m = *a;

        addr_mask(&m, prefix);
        return memcmp(&m, net, sizeof(m)) == 0;
}

/* "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n" into a CIDR target. */
static int parse_cidr(const char *s, size_t n, struct net_rule *r)
{
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash;
        uint64_t prefix;
        struct in_addr v4;
        bool is_v4;

        if (n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        slash = strchr(buf, '/');
        if (slash)
                buf[slash - buf] = '\0';
        if (inet_pton(AF_INET, buf, &v4) == 1) {
                net_addr_from_v4(&r->addr, &v4);
                is_v4 = true;
        } else if (inet_pton(AF_INET6, buf, &r->addr) == 1) {
                is_v4 = false;
        } else {
                return -EINVAL;
        }
        prefix = is_v4 ? 32 : 128;
        if (slash && (parse_u64(slash + 1, &prefix) < 0 || prefix > (is_v4 ? 32u : 128u)))
                return -EINVAL;
        r->prefix = (uint8_t)(is_v4 ? prefix + 96 : prefix);
        addr_mask(&r->addr, r->prefix);
        r->target = NET_TARGET_CIDR;
        return 0;
}

static int parse_target(const char *s, size_t n, struct net_rule *r)
{
        char word[NET_NAME_MAX + 2];

        if (n == 0)
                return -EINVAL;
        if (s[0] == '[') {
                if (n < 3 || s[n - 1] != ']')
                        return -EINVAL;
                return parse_cidr(s + 1, n - 2, r);
        }
        if ((n == 3 && strncmp(s, "any", 3) == 0) || (n == 1 && s[0] == '*')) {
                r->target = NET_TARGET_ANY;
                return 0;
        }
        if (n < sizeof(word)) {
                memcpy(word, s, n);
                word[n] = '\0';
                if (group_from_name(word, &r->group) == 0) {
                        r->target = NET_TARGET_GROUP;
                        return 0;
                }
        }
        if (parse_cidr(s, n, r) == 0)
                return 0;
        if (n > 2 && s[0] == '*' && s[1] == '.') {
                r->target = NET_TARGET_SUFFIX;
                return name_normalize(s + 2, n - 2, r->name);
        }
        r->target = NET_TARGET_DOMAIN;
        return name_normalize(s, n, r->name);
}

static int parse_ports(const char *s, struct net_rule *r)
{
        const char *dash = strchr(s, '-');
        char lo[8], hi[8];
        uint64_t a, b;

        if (dash) {
                if ((size_t)(dash - s) >= sizeof(lo) || strlen(dash + 1) >= sizeof(hi))
                        return -EINVAL;
                memcpy(lo, s, (size_t)(dash - s));
                lo[dash - s] = '\0';
                strcpy(hi, dash + 1);
        } else {
                if (strlen(s) >= sizeof(lo))
                        return -EINVAL;
                strcpy(lo, s);
                strcpy(hi, s);
        }
        if (parse_u64(lo, &a) < 0 || parse_u64(hi, &b) < 0 || a < 1 || b > 65535 || a > b)
                return -EINVAL;
        r->port_lo = (uint16_t)a;
        r->port_hi = (uint16_t)b;
        return 0;
}

static bool looks_like_ports(const char *s)
{
        return *s && strspn(s, "0123456789-") == strlen(s);
}

int net_policy_parse_rule(const char *text, struct net_rule *ret)
{
        struct net_rule r = {.direction = NET_DIR_EGRESS};
        const char *at, *rest, *end, *c1, *c2 = NULL;
        size_t head;
        int k;

        if (!text || !(at = strchr(text, '@')))
                return -EINVAL;
        head = (size_t)(at - text);
        if (head >= 5 && strncmp(text, "allow", 5) == 0) {
                r.action = NET_ALLOW;
                k = 5;
        } else if (head >= 4 && strncmp(text, "deny", 4) == 0) {
                r.action = NET_DENY;
                k = 4;
        } else {
                return -EINVAL;
        }
        if ((size_t)k != head) {
                const char *d = text + k;
                size_t dn = head - (size_t)k;
                if (dn == 7 && strncmp(d, ":egress", 7) == 0)
                        r.direction = NET_DIR_EGRESS;
                else if (dn == 8 && strncmp(d, ":ingress", 8) == 0)
                        r.direction = NET_DIR_INGRESS;
                else if (dn == 4 && strncmp(d, ":any", 4) == 0)
                        r.direction = NET_DIR_ANY;
                else
                        return -EINVAL;
        }
        rest = at + 1;
        end = rest + strlen(rest);
        /* Protocol and ports are read from the right, so that an IPv6
         * target needs no brackets: "tcp", "udp", "icmp", "any" contain a
         * letter that no IPv6 address has. */
        c1 = memrchr(rest, ':', (size_t)(end - rest));
        if (c1 && proto_from_name(c1 + 1, (size_t)(end - c1 - 1), &r.proto) == 0) {
                end = c1;
        } else if (c1 && looks_like_ports(c1 + 1) &&
                   (c2 = memrchr(rest, ':', (size_t)(c1 - rest))) &&
                   proto_from_name(c2 + 1, (size_t)(c1 - c2 - 1), &r.proto) == 0) {
                if (r.proto != NET_PROTO_TCP && r.proto != NET_PROTO_UDP)
                        return -EINVAL;
                if (parse_ports(c1 + 1, &r) < 0)
                        return -EINVAL;
                end = c2;
        }
        if (parse_target(rest, (size_t)(end - rest), &r) < 0)
                return -EINVAL;
        *ret = r;
        return 0;
}

int net_rule_format(const struct net_rule *r, char *buf, size_t size)
{
        char target[NET_NAME_MAX + INET6_ADDRSTRLEN + 8], ports[16] = "";
        const char *dir = r->direction == NET_DIR_INGRESS ? ":ingress"
                          : r->direction == NET_DIR_ANY   ? ":any"
                                                          : "";

        switch (r->target) {
        case NET_TARGET_CIDR: {
                char a[INET6_ADDRSTRLEN];
                bool v4 = net_addr_is_v4(&r->addr);
                unsigned full = 128, prefix = r->prefix;

                net_addr_str(&r->addr, a, sizeof(a));
                if (v4)
                        prefix -= 96;
                if (v4)
                        full = 32;
                if (prefix == full)
                        snprintf(target, sizeof(target), v4 ? "%s" : "[%s]", a);
                else
                        snprintf(target, sizeof(target), v4 ? "%s/%u" : "[%s/%u]", a, prefix);
                break;
        }
        case NET_TARGET_DOMAIN:
                snprintf(target, sizeof(target), "%s", r->name);
                break;
        case NET_TARGET_SUFFIX:
                snprintf(target, sizeof(target), "*.%s", r->name);
                break;
        case NET_TARGET_GROUP:
                snprintf(target, sizeof(target), "%s", group_name(r->group));
                break;
        default:
                snprintf(target, sizeof(target), "any");
        }
        if (r->port_lo == r->port_hi && r->port_lo)
                snprintf(ports, sizeof(ports), ":%u", r->port_lo);
        else if (r->port_lo)
                snprintf(ports, sizeof(ports), ":%u-%u", r->port_lo, r->port_hi);
        return snprintf(buf, size, "%s%s@%s%s%s%s", r->action == NET_ALLOW ? "allow" : "deny", dir,
                        target, r->proto ? ":" : "", r->proto ? protos[r->proto] : "", ports);
}

int net_policy_add_rule(struct net_policy *p, const struct net_rule *r)
{
        struct net_rule *v;

        if (p->n_rules >= NET_POLICY_MAX_RULES)
                return -E2BIG;
        v = realloc(p->rules, (p->n_rules + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        v[p->n_rules++] = *r;
        p->rules = v;
        return 0;
}

void net_policy_done(struct net_policy *p)
{
        free(p->rules);
        p->rules = NULL;
        p->n_rules = 0;
}

int net_policy_copy(const struct net_policy *src, struct net_policy *ret)
{
        struct net_policy p = *src;

        p.rules = NULL;
        if (src->n_rules) {
                p.rules = malloc(src->n_rules * sizeof(*p.rules));
                if (!p.rules)
                        return -ENOMEM;
                memcpy(p.rules, src->rules, src->n_rules * sizeof(*p.rules));
        }
        *ret = p;
        return 0;
}

int net_policy_from_profile(const char *spec, struct net_policy *ret)
{
        struct net_policy p = {.default_egress = NET_DENY, .default_ingress = NET_ALLOW};
        const char *s = spec;
        int r;

        if (!spec || !*spec)
                return -EINVAL;
        if (streq(spec, "none")) {
                p.default_ingress = NET_DENY;
                *ret = p;
                return 0;
        }
        p.dns = true;
        if (streq(spec, "all")) {
                p.default_egress = NET_ALLOW;
                *ret = p;
                return 0;
        }
        while (*s) {
                size_t n = strcspn(s, ",");
                struct net_rule rule = {.action = NET_ALLOW,
                                        .direction = NET_DIR_EGRESS,
                                        .target = NET_TARGET_GROUP};
                char word[16];

                if (n == 0 || n >= sizeof(word))
                        goto invalid;
                memcpy(word, s, n);
                word[n] = '\0';
                if (group_from_name(word, &rule.group) < 0)
                        goto invalid;
                r = net_policy_add_rule(&p, &rule);
                if (r < 0) {
                        net_policy_done(&p);
                        return r;
                }
                s += n;
                if (*s == ',' && !*++s)
                        goto invalid;
        }
        *ret = p;
        return 0;
invalid:
        net_policy_done(&p);
        return -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* Address classification                                                   */
/* ------------------------------------------------------------------------ */

struct range {
        const char *net;
        uint8_t prefix; /* on the address's own scale */
        uint32_t groups;
};

/* IANA special-purpose registries: any range listed is not public; the
 * groups column says which named group it belongs to (0: none). */
static const struct range ranges4[] = {
        {"0.0.0.0", 8, 0}, /* this network */
        {"10.0.0.0", 8, NET_GROUP_PRIVATE},
        {"100.64.0.0", 10, NET_GROUP_PRIVATE}, /* shared address space (CGNAT, Tailscale) */
        {"127.0.0.0", 8, NET_GROUP_LOOPBACK},
        {"169.254.169.254", 32, NET_GROUP_METADATA | NET_GROUP_LINK_LOCAL},
        {"169.254.0.0", 16, NET_GROUP_LINK_LOCAL},
        {"172.16.0.0", 12, NET_GROUP_PRIVATE},
        {"192.0.0.0", 24, 0},   /* IETF protocol assignments */
        {"192.0.2.0", 24, 0},   /* TEST-NET-1 */
        {"192.88.99.0", 24, 0}, /* 6to4 relay anycast (deprecated) */
        {"192.168.0.0", 16, NET_GROUP_PRIVATE},
        {"198.18.0.0", 15, 0},   /* benchmarking */
        {"198.51.100.0", 24, 0}, /* TEST-NET-2 */
        {"203.0.113.0", 24, 0},  /* TEST-NET-3 */
        {"224.0.0.0", 4, NET_GROUP_MULTICAST},
        {"255.255.255.255", 32, NET_GROUP_MULTICAST}, /* limited broadcast */
        {"240.0.0.0", 4, 0},                          /* reserved */
};

static const struct range ranges6[] = {
        {"::1", 128, NET_GROUP_LOOPBACK},
        {"::", 128, 0},         /* unspecified */
        {"64:ff9b::", 96, 0},   /* NAT64 */
        {"64:ff9b:1::", 48, 0}, /* local-use translation */
        {"100::", 64, 0},       /* discard-only */
        {"2001::", 32, 0},      /* Teredo */
        {"2001:2::", 48, 0},    /* benchmarking */
        {"2001:10::", 28, 0},   /* ORCHID (deprecated) */
        {"2001:db8::", 32, 0},  /* documentation */
        {"2002::", 16, 0},      /* 6to4 */
        {"3fff::", 20, 0},      /* documentation */
        {"5f00::", 16, 0},      /* SRv6 SIDs */
        {"fd00:ec2::254", 128, NET_GROUP_METADATA | NET_GROUP_PRIVATE},
        {"fc00::", 7, NET_GROUP_PRIVATE}, /* unique local */
        {"fe80::", 10, NET_GROUP_LINK_LOCAL},
        {"fec0::", 10, 0}, /* site-local (deprecated) */
        {"ff00::", 8, NET_GROUP_MULTICAST},
};

static bool in_range(const struct in6_addr *a, const struct range *r, bool v4)
{
        struct in6_addr net;

        if (v4) {
                struct in_addr n4;
                inet_pton(AF_INET, r->net, &n4);
                net_addr_from_v4(&net, &n4);
                return addr_in(a, &net, 96u + r->prefix);
        }
        inet_pton(AF_INET6, r->net, &net);
        return addr_in(a, &net, r->prefix);
}

uint32_t net_addr_classify(const struct in6_addr *a)
{
        struct in6_addr v = *a;
        bool v4;
        const struct range *t;
        size_t n;

        /* IPv4-compatible (::a.b.c.d, deprecated) is read as the IPv4
         * address, except :: and ::1. */
        if (!memcmp(&v, "\0\0\0\0\0\0\0\0\0\0\0\0", 12) && (v.s6_addr32[3] & htonl(0xfffffffe))) {
                v.s6_addr[10] = 0xff;
                v.s6_addr[11] = 0xff;
        }
        v4 = net_addr_is_v4(&v);
        t = v4 ? ranges4 : ranges6;
        n = v4 ? ARRAY_SIZE(ranges4) : ARRAY_SIZE(ranges6);
        for (size_t i = 0; i < n; i++)
                if (in_range(&v, &t[i], v4))
                        return t[i].groups;
        /* Outside 2000::/3 no IPv6 address is globally routable. */
        if (!v4 && (v.s6_addr[0] & 0xe0) != 0x20)
                return 0;
        return NET_GROUP_PUBLIC;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                               */
/* ------------------------------------------------------------------------ */

static bool name_matches(const struct net_rule *r, const char *name)
{
        size_t n, k;

        if (r->target == NET_TARGET_DOMAIN)
                return streq(name, r->name);
        n = strlen(name);
        k = strlen(r->name);
        return n > k + 1 && name[n - k - 1] == '.' && streq(name + n - k, r->name);
}

static bool target_matches(const struct net_rule *r, const struct net_policy_query *q)
{
        bool name_question = !q->addr;

        switch (r->target) {
        case NET_TARGET_ANY:
                return !name_question;
        case NET_TARGET_CIDR:
                return !name_question && addr_in(q->addr, &r->addr, r->prefix);
        case NET_TARGET_GROUP:
                return !name_question && (q->groups & r->group);
        case NET_TARGET_DOMAIN:
        case NET_TARGET_SUFFIX:
                for (size_t i = 0; i < q->n_names; i++)
                        if (name_matches(r, q->names[i]))
                                return true;
                return false;
        }
        return false;
}

static bool rule_matches(const struct net_rule *r, const struct net_policy_query *q)
{
        if (r->direction != NET_DIR_ANY && r->direction != q->direction)
                return false;
        if (!q->ignore_ports) {
                if (r->proto != NET_PROTO_ANY && r->proto != q->proto)
                        return false;
                if (r->port_lo && (q->port < r->port_lo || q->port > r->port_hi))
                        return false;
        }
        return target_matches(r, q);
}

/* Target class: exact > partial > group > any. */
static int target_class(const struct net_rule *r)
{
        switch (r->target) {
        case NET_TARGET_CIDR:
                return r->prefix == 128 ? 4 : 3;
        case NET_TARGET_DOMAIN:
                return 4;
        case NET_TARGET_SUFFIX:
                return 3;
        case NET_TARGET_GROUP:
                return 2;
        default:
                return 1;
        }
}

static int target_sub(const struct net_rule *r)
{
        switch (r->target) {
        case NET_TARGET_CIDR:
                return r->prefix;
        case NET_TARGET_SUFFIX:
                return (int)strlen(r->name);
        case NET_TARGET_GROUP:
                return r->group == NET_GROUP_METADATA; /* one address inside link-local */
        default:
                return 0;
        }
}

/* > 0 when a is more specific than b, 0 when neither is. */
static int compare_specificity(const struct net_rule *a, const struct net_rule *b)
{
        int ca = target_class(a), cb = target_class(b);
        uint32_t span_a, span_b;

        if (ca != cb)
                return ca - cb;
        if (a->target == b->target && target_sub(a) != target_sub(b))
                return target_sub(a) - target_sub(b);
        if ((a->proto != NET_PROTO_ANY) != (b->proto != NET_PROTO_ANY))
                return a->proto != NET_PROTO_ANY ? 1 : -1;
        span_a = a->port_lo ? (uint32_t)(a->port_hi - a->port_lo) : 65536u;
        span_b = b->port_lo ? (uint32_t)(b->port_hi - b->port_lo) : 65536u;
        return span_a < span_b ? 1 : span_a > span_b ? -1 : 0;
}

enum net_action net_policy_eval(const struct net_policy *p, const struct net_policy_query *q,
                                const struct net_rule **ret_rule)
{
        const struct net_rule *best = NULL;

        for (size_t i = 0; i < p->n_rules; i++) {
                const struct net_rule *r = &p->rules[i];
                int c;

                if (!rule_matches(r, q))
                        continue;
                if (!best) {
                        best = r;
                        continue;
                }
                c = compare_specificity(r, best);
                if (c > 0 || (c == 0 && r->action == NET_DENY && best->action == NET_ALLOW))
                        best = r;
        }
        if (ret_rule)
                *ret_rule = best;
        if (best)
                return best->action;
        if (!q->addr)
                return NET_ALLOW; /* a name no rule names */
        return q->direction == NET_DIR_INGRESS ? p->default_ingress : p->default_egress;
}

/* ------------------------------------------------------------------------ */
/* Log lines                                                                */
/* ------------------------------------------------------------------------ */

static void endpoint(char *buf, size_t size, const struct in6_addr *a, uint16_t port, bool ports)
{
        char s[INET6_ADDRSTRLEN];

        net_addr_str(a, s, sizeof(s));
        if (!ports)
                snprintf(buf, size, "%s", s);
        else if (net_addr_is_v4(a))
                snprintf(buf, size, "%s:%u", s, port);
        else
                snprintf(buf, size, "[%s]:%u", s, port);
}

int net_deny_format(const struct net_deny *d, char *buf, size_t size)
{
        char rule[NET_NAME_MAX + INET6_ADDRSTRLEN + 40], why[sizeof(rule) + 16];
        char src[INET6_ADDRSTRLEN + 8], dst[INET6_ADDRSTRLEN + 8];
        bool ports = d->ipproto == IPPROTO_TCP || d->ipproto == IPPROTO_UDP;
        const char *proto = d->ipproto == IPPROTO_TCP   ? "tcp"
                            : d->ipproto == IPPROTO_UDP ? "udp"
                                                        : "icmp";

        if (d->rule) {
                net_rule_format(d->rule, rule, sizeof(rule));
                snprintf(why, sizeof(why), "by rule %s", rule);
        } else {
                snprintf(why, sizeof(why), "by default (%s deny)",
                         d->direction == NET_DIR_INGRESS ? "ingress" : "egress");
        }
        if (d->rebind) {
                endpoint(dst, sizeof(dst), &d->dst, 0, false);
                return snprintf(buf, size, "denied dns answer %s -> %s (rebind protection)",
                                d->name ? d->name : "?", dst);
        }
        if (d->name)
                return snprintf(buf, size, "denied dns %s %s", d->name, why);
        endpoint(src, sizeof(src), &d->src, d->sport, ports);
        endpoint(dst, sizeof(dst), &d->dst, d->dport, ports);
        return snprintf(buf, size, "denied %s%s %s -> %s %s",
                        d->direction == NET_DIR_INGRESS ? "ingress " : "", proto, src, dst, why);
}
