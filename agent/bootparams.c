/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the kernel hands init only the parameters without a
 * dot as environment, so the agent reads its own (msb.*) from /proc/cmdline.
 * The line is split on spaces; each msb.KEY=VALUE is checked strictly, since
 * a wrong value is a host bug that must stop the boot visibly rather than
 * start a half-configured guest. Unknown msb.* keys are ignored (a newer
 * host may pass more); a repeated key takes its last value. The network
 * parameters are also checked against each other once the whole line is
 * read (a gateway must be on the guest's subnet, and so on), since the
 * kernel would refuse them only later and less clearly. Pure string work,
 * so it is unit-tested on the host.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* Where the network parameters were, for errors found after the line. */
struct parse_state {
        struct agent_bootparams bp;
        const char *gw4, *gw6, *mtu, *hostalias;
};

/* RFC 1123 host name: letters, digits, '-' and '.', not starting with either
 * punctuation, 1..max bytes. */
static bool name_valid(const char *s, size_t n, size_t max)
{
        if (n == 0 || n > max)
                return false;
        if (s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
                        return false;
        return true;
}

/* "SECONDS[.FRACTION]" with up to 9 fraction digits. */
static int parse_time(const char *s, size_t n, struct timespec *ret)
{
        uint64_t sec = 0, nsec = 0;
        size_t i = 0, digits = 0;

        for (; i < n && isdigit((unsigned char)s[i]); i++) {
                if (sec > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                sec = sec * 10 + (uint64_t)(s[i] - '0');
        }
        if (i == 0 || sec > INT64_MAX / 2)
                return -EINVAL;
        if (i < n) {
                if (s[i++] != '.' || i == n)
                        return -EINVAL;
                for (; i < n; i++, digits++) {
                        if (!isdigit((unsigned char)s[i]) || digits == 9)
                                return -EINVAL;
                        nsec = nsec * 10 + (uint64_t)(s[i] - '0');
                }
                for (; digits < 9; digits++)
                        nsec *= 10;
        }
        ret->tv_sec = (time_t)sec;
        ret->tv_nsec = (long)nsec;
        return 0;
}

static bool value_is(const char *v, size_t n, const char *word)
{
        return strlen(word) == n && memcmp(v, word, n) == 0;
}

/* An address in the family's text form (no zone, no brackets). */
static int parse_addr(const char *s, size_t n, int family, void *ret)
{
        char text[INET6_ADDRSTRLEN];

        if (n == 0 || n >= sizeof(text))
                return -EINVAL;
        memcpy(text, s, n);
        text[n] = '\0';
        return inet_pton(family, text, ret) == 1 ? 0 : -EINVAL;
}

/* A decimal number without sign or leading zeros, lo..hi. */
static int parse_uint(const char *s, size_t n, uint32_t lo, uint32_t hi, uint32_t *ret)
{
        uint32_t v = 0;

        if (n == 0 || n > 9 || (s[0] == '0' && n > 1))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return -EINVAL;
                v = v * 10 + (uint32_t)(s[i] - '0');
        }
        if (v < lo || v > hi)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "ADDR/PREFIX" with a prefix of 1..max bits. */
static int parse_cidr(const char *s, size_t n, int family, void *ret_addr, uint8_t *ret_prefix)
{
        const char *slash = memchr(s, '/', n);
        size_t alen;
        uint32_t prefix;

        if (!slash)
                return -EINVAL;
        alen = (size_t)(slash - s);
        if (parse_uint(slash + 1, n - alen - 1, 1, family == AF_INET ? 32 : 128, &prefix) < 0 ||
            parse_addr(s, alen, family, ret_addr) < 0)
                return -EINVAL;
        *ret_prefix = (uint8_t)prefix;
        return 0;
}

/* "ADDR[,ADDR...]", each IPv4 or IPv6, at most AGENT_MAX_DNS. */
static int parse_dns(const char *s, size_t n, struct agent_net_params *net)
{
        size_t count = 0;

        for (;;) {
                const char *comma = memchr(s, ',', n);
                size_t len = comma ? (size_t)(comma - s) : n;
                struct agent_addr *a = &net->dns[count];

                if (count == AGENT_MAX_DNS)
                        return -EINVAL;
                if (parse_addr(s, len, AF_INET, &a->v4) == 0)
                        a->family = AF_INET;
                else if (parse_addr(s, len, AF_INET6, &a->v6) == 0)
                        a->family = AF_INET6;
                else
                        return -EINVAL;
                count++;
                if (!comma)
                        break;
                s += len + 1;
                n -= len + 1;
        }
        net->n_dns = count;
        return 0;
}

static uint32_t mask4(unsigned prefix)
{
        return prefix == 0 ? 0 : UINT32_MAX << (32 - prefix);
}

/* A host address: not 0/8, loopback, multicast or 240/4 (the limited
 * broadcast included), nor, on a subnet of more than two, the subnet's own
 * address or its broadcast. */
static bool ip4_host(struct in_addr a, unsigned prefix)
{
        uint32_t h = ntohl(a.s_addr), host = h & ~mask4(prefix);

        if ((h >> 24) == 0 || (h >> 24) == 127 || h >= 0xe0000000u)
                return false;
        return prefix > 30 || (host != 0 && host != ~mask4(prefix));
}

/* A unicast address that a guest may hold or route through. */
static bool ip6_unicast(const struct in6_addr *a)
{
        return !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_LOOPBACK(a) &&
               !IN6_IS_ADDR_MULTICAST(a) && !IN6_IS_ADDR_V4MAPPED(a);
}

static bool ip6_same_prefix(const struct in6_addr *a, const struct in6_addr *b, unsigned prefix)
{
        unsigned bytes = prefix / 8, bits = prefix % 8;

        if (memcmp(a->s6_addr, b->s6_addr, bytes) != 0)
                return false;
        return bits == 0 ||
               ((a->s6_addr[bytes] ^ b->s6_addr[bytes]) & (0xff00 >> bits) & 0xff) == 0;
}

static int parse_net_word(const char *w, size_t klen, const char *v, size_t vlen,
                          struct parse_state *st)
{
        struct agent_net_params *net = &st->bp.net;

        if (value_is(w, klen, "msb.ip4")) {
                if (parse_cidr(v, vlen, AF_INET, &net->ip4, &net->prefix4) < 0 ||
                    !ip4_host(net->ip4, net->prefix4))
                        return -EINVAL;
                net->has_ip4 = true;
        } else if (value_is(w, klen, "msb.gw4")) {
                if (parse_addr(v, vlen, AF_INET, &net->gw4) < 0)
                        return -EINVAL;
                net->has_gw4 = true;
                st->gw4 = w;
        } else if (value_is(w, klen, "msb.ip6")) {
                if (parse_cidr(v, vlen, AF_INET6, &net->ip6, &net->prefix6) < 0 ||
                    !ip6_unicast(&net->ip6) || IN6_IS_ADDR_LINKLOCAL(&net->ip6))
                        return -EINVAL;
                net->has_ip6 = true;
        } else if (value_is(w, klen, "msb.gw6")) {
                if (parse_addr(v, vlen, AF_INET6, &net->gw6) < 0)
                        return -EINVAL;
                net->has_gw6 = true;
                st->gw6 = w;
        } else if (value_is(w, klen, "msb.mtu")) {
                if (parse_uint(v, vlen, 68, 65535, &net->mtu) < 0)
                        return -EINVAL;
                st->mtu = w;
        } else if (value_is(w, klen, "msb.dns")) {
                if (parse_dns(v, vlen, net) < 0)
                        return -EINVAL;
        } else if (value_is(w, klen, "msb.hostalias")) {
                if (!name_valid(v, vlen, sizeof(net->hostalias) - 1))
                        return -EINVAL;
                memcpy(net->hostalias, v, vlen);
                net->hostalias[vlen] = '\0';
                st->hostalias = w;
        }
        return 0;
}

/* The checks that need the whole line. Returns the word to blame, or NULL. */
static const char *check_net(const struct parse_state *st)
{
        const struct agent_net_params *net = &st->bp.net;

        if (net->has_gw4 &&
            (!net->has_ip4 || !ip4_host(net->gw4, net->prefix4) ||
             net->gw4.s_addr == net->ip4.s_addr ||
             ((net->gw4.s_addr ^ net->ip4.s_addr) & htonl(mask4(net->prefix4))) != 0))
                return st->gw4;
        if (net->has_gw6 && (!net->has_ip6 || !ip6_unicast(&net->gw6) ||
                             memcmp(&net->gw6, &net->ip6, sizeof(net->gw6)) == 0 ||
                             (!IN6_IS_ADDR_LINKLOCAL(&net->gw6) &&
                              !ip6_same_prefix(&net->gw6, &net->ip6, net->prefix6))))
                return st->gw6;
        if (net->mtu && net->mtu < 1280 && net->has_ip6)
                return st->mtu;
        if (net->hostalias[0] && !net->has_gw4 && !net->has_gw6)
                return st->hostalias;
        return NULL;
}

static int parse_word(const char *w, size_t n, struct parse_state *st)
{
        struct agent_bootparams *bp = &st->bp;
        static const char *const levels[] = {"error", "warn", "info", "debug"};
        const char *eq = memchr(w, '=', n);
        const char *v;
        size_t klen, vlen;

        if (n < 4 || memcmp(w, "msb.", 4) != 0 || !eq)
                return 0;
        klen = (size_t)(eq - w);
        v = eq + 1;
        vlen = n - klen - 1;
        if (value_is(w, klen, "msb.hostname")) {
                if (!name_valid(v, vlen, sizeof(bp->hostname) - 1))
                        return -EINVAL;
                memcpy(bp->hostname, v, vlen);
                bp->hostname[vlen] = '\0';
        } else if (value_is(w, klen, "msb.time")) {
                if (parse_time(v, vlen, &bp->time) < 0)
                        return -EINVAL;
                bp->has_time = true;
        } else if (value_is(w, klen, "msb.root")) {
                if (value_is(v, vlen, "overlay"))
                        bp->root = AGENT_ROOT_OVERLAY;
                else if (value_is(v, vlen, "disk"))
                        bp->root = AGENT_ROOT_DISK;
                else
                        return -EINVAL;
        } else if (value_is(w, klen, "msb.log")) {
                size_t i;

                for (i = 0; i < ARRAY_SIZE(levels); i++)
                        if (value_is(v, vlen, levels[i]))
                                break;
                if (i == ARRAY_SIZE(levels))
                        return -EINVAL;
                bp->log_level = (enum log_level)i;
        } else {
                return parse_net_word(w, klen, v, vlen, st);
        }
        return 0;
}

int agent_bootparams_parse(const char *cmdline, struct agent_bootparams *ret, const char **ret_bad)
{
        struct parse_state st = {.bp = {.root = AGENT_ROOT_OVERLAY, .log_level = LOG_LEVEL_INFO}};
        const char *p = cmdline, *bad;

        for (;;) {
                size_t n;

                while (isspace((unsigned char)*p))
                        p++;
                if (!*p)
                        break;
                for (n = 0; p[n] && !isspace((unsigned char)p[n]); n++)
                        ;
                if (parse_word(p, n, &st) < 0) {
                        if (ret_bad)
                                *ret_bad = p;
                        return -EINVAL;
                }
                p += n;
        }
        bad = check_net(&st);
        if (bad) {
                if (ret_bad)
                        *ret_bad = bad;
                return -EINVAL;
        }
        *ret = st.bp;
        return 0;
}
