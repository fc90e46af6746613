/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the DNS message code. The input is one message. The
 * question parser, the answer parser and the EDNS reader run on it; what
 * they return must be consistent (a name no longer than NET_NAME_MAX, in
 * lower case, without empty labels; a question end inside the message).
 * When the question parses, an error reply and a truncation are made from
 * a copy and must parse back to the same question.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/net/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct dns_question q, q2;
        struct dns_addr a[8];
        size_t n;
        uint8_t *copy;

        (void)dns_udp_limit(data, size);
        if (dns_parse_answers(data, size, a, 8, &n) == 0)
                assert(n <= 65535);
        if (dns_parse_question(data, size, &q) < 0)
                return 0;
        assert(q.end <= size);
        assert(strlen(q.name) <= NET_NAME_MAX);
        assert(!strstr(q.name, ".."));
        for (const char *p = q.name; *p; p++)
                assert(!(*p >= 'A' && *p <= 'Z'));

        copy = malloc(size);
        assert(copy);
        memcpy(copy, data, size);
        n = dns_truncate(copy, &q);
        assert(n == q.end);
        assert(dns_parse_question(copy, n, &q2) == 0);
        assert(strcmp(q.name, q2.name) == 0 && q.qtype == q2.qtype);
        n = dns_reply_error(data, &q, DNS_RCODE_NXDOMAIN, copy, size);
        assert(n == q.end);
        assert(dns_parse_question(copy, n, &q2) == 0);
        assert(strcmp(q.name, q2.name) == 0);
        free(copy);
        return 0;
}
