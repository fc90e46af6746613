/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS messages (RFC 1035), as far as the forwarder needs them: the
 * question, the A/AAAA answers, the EDNS payload size, and the replies we
 * make ourselves (errors, truncation). Pure functions over a buffer; every
 * message is hostile, every read is bounds-checked, name compression is
 * followed only backwards and at most 64 times.
 */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define DNS_HDR_LEN        12
#define DNS_TYPE_A         1
#define DNS_TYPE_AAAA      28
#define DNS_TYPE_OPT       41
#define DNS_RCODE_FORMERR  1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_REFUSED  5

struct dns_question {
        uint16_t id;
        uint16_t flags;
        char name[NET_NAME_MAX + 1]; /* lower case, no trailing dot; "" for the root */
        uint16_t qtype, qclass;
        size_t end; /* offset just past the question */
};

/* Parses the header and the one question of a message. -EBADMSG when it is
 * malformed, has other than one question, or a name we do not represent
 * (a label with a dot, a space or a control character). */
int dns_parse_question(const uint8_t *msg, size_t len, struct dns_question *ret);

struct dns_addr {
        struct in6_addr addr; /* A records as mapped addresses */
        uint32_t ttl;
};

/* The A and AAAA records of the answer section (at most max; the count of
 * all of them in *ret_n). -EBADMSG when the message is malformed. */
int dns_parse_answers(const uint8_t *msg, size_t len, struct dns_addr *out, size_t max,
                      size_t *ret_n);

/* The UDP payload size the query's EDNS OPT record offers, 512 without. */
uint16_t dns_udp_limit(const uint8_t *msg, size_t len);

/* A reply to the query q (whose bytes are msg) with only the question and
 * the given rcode. Returns its length (at most q->end), 0 when out is too
 * small. */
size_t dns_reply_error(const uint8_t *msg, const struct dns_question *q, uint8_t rcode,
                       uint8_t *out, size_t size);

/* Cuts a response to its header and question with TC set (RFC 2181 §9).
 * Returns the new length. */
size_t dns_truncate(uint8_t *msg, const struct dns_question *q);
