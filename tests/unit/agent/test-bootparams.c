/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the agent's kernel command line parser (agent/bootparams.c),
 * built for the host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/agent.h"

static void test_defaults(void **state)
{
        struct agent_bootparams bp;

        assert_int_equal(agent_bootparams_parse("console=ttyS0 reboot=t panic=-1\n", &bp, NULL), 0);
        assert_string_equal(bp.hostname, "");
        assert_false(bp.has_time);
        assert_int_equal(bp.root, AGENT_ROOT_OVERLAY);
        assert_int_equal(bp.log_level, LOG_LEVEL_INFO);
        assert_false(bp.net.has_ip4 || bp.net.has_gw4 || bp.net.has_ip6 || bp.net.has_gw6);
        assert_int_equal(bp.net.mtu, 0);
        assert_int_equal(bp.net.n_dns, 0);
        assert_string_equal(bp.net.hostalias, "");
        assert_int_equal(agent_bootparams_parse("", &bp, NULL), 0);
}

static void test_all(void **state)
{
        struct agent_bootparams bp;

        assert_int_equal(agent_bootparams_parse("console=ttyS0 msb.hostname=box-1.example "
                                                "msb.time=1764160000.123456789 msb.root=disk "
                                                "msb.log=debug msb.future=whatever quiet",
                                                &bp, NULL),
                         0);
        assert_string_equal(bp.hostname, "box-1.example");
        assert_true(bp.has_time);
        assert_int_equal(bp.time.tv_sec, 1764160000);
        assert_int_equal(bp.time.tv_nsec, 123456789);
        assert_int_equal(bp.root, AGENT_ROOT_DISK);
        assert_int_equal(bp.log_level, LOG_LEVEL_DEBUG);
}

static void test_time_forms(void **state)
{
        struct agent_bootparams bp;

        assert_int_equal(agent_bootparams_parse("msb.time=42", &bp, NULL), 0);
        assert_int_equal(bp.time.tv_sec, 42);
        assert_int_equal(bp.time.tv_nsec, 0);
        assert_int_equal(agent_bootparams_parse("msb.time=42.5", &bp, NULL), 0);
        assert_int_equal(bp.time.tv_nsec, 500000000);
        assert_int_equal(agent_bootparams_parse("msb.time=7.000000001", &bp, NULL), 0);
        assert_int_equal(bp.time.tv_nsec, 1);
}

static void test_bad_values(void **state)
{
        static const char *const bad[] = {
                "msb.time=",
                "msb.time=1.",
                "msb.time=.5",
                "msb.time=1.1234567890",
                "msb.time=12x",
                "msb.time=99999999999999999999999",
                "msb.root=tmpfs",
                "msb.hostname=",
                "msb.hostname=-lead",
                "msb.hostname=a_b",
                "msb.hostname=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "msb.log=verbose",
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct agent_bootparams bp = {0};
                const char *where = NULL;
                char line[160];

                snprintf(line, sizeof(line), "console=ttyS0 %s quiet", bad[i]);
                assert_int_equal(agent_bootparams_parse(line, &bp, &where), -EINVAL);
                assert_non_null(where);
                assert_memory_equal(where, bad[i], strlen(bad[i]));
        }
}

static void assert_addr(int family, const void *addr, const char *text)
{
        char buf[INET6_ADDRSTRLEN];

        assert_non_null(inet_ntop(family, addr, buf, sizeof(buf)));
        assert_string_equal(buf, text);
}

/* What the supervisor passes (lib/supervisor/network.c). */
#define NET_LINE                                                                                   \
        "msb.ip4=10.115.0.2/30 msb.gw4=10.115.0.1 msb.ip6=fd6d:7362:0:1::2/64 "                    \
        "msb.gw6=fd6d:7362:0:1::1 msb.mtu=65520 msb.dns=10.115.0.1,fd6d:7362:0:1::1 "              \
        "msb.hostalias=host.msb.internal"

static void test_net(void **state)
{
        struct agent_bootparams bp;

        assert_int_equal(agent_bootparams_parse("console=ttyS0 msb.hostname=box " NET_LINE " quiet",
                                                &bp, NULL),
                         0);
        assert_true(bp.net.has_ip4);
        assert_addr(AF_INET, &bp.net.ip4, "10.115.0.2");
        assert_int_equal(bp.net.prefix4, 30);
        assert_true(bp.net.has_gw4);
        assert_addr(AF_INET, &bp.net.gw4, "10.115.0.1");
        assert_true(bp.net.has_ip6);
        assert_addr(AF_INET6, &bp.net.ip6, "fd6d:7362:0:1::2");
        assert_int_equal(bp.net.prefix6, 64);
        assert_true(bp.net.has_gw6);
        assert_addr(AF_INET6, &bp.net.gw6, "fd6d:7362:0:1::1");
        assert_int_equal(bp.net.mtu, 65520);
        assert_int_equal(bp.net.n_dns, 2);
        assert_int_equal(bp.net.dns[0].family, AF_INET);
        assert_addr(AF_INET, &bp.net.dns[0].v4, "10.115.0.1");
        assert_int_equal(bp.net.dns[1].family, AF_INET6);
        assert_addr(AF_INET6, &bp.net.dns[1].v6, "fd6d:7362:0:1::1");
        assert_string_equal(bp.net.hostalias, "host.msb.internal");
        assert_string_equal(bp.hostname, "box");
}

static void test_net_forms(void **state)
{
        static const char *const good[] = {
                "msb.ip4=10.115.0.2/30 msb.gw4=10.115.0.1",        /* IPv4 only */
                "msb.ip6=fd00::2/64 msb.gw6=fd00::1 msb.mtu=1280", /* IPv6 only, least MTU */
                "msb.gw4=10.0.0.1 msb.ip4=10.0.0.2/24",            /* any order */
                "msb.ip4=192.168.7.1/31 msb.gw4=192.168.7.0",      /* /31: both usable */
                "msb.ip4=10.1.2.3/32",                             /* no gateway */
                "msb.ip6=2001:db8::5/128",                         /* no gateway */
                "msb.ip6=2001:db8:1::2/48 msb.gw6=fe80::1",        /* link-local gateway */
                "msb.ip6=2001:db8::2/61 msb.gw6=2001:db8:0:7::1",  /* a prefix inside a byte */
                "msb.ip4=10.0.0.2/8 msb.gw4=10.255.255.254 msb.mtu=68",
                "msb.mtu=65535",                                            /* an MTU alone */
                "msb.dns=1.1.1.1",                                          /* resolvers alone */
                "msb.dns=1.1.1.1,8.8.8.8,2606:4700:4700::1111",             /* three */
                "msb.ip4=10.0.0.2/30 msb.gw4=10.0.0.1 msb.hostalias=h",     /* one-letter alias */
                "msb.ip4=10.0.0.5/30 msb.ip4=10.0.0.2/30 msb.gw4=10.0.0.1", /* the last wins */
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                struct agent_bootparams bp;
                const char *bad = NULL;

                if (agent_bootparams_parse(good[i], &bp, &bad) != 0)
                        fail_msg("rejected: %s (at %s)", good[i], bad);
        }
}

static void test_net_bad_values(void **state)
{
        /* each: a line, and the word that must be blamed */
        static const char *const bad[][2] = {
                /* malformed values */
                {"msb.ip4=10.115.0.2", "msb.ip4=10.115.0.2"},
                {"msb.ip4=10.115.0.2/", "msb.ip4=10.115.0.2/"},
                {"msb.ip4=10.115.0.2/33", "msb.ip4=10.115.0.2/33"},
                {"msb.ip4=10.115.0.2/0", "msb.ip4=10.115.0.2/0"},
                {"msb.ip4=10.115.0.2/030", "msb.ip4=10.115.0.2/030"},
                {"msb.ip4=10.115.0.2/+30", "msb.ip4=10.115.0.2/+30"},
                {"msb.ip4=10.115.0/30", "msb.ip4=10.115.0/30"},
                {"msb.ip4=10.115.0.256/30", "msb.ip4=10.115.0.256/30"},
                {"msb.ip4=010.115.0.2/30", "msb.ip4=010.115.0.2/30"},
                {"msb.ip4=fd00::2/64", "msb.ip4=fd00::2/64"},
                {"msb.ip4=", "msb.ip4="},
                {"msb.gw4=10.115.0.1/30", "msb.gw4=10.115.0.1/30"},
                {"msb.gw4=host", "msb.gw4=host"},
                {"msb.ip6=fd6d::2", "msb.ip6=fd6d::2"},
                {"msb.ip6=fd6d::2/129", "msb.ip6=fd6d::2/129"},
                {"msb.ip6=fd6d::2%eth0/64", "msb.ip6=fd6d::2%eth0/64"},
                {"msb.ip6=[fd6d::2]/64", "msb.ip6=[fd6d::2]/64"},
                {"msb.ip6=10.0.0.2/64", "msb.ip6=10.0.0.2/64"},
                {"msb.gw6=fd6d:::1", "msb.gw6=fd6d:::1"},
                {"msb.mtu=67", "msb.mtu=67"},
                {"msb.mtu=65536", "msb.mtu=65536"},
                {"msb.mtu=01500", "msb.mtu=01500"},
                {"msb.mtu=1500x", "msb.mtu=1500x"},
                {"msb.mtu=", "msb.mtu="},
                {"msb.mtu=99999999999", "msb.mtu=99999999999"},
                {"msb.dns=", "msb.dns="},
                {"msb.dns=1.1.1.1,", "msb.dns=1.1.1.1,"},
                {"msb.dns=,1.1.1.1", "msb.dns=,1.1.1.1"},
                {"msb.dns=1.1.1.1,,8.8.8.8", "msb.dns=1.1.1.1,,8.8.8.8"},
                {"msb.dns=1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", "msb.dns=1.1.1.1,2.2.2.2,3.3.3.3,"},
                {"msb.dns=dns.google", "msb.dns=dns.google"},
                {"msb.dns=1.1.1.1:53", "msb.dns=1.1.1.1:53"},
                {"msb.hostalias=", "msb.hostalias="},
                {"msb.hostalias=host_msb", "msb.hostalias=host_msb"},
                {"msb.hostalias=.msb", "msb.hostalias=.msb"},
                /* addresses a guest cannot hold */
                {"msb.ip4=0.0.0.5/8", "msb.ip4=0.0.0.5/8"},
                {"msb.ip4=127.0.0.2/8", "msb.ip4=127.0.0.2/8"},
                {"msb.ip4=224.0.0.1/24", "msb.ip4=224.0.0.1/24"},
                {"msb.ip4=255.255.255.255/32", "msb.ip4=255.255.255.255/32"},
                {"msb.ip4=10.115.0.0/30", "msb.ip4=10.115.0.0/30"},
                {"msb.ip4=10.115.0.3/30", "msb.ip4=10.115.0.3/30"},
                {"msb.ip6=::/64", "msb.ip6=::/64"},
                {"msb.ip6=::1/128", "msb.ip6=::1/128"},
                {"msb.ip6=ff02::1/64", "msb.ip6=ff02::1/64"},
                {"msb.ip6=fe80::2/64", "msb.ip6=fe80::2/64"},
                {"msb.ip6=::ffff:10.0.0.2/120", "msb.ip6=::ffff:10.0.0.2/120"},
                /* values that do not fit together */
                {"msb.gw4=10.115.0.1", "msb.gw4=10.115.0.1"},
                {"msb.gw4=10.115.0.5 msb.ip4=10.115.0.2/30", "msb.gw4=10.115.0.5"},
                {"msb.ip4=10.115.0.2/30 msb.gw4=10.115.0.2", "msb.gw4=10.115.0.2"},
                {"msb.ip4=10.115.0.2/30 msb.gw4=10.115.0.3", "msb.gw4=10.115.0.3"},
                {"msb.ip4=10.115.0.2/30 msb.gw4=10.115.0.0", "msb.gw4=10.115.0.0"},
                {"msb.ip4=10.1.2.3/32 msb.gw4=10.1.2.4", "msb.gw4=10.1.2.4"},
                {"msb.gw6=fd00::1", "msb.gw6=fd00::1"},
                {"msb.ip6=fd00::2/64 msb.gw6=fd01::1", "msb.gw6=fd01::1"},
                {"msb.ip6=fd00::2/64 msb.gw6=fd00::2", "msb.gw6=fd00::2"},
                {"msb.ip6=fd00::2/64 msb.gw6=ff02::2", "msb.gw6=ff02::2"},
                {"msb.ip6=fd00::2/64 msb.gw6=::", "msb.gw6=::"},
                {"msb.ip6=2001:db8::2/61 msb.gw6=2001:db8:0:8::1", "msb.gw6=2001:db8:0:8::1"},
                {"msb.ip6=fd00::2/64 msb.mtu=1279", "msb.mtu=1279"},
                {"msb.ip4=10.0.0.2/30 msb.hostalias=host.msb.internal", "msb.hostalias="},
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct agent_bootparams bp = {0};
                const char *where = NULL;
                char line[256];

                snprintf(line, sizeof(line), "console=ttyS0 %s quiet", bad[i][0]);
                if (agent_bootparams_parse(line, &bp, &where) != -EINVAL)
                        fail_msg("accepted: %s", bad[i][0]);
                assert_non_null(where);
                if (strncmp(where, bad[i][1], strlen(bad[i][1])) != 0)
                        fail_msg("%s: blamed \"%s\"", bad[i][0], where);
        }
}

static void test_hostname_max(void **state)
{
        struct agent_bootparams bp;
        char line[128];

        /* 64 bytes is the longest host name Linux accepts */
        snprintf(line, sizeof(line), "msb.hostname=%064d", 7);
        assert_int_equal(agent_bootparams_parse(line, &bp, NULL), 0);
        assert_int_equal(strlen(bp.hostname), 64);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),     cmocka_unit_test(test_all),
                cmocka_unit_test(test_time_forms),   cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_hostname_max), cmocka_unit_test(test_net),
                cmocka_unit_test(test_net_forms),    cmocka_unit_test(test_net_bad_values),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
