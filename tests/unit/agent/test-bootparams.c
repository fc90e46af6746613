/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the agent's kernel command line parser (agent/bootparams.c),
 * built for the host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "agent/agent.h"

static void test_defaults(void **state)
{
        struct agent_bootparams bp;

        assert_int_equal(agent_bootparams_parse("console=ttyS0 reboot=t panic=-1\n", &bp, NULL), 0);
        assert_string_equal(bp.hostname, "");
        assert_false(bp.has_time);
        assert_int_equal(bp.root, AGENT_ROOT_OVERLAY);
        assert_int_equal(bp.log_level, LOG_LEVEL_INFO);
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
                cmocka_unit_test(test_hostname_max),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
