/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a DNS message is a 12-byte header and four sections
 * of records; names are sequences of length-prefixed labels, possibly ending
 * in a 2-byte pointer to an earlier name (compression). name_read() follows
 * pointers only to strictly earlier offsets and at most 64 of them, so a
 * loop or a forward jump fails; the text it produces is bounded by
 * NET_NAME_MAX. skip_name() walks a name in place without following
 * pointers. Records are skipped by their rdlength, checked against the end.
 */
#include "dns.h"

#include <errno.h>
#include <string.h>

#include "packet.h"

/* Decodes the name at *off into text (lower case, dots between labels) and
 * moves *off past it. */
static int name_read(const uint8_t *m, size_t len, size_t *off, char *out)
{
        size_t pos = *off, n = 0, end = 0;
        int jumps = 0;

        for (;;) {
                uint8_t l;

                if (pos >= len)
                        return -EBADMSG;
                l = m[pos];
                if ((l & 0xc0) == 0xc0) {
                        size_t target;

                        if (pos + 1 >= len || ++jumps > 64)
                                return -EBADMSG;
                        target = (size_t)(l & 0x3f) << 8 | m[pos + 1];
                        if (!end)
                                end = pos + 2;
                        /* Only backwards, and never into the header. */
                        if (target >= pos || target < DNS_HDR_LEN)
                                return -EBADMSG;
                        pos = target;
                        continue;
                }
                if (l & 0xc0)
                        return -EBADMSG;
                pos++;
                if (l == 0)
                        break;
                if (l > len - pos || n + (n ? 1 : 0) + l > NET_NAME_MAX)
                        return -EBADMSG;
                if (n)
                        out[n++] = '.';
                for (size_t i = 0; i < l; i++) {
                        uint8_t c = m[pos + i];
                        if (c <= ' ' || c == '.' || c >= 0x7f)
                                return -EBADMSG;
                        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
                }
                pos += l;
        }
        out[n] = '\0';
        *off = end ? end : pos;
        return 0;
}

static int skip_name(const uint8_t *m, size_t len, size_t *off)
{
        size_t pos = *off;

        for (;;) {
                uint8_t l;

                if (pos >= len)
                        return -EBADMSG;
                l = m[pos];
                if ((l & 0xc0) == 0xc0) {
                        if (pos + 1 >= len)
                                return -EBADMSG;
                        *off = pos + 2;
                        return 0;
                }
                if (l & 0xc0)
                        return -EBADMSG;
                pos += 1 + (size_t)l;
                if (l == 0) {
                        *off = pos;
                        return 0;
                }
        }
}

int dns_parse_question(const uint8_t *msg, size_t len, struct dns_question *ret)
{
        struct dns_question q;
        size_t off = DNS_HDR_LEN;

        if (len < DNS_HDR_LEN || net_get16(msg + 4) != 1)
                return -EBADMSG;
        q.id = net_get16(msg);
        q.flags = net_get16(msg + 2);
        if (name_read(msg, len, &off, q.name) < 0 || len - off < 4)
                return -EBADMSG;
        q.qtype = net_get16(msg + off);
        q.qclass = net_get16(msg + off + 2);
        q.end = off + 4;
        *ret = q;
        return 0;
}

/* Moves *off past one resource record; its type, rdata offset and length. */
static int skip_rr(const uint8_t *m, size_t len, size_t *off, uint16_t *type, uint32_t *ttl,
                   size_t *rdata, uint16_t *rdlen)
{
        if (skip_name(m, len, off) < 0 || len - *off < 10)
                return -EBADMSG;
        *type = net_get16(m + *off);
        *ttl = net_get32(m + *off + 4);
        *rdlen = net_get16(m + *off + 8);
        *off += 10;
        if (*rdlen > len - *off)
                return -EBADMSG;
        *rdata = *off;
        *off += *rdlen;
        return 0;
}

static int skip_questions(const uint8_t *m, size_t len, size_t *off)
{
        uint16_t qd = net_get16(m + 4);

        *off = DNS_HDR_LEN;
        for (uint16_t i = 0; i < qd; i++)
                if (skip_name(m, len, off) < 0 || len - *off < 4)
                        return -EBADMSG;
                else
                        *off += 4;
        return 0;
}

int dns_parse_answers(const uint8_t *msg, size_t len, struct dns_addr *out, size_t max,
                      size_t *ret_n)
{
        size_t off, n = 0;
        uint16_t an;

        if (len < DNS_HDR_LEN || skip_questions(msg, len, &off) < 0)
                return -EBADMSG;
        an = net_get16(msg + 6);
        for (uint16_t i = 0; i < an; i++) {
                uint16_t type, rdlen;
                uint32_t ttl;
                size_t rdata;

                if (skip_rr(msg, len, &off, &type, &ttl, &rdata, &rdlen) < 0)
                        return -EBADMSG;
                if (!((type == DNS_TYPE_A && rdlen == 4) || (type == DNS_TYPE_AAAA && rdlen == 16)))
                        continue;
                if (n < max) {
                        struct dns_addr *a = &out[n];
                        if (type == DNS_TYPE_A) {
                                struct in_addr v4;
                                memcpy(&v4, msg + rdata, 4);
                                net_addr_from_v4(&a->addr, &v4);
                        } else {
                                memcpy(&a->addr, msg + rdata, 16);
                        }
                        a->ttl = ttl;
                }
                n++;
        }
        *ret_n = n;
        return 0;
}

uint16_t dns_udp_limit(const uint8_t *msg, size_t len)
{
        size_t off;
        uint16_t an, ns, ar;

        if (len < DNS_HDR_LEN || skip_questions(msg, len, &off) < 0)
                return 512;
        an = net_get16(msg + 6);
        ns = net_get16(msg + 8);
        ar = net_get16(msg + 10);
        for (uint32_t i = 0; i < (uint32_t)an + ns + ar; i++) {
                size_t start = off, rdata;
                uint16_t type, rdlen;
                uint32_t ttl;

                if (skip_rr(msg, len, &off, &type, &ttl, &rdata, &rdlen) < 0)
                        return 512;
                if (i >= (uint32_t)an + ns && type == DNS_TYPE_OPT) {
                        /* The OPT record's class is the payload size. */
                        uint16_t size;
                        if (skip_name(msg, len, &start) < 0)
                                return 512;
                        size = net_get16(msg + start + 2);
                        return size < 512 ? 512 : size;
                }
        }
        return 512;
}

size_t dns_reply_error(const uint8_t *msg, const struct dns_question *q, uint8_t rcode,
                       uint8_t *out, size_t size)
{
        if (size < q->end)
                return 0;
        memmove(out, msg, q->end);
        /* QR, the query's opcode and RD, RA; no answers. */
        out[2] = (uint8_t)(0x80 | (msg[2] & 0x79));
        out[3] = (uint8_t)(0x80 | (rcode & 0x0f));
        memset(out + 6, 0, 6);
        return q->end;
}

size_t dns_truncate(uint8_t *msg, const struct dns_question *q)
{
        msg[2] |= 0x02; /* TC */
        memset(msg + 6, 0, 6);
        return q->end;
}
