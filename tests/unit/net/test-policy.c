/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the policy: the rule parser (every form, the canonical text
 * parsing back to the same rule, refusals), profiles, address groups
 * (IANA special-purpose ranges, mapped forms), evaluation (specificity,
 * deny winning ties, directions, ports, names), published ports, address
 * pools and the denial log line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/net/net.h"
#include "lib/net/packet.h"

static struct in6_addr A(const char *s) {
        struct in6_addr a;
        struct in_addr v4;

        if (inet_pton(AF_INET, s, &v4) == 1)
                net_addr_from_v4(&a, &v4);
        else
                assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
        return a;
}

static void
roundtrip(const char *text, const char *canonical)
{
        struct net_rule r, r2;
        char buf[512];

        assert_int_equal(net_policy_parse_rule(text, &r), 0);
        net_rule_format(&r, buf, sizeof(buf));
        assert_string_equal(buf, canonical);
        assert_int_equal(net_policy_parse_rule(buf, &r2), 0);
        assert_memory_equal(&r, &r2, sizeof(r));
}

static void test_parse(void **state)
{
        struct net_rule r;

        roundtrip("allow@public", "allow@public");
        roundtrip("deny:egress@private", "deny@private");
        roundtrip("deny:ingress@loopback:tcp", "deny:ingress@loopback:tcp");
        roundtrip("allow:any@host:udp:53", "allow:any@host:udp:53");
        roundtrip("allow@10.0.0.0/8:tcp:80-90", "allow@10.0.0.0/8:tcp:80-90");
        roundtrip("allow@10.1.2.3/8", "allow@10.0.0.0/8");
        roundtrip("deny@1.2.3.4", "deny@1.2.3.4");
        roundtrip("deny@2001:db8::1:tcp:443", "deny@[2001:db8::1]:tcp:443");
        roundtrip("deny@[2001:db8::/32]:udp", "deny@[2001:db8::/32]:udp");
        roundtrip("deny@fd00::1", "deny@[fd00::1]");
        roundtrip("allow@Example.COM.", "allow@example.com");
        roundtrip("allow@*.example.com:tcp:443", "allow@*.example.com:tcp:443");
        roundtrip("deny@any:icmp", "deny@any:icmp");
        roundtrip("deny@*", "deny@any");
        roundtrip("allow@metadata", "allow@metadata");
        roundtrip("allow@link-local", "allow@link-local");

        assert_int_equal(net_policy_parse_rule("allow@public", &r), 0);
        assert_int_equal(r.direction, NET_DIR_EGRESS);
        assert_int_equal(r.target, NET_TARGET_GROUP);
        assert_int_equal(r.group, NET_GROUP_PUBLIC);
        assert_int_equal(net_policy_parse_rule("allow@10.0.0.0/8:tcp:80-90", &r), 0);
        assert_int_equal(r.prefix, 104);
        assert_int_equal(r.port_lo, 80);
        assert_int_equal(r.port_hi, 90);

        static const char *const bad[] = {
                "",
                "allow",
                "permit@public",
                "allow:sideways@public",
                "allow@",
                "allow@public:tcp:0",
                "allow@public:tcp:90-80",
                "allow@public:tcp:70000",
                "allow@public:icmp:80",
                "allow@public:any:80",
                "allow@10.0.0.0/33",
                "allow@[::1",
                "allow@bad..name",
                "allow@-x-.com:tcp:x",
                "allow@a b",
                "allow@*.",
                "allowx@public",
                "allow@public:ftp",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(net_policy_parse_rule(bad[i], &r), -EINVAL);
}

static void test_classify(void **state)
{
        static const struct {
                const char *addr;
                uint32_t groups;
        } cases[] = {
                {"8.8.8.8", NET_GROUP_PUBLIC},
                {"44.2.0.10", NET_GROUP_PUBLIC},
                {"10.1.2.3", NET_GROUP_PRIVATE},
                {"172.16.0.1", NET_GROUP_PRIVATE},
                {"172.32.0.1", NET_GROUP_PUBLIC},
                {"192.168.1.1", NET_GROUP_PRIVATE},
                {"100.64.0.1", NET_GROUP_PRIVATE},
                {"127.0.0.1", NET_GROUP_LOOPBACK},
                {"169.254.169.254", NET_GROUP_METADATA | NET_GROUP_LINK_LOCAL},
                {"169.254.1.1", NET_GROUP_LINK_LOCAL},
                {"224.0.0.251", NET_GROUP_MULTICAST},
                {"255.255.255.255", NET_GROUP_MULTICAST},
                {"0.1.2.3", 0},
                {"192.0.2.1", 0},
                {"198.18.0.1", 0},
                {"198.51.100.1", 0},
                {"203.0.113.1", 0},
                {"240.0.0.1", 0},
                {"192.0.0.8", 0},
                {"2001:4860::8888", NET_GROUP_PUBLIC},
                {"::1", NET_GROUP_LOOPBACK},
                {"::", 0},
                {"::ffff:10.0.0.1", NET_GROUP_PRIVATE},
                {"::10.0.0.1", NET_GROUP_PRIVATE},
                {"64:ff9b::808:808", 0},
                {"2001:db8::1", 0},
                {"2002:a00:1::1", 0},
                {"2001::1", 0},
                {"fd00::1", NET_GROUP_PRIVATE},
                {"fd00:ec2::254", NET_GROUP_METADATA | NET_GROUP_PRIVATE},
                {"fe80::1", NET_GROUP_LINK_LOCAL},
                {"ff02::1", NET_GROUP_MULTICAST},
                {"4000::1", 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct in6_addr a = A(cases[i].addr);
                if (net_addr_classify(&a) != cases[i].groups)
                        fail_msg("%s: %#x, want %#x", cases[i].addr, net_addr_classify(&a),
                                 cases[i].groups);
        }
}

static enum net_action eval(const struct net_policy *p, enum net_direction dir,
                            enum net_proto proto, const char *addr, uint16_t port, const char *name,
                            const struct net_rule **rule)
{
        struct in6_addr a = A(addr);
        const char *names[1] = {name};
        struct net_policy_query q = {
                .direction = dir,
                .proto = proto,
                .addr = &a,
                .groups = net_addr_classify(&a),
                .port = port,
                .names = names,
                .n_names = name ? 1 : 0,
        };
        return net_policy_eval(p, &q, rule);
}

static void add(struct net_policy *p, const char *text)
{
        struct net_rule r;

        assert_int_equal(net_policy_parse_rule(text, &r), 0);
        assert_int_equal(net_policy_add_rule(p, &r), 0);
}

static void test_eval(void **state)
{
        struct net_policy p;
        const struct net_rule *rule;
        char buf[128];

        assert_int_equal(net_policy_from_profile("public", &p), 0);
        assert_true(p.dns);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "8.8.8.8", 443, NULL, &rule),
                         NET_ALLOW);
        assert_non_null(rule);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "10.0.0.1", 22, NULL, &rule),
                         NET_DENY);
        assert_null(rule);
        /* Ingress defaults to allow (only published ports take it). */
        assert_int_equal(eval(&p, NET_DIR_INGRESS, NET_PROTO_TCP, "127.0.0.1", 80, NULL, NULL),
                         NET_ALLOW);

        /* More specific wins; deny wins a tie. */
        add(&p, "deny@8.8.0.0/16");
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "8.8.8.8", 443, NULL, &rule),
                         NET_DENY);
        net_rule_format(rule, buf, sizeof(buf));
        assert_string_equal(buf, "deny@8.8.0.0/16");
        add(&p, "allow@8.8.8.8");
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "8.8.8.8", 443, NULL, NULL),
                         NET_ALLOW);
        add(&p, "deny@8.8.8.8");
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "8.8.8.8", 443, NULL, NULL),
                         NET_DENY);
        /* A protocol and a narrower port range are more specific. */
        add(&p, "allow@8.8.8.8:tcp:53");
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "8.8.8.8", 53, NULL, NULL),
                         NET_ALLOW);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_UDP, "8.8.8.8", 53, NULL, NULL),
                         NET_DENY);
        /* A longer prefix beats a shorter one. */
        add(&p, "allow@10.1.0.0/16");
        add(&p, "deny@10.1.2.0/24");
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "10.1.3.1", 1, NULL, NULL),
                         NET_ALLOW);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "10.1.2.1", 1, NULL, NULL),
                         NET_DENY);
        /* Metadata is more specific than link-local. */
        add(&p, "deny@link-local");
        add(&p, "allow@metadata");
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "169.254.169.254", 80, NULL, NULL),
                         NET_ALLOW);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "169.254.1.1", 80, NULL, NULL),
                         NET_DENY);
        /* Directions. */
        add(&p, "deny:ingress@loopback");
        assert_int_equal(eval(&p, NET_DIR_INGRESS, NET_PROTO_TCP, "127.0.0.1", 80, NULL, NULL),
                         NET_DENY);
        net_policy_done(&p);
}

static void test_names(void **state)
{
        struct net_policy p;
        const struct net_rule *rule;
        const char *names[1];
        struct net_policy_query q = {.direction = NET_DIR_EGRESS, .names = names, .n_names = 1};

        assert_int_equal(net_policy_from_profile("public", &p), 0);
        add(&p, "allow@*.corp.example");
        add(&p, "deny@bad.example");
        add(&p, "deny@*.example:tcp");
        /* Flows: the names the address was resolved from. */
        assert_int_equal(
                eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "10.0.0.5", 443, "db.corp.example", NULL),
                NET_ALLOW);
        assert_int_equal(
                eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "10.0.0.5", 443, "corp.example", NULL),
                NET_DENY);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "8.8.8.8", 443, "x.example", NULL),
                         NET_DENY);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_UDP, "8.8.8.8", 443, "x.example", NULL),
                         NET_ALLOW);
        /* DNS questions: only name rules without protocol decide. */
        names[0] = "bad.example";
        assert_int_equal(net_policy_eval(&p, &q, &rule), NET_DENY);
        assert_non_null(rule);
        names[0] = "x.example";
        assert_int_equal(net_policy_eval(&p, &q, &rule), NET_ALLOW);
        names[0] = "anything.test";
        assert_int_equal(net_policy_eval(&p, &q, &rule), NET_ALLOW);
        assert_null(rule);
        net_policy_done(&p);
}

static void test_profiles(void **state)
{
        struct net_policy p, c;

        assert_int_equal(net_policy_from_profile("none", &p), 0);
        assert_false(p.dns);
        assert_int_equal(p.default_ingress, NET_DENY);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "8.8.8.8", 1, NULL, NULL),
                         NET_DENY);
        net_policy_done(&p);
        assert_int_equal(net_policy_from_profile("all", &p), 0);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "127.0.0.1", 1, NULL, NULL),
                         NET_ALLOW);
        net_policy_done(&p);
        assert_int_equal(net_policy_from_profile("public,private,host", &p), 0);
        assert_int_equal(p.n_rules, 3);
        assert_int_equal(eval(&p, NET_DIR_EGRESS, NET_PROTO_TCP, "192.168.0.1", 1, NULL, NULL),
                         NET_ALLOW);
        assert_int_equal(net_policy_copy(&p, &c), 0);
        assert_int_equal(c.n_rules, 3);
        assert_ptr_not_equal(c.rules, p.rules);
        net_policy_done(&c);
        net_policy_done(&p);
        assert_int_equal(net_policy_from_profile("public,", &p), -EINVAL);
        assert_int_equal(net_policy_from_profile("public,,private", &p), -EINVAL);
        assert_int_equal(net_policy_from_profile("internet", &p), -EINVAL);
        assert_int_equal(net_policy_from_profile("", &p), -EINVAL);
}

static void test_ports(void **state)
{
        struct net_port p;
        char buf[64];

        assert_int_equal(net_port_parse("8080:80", &p), 0);
        net_port_format(&p, buf, sizeof(buf));
        assert_string_equal(buf, "127.0.0.1:8080:80/tcp");
        assert_int_equal(net_port_parse("0.0.0.0:53:53/udp", &p), 0);
        net_port_format(&p, buf, sizeof(buf));
        assert_string_equal(buf, "0.0.0.0:53:53/udp");
        assert_int_equal(net_port_parse("[::1]:8443:443/tcp", &p), 0);
        net_port_format(&p, buf, sizeof(buf));
        assert_string_equal(buf, "[::1]:8443:443/tcp");
        static const char *const bad[] = {"",           "80",       "0:80",       "80:0",
                                          "80:70000",   "x:80:80",  "1.2.3.4:80", "80:80/sctp",
                                          "[::1:80:80", "::1:80:80"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(net_port_parse(bad[i], &p), -EINVAL);
}

static void test_pool(void **state)
{
        struct net_gw_config c;
        char a[INET6_ADDRSTRLEN];

        net_gw_config_init(&c);
        assert_int_equal(net_pool_assign(NET_POOL4_DEFAULT, NET_POOL6_DEFAULT, 0, &c), 0);
        assert_string_equal(inet_ntop(AF_INET, &c.gw4, a, sizeof(a)), "10.115.0.1");
        assert_string_equal(inet_ntop(AF_INET, &c.guest4, a, sizeof(a)), "10.115.0.2");
        assert_int_equal(c.prefix4, 30);
        assert_string_equal(inet_ntop(AF_INET6, &c.guest6, a, sizeof(a)), "fd6d:7362::2");
        assert_int_equal(net_pool_assign(NET_POOL4_DEFAULT, NET_POOL6_DEFAULT, 300, &c), 0);
        assert_string_equal(inet_ntop(AF_INET, &c.gw4, a, sizeof(a)), "10.115.4.177");
        assert_string_equal(inet_ntop(AF_INET6, &c.gw6, a, sizeof(a)), "fd6d:7362:0:12c::1");
        assert_int_equal(c.guest_mac[3], 1);
        assert_int_equal(c.guest_mac[4], 44);
        assert_int_equal(c.guest_mac[5], 2);
        /* Slots wrap within the pool. */
        assert_int_equal(net_pool_assign("192.168.100.0/29", NULL, 3, &c), 0);
        assert_string_equal(inet_ntop(AF_INET, &c.guest4, a, sizeof(a)), "192.168.100.6");
        assert_false(c.ipv6);
        assert_int_equal(net_pool_assign("10.0.0.0/31", NULL, 0, &c), -EINVAL);
        assert_int_equal(net_pool_assign("10.0.0.0", NULL, 0, &c), -EINVAL);
        assert_int_equal(net_pool_assign("10.0.0.0/16", "fd00::/96", 0, &c), -EINVAL);
}

static void test_deny_format(void **state)
{
        struct net_rule r;
        char buf[256];
        struct net_deny d = {
                .direction = NET_DIR_EGRESS,
                .ipproto = IPPROTO_TCP,
                .src = A("10.0.0.2"),
                .dst = A("192.168.1.5"),
                .sport = 4321,
                .dport = 22,
                .rule = &r,
        };

        assert_int_equal(net_policy_parse_rule("deny@private", &r), 0);
        net_deny_format(&d, buf, sizeof(buf));
        assert_string_equal(buf, "denied tcp 10.0.0.2:4321 -> 192.168.1.5:22 by rule deny@private");
        d.rule = NULL;
        d.ipproto = IPPROTO_ICMPV6;
        d.src = A("fd00::2");
        d.dst = A("fd00::9");
        net_deny_format(&d, buf, sizeof(buf));
        assert_string_equal(buf, "denied icmp fd00::2 -> fd00::9 by default (egress deny)");
        d.ipproto = IPPROTO_UDP;
        d.direction = NET_DIR_INGRESS;
        net_deny_format(&d, buf, sizeof(buf));
        assert_string_equal(buf, "denied ingress udp [fd00::2]:4321 -> [fd00::9]:22 by default "
                                 "(ingress deny)");
        d = (struct net_deny){.name = "evil.test", .rebind = true, .dst = A("10.0.0.1")};
        net_deny_format(&d, buf, sizeof(buf));
        assert_string_equal(buf, "denied dns answer evil.test -> 10.0.0.1 (rebind protection)");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),    cmocka_unit_test(test_classify),
                cmocka_unit_test(test_eval),     cmocka_unit_test(test_names),
                cmocka_unit_test(test_profiles), cmocka_unit_test(test_ports),
                cmocka_unit_test(test_pool),     cmocka_unit_test(test_deny_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
