/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the DNS message code: the question (case folding,
 * compression, refusals), A/AAAA answers behind compressed names, the EDNS
 * size, pointer loops and forward pointers, error replies and truncation.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/net/dns.h"

/* id 0x1234, RD, one question "WWW.Example.com" A, EDNS 1232 */
static const uint8_t query[] = {
        0x12, 0x34, 0x01, 0x00, 0,   1,   0,    0,    0,   0, 0,   1,   3,   'W', 'W',
        'W',  7,    'E',  'x',  'a', 'm', 'p',  'l',  'e', 3, 'c', 'o', 'm', 0,   0,
        1,    0,    1,    0,    0,   41,  0x04, 0xd0, 0,   0, 0,   0,   0,   0,
};

/* the answer: CNAME then A and AAAA, names compressed */
static const uint8_t answer[] = {
        0x12, 0x34, 0x81, 0x80, 0,   1,   0,    3,    0,    0,    0,    0,    3,
        'w',  'w',  'w',  7,    'e', 'x', 'a',  'm',  'p',  'l',  'e',  3,    'c',
        'o',  'm',  0,    0,    1,   0,   1,    0xc0, 12,   0,    5,    0,    1,
        0,    0,    0,    60,   0,   2,   0xc0, 16,   0xc0, 16,   0,    1,    0,
        1,    0,    0,    1,    0,   0,   4,    93,   184,  216,  34,   0xc0, 16,
        0,    28,   0,    1,    0,   0,   0,    30,   0,    16,   0x26, 0x06, 0x28,
        0,    0x02, 0x20, 0,    1,   0x2, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46,
};

static void test_question(void **state)
{
        struct dns_question q;

        assert_int_equal(dns_parse_question(query, sizeof(query), &q), 0);
        assert_int_equal(q.id, 0x1234);
        assert_string_equal(q.name, "www.example.com");
        assert_int_equal(q.qtype, DNS_TYPE_A);
        assert_int_equal(q.end, 33);
        assert_int_equal(dns_udp_limit(query, sizeof(query)), 1232);
        assert_int_equal(dns_udp_limit(answer, sizeof(answer)), 512);
        for (size_t i = 0; i < 33; i++)
                assert_int_equal(dns_parse_question(query, i, &q), -EBADMSG);
}

static void test_answers(void **state)
{
        struct dns_addr a[4];
        size_t n;
        char s[INET6_ADDRSTRLEN];

        assert_int_equal(dns_parse_answers(answer, sizeof(answer), a, 4, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(inet_ntop(AF_INET, &a[0].addr.s6_addr[12], s, sizeof(s)),
                            "93.184.216.34");
        assert_int_equal(a[0].ttl, 256);
        assert_string_equal(inet_ntop(AF_INET6, &a[1].addr, s, sizeof(s)),
                            "2606:2800:220:1:248:1893:25c8:1946");
        assert_int_equal(dns_parse_answers(answer, sizeof(answer), a, 1, &n), 0);
        assert_int_equal(n, 2);
        for (size_t i = 12; i < sizeof(answer); i++)
                if (dns_parse_answers(answer, i, a, 4, &n) == 0)
                        assert_true(n < 2);
}

static void test_hostile_names(void **state)
{
        struct dns_question q;
        uint8_t m[64] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};

        /* a pointer to itself */
        m[12] = 0xc0;
        m[13] = 12;
        assert_int_equal(dns_parse_question(m, 18, &q), -EBADMSG);
        /* a forward pointer */
        m[13] = 20;
        assert_int_equal(dns_parse_question(m, 30, &q), -EBADMSG);
        /* a pointer into the header */
        m[13] = 2;
        assert_int_equal(dns_parse_question(m, 18, &q), -EBADMSG);
        /* a label with a dot in it */
        memcpy(m + 12,
               "\x03"
               "a.b"
               "\x00\x00\x01\x00\x01",
               9);
        assert_int_equal(dns_parse_question(m, 21, &q), -EBADMSG);
        /* the reserved label types 0x40 and 0x80 */
        m[12] = 0x41;
        assert_int_equal(dns_parse_question(m, 21, &q), -EBADMSG);
        /* two questions */
        memcpy(m + 12,
               "\x01"
               "a"
               "\x00\x00\x01\x00\x01",
               7);
        m[5] = 2;
        assert_int_equal(dns_parse_question(m, 19, &q), -EBADMSG);
        m[5] = 1;
        assert_int_equal(dns_parse_question(m, 19, &q), 0);
        assert_string_equal(q.name, "a");
}

static void test_long_name(void **state)
{
        uint8_t m[600] = {0, 1, 0, 0, 0, 1};
        struct dns_question q;
        size_t off = 12;

        /* 4 labels of 63: 255 bytes of text, more than a name may have */
        for (int i = 0; i < 4; i++) {
                m[off++] = 63;
                memset(m + off, 'a', 63);
                off += 63;
        }
        m[off++] = 0;
        off += 4;
        assert_int_equal(dns_parse_question(m, off, &q), -EBADMSG);
        /* 3 labels of 63 and one of 61: 253, the longest */
        m[12 + 3 * 64] = 61;
        memmove(m + 12 + 3 * 64 + 62, m + 12 + 4 * 64, 5);
        assert_int_equal(dns_parse_question(m, off - 2, &q), 0);
        assert_int_equal(strlen(q.name), 253);
}

static void test_replies(void **state)
{
        struct dns_question q;
        uint8_t out[512], m[sizeof(answer)];
        size_t n;

        assert_int_equal(dns_parse_question(query, sizeof(query), &q), 0);
        n = dns_reply_error(query, &q, DNS_RCODE_NXDOMAIN, out, sizeof(out));
        assert_int_equal(n, q.end);
        assert_int_equal(out[2] & 0x80, 0x80);
        assert_int_equal(out[2] & 0x01, 0x01); /* RD kept */
        assert_int_equal(out[3] & 0x0f, 3);
        assert_int_equal(out[7] + out[9] + out[11], 0);
        assert_int_equal(dns_reply_error(query, &q, 3, out, 10), 0);

        memcpy(m, answer, sizeof(m));
        assert_int_equal(dns_parse_question(m, sizeof(m), &q), 0);
        n = dns_truncate(m, &q);
        assert_int_equal(n, 33);
        assert_int_equal(m[2] & 0x02, 0x02);
        assert_int_equal(m[7], 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_question),      cmocka_unit_test(test_answers),
                cmocka_unit_test(test_hostile_names), cmocka_unit_test(test_long_name),
                cmocka_unit_test(test_replies),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
