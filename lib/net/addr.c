/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the addresses a sandbox gets, and the addresses the
 * host has.
 *
 * net_pool_assign() carves slot N's /30 and /64 out of the pools. Only that
 * /30 is on-link in the guest, so even a pool that overlaps a network the
 * guest wants to reach hides at most two of its addresses.
 *
 * The host's own addresses make up the policy group "host": every address
 * of every interface (getifaddrs), plus the gateway's. They are re-read
 * whenever the kernel announces an address change on a netlink socket
 * (RTMGRP_IPV4_IFADDR / RTMGRP_IPV6_IFADDR) that sits in the gateway's
 * epoll set. The table is capped; past the cap the rest are not listed,
 * which a log line reports.
 */
#include "net-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/core/log.h"
#include "lib/core/util.h"

static int parse_pool(const char *s, bool v6, struct in6_addr *net, unsigned *prefix)
{
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash = strchr(s, '/');
        uint64_t p;

        if (!slash || (size_t)(slash - s) >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, (size_t)(slash - s));
        buf[slash - s] = '\0';
        if (parse_u64(slash + 1, &p) < 0)
                return -EINVAL;
        if (v6) {
                if (inet_pton(AF_INET6, buf, net) != 1 || p > 64)
                        return -EINVAL;
        } else {
                struct in_addr a;
                if (inet_pton(AF_INET, buf, &a) != 1 || p > 30)
                        return -EINVAL;
                net_addr_from_v4(net, &a);
        }
        *prefix = (unsigned)p;
        return 0;
}

int net_pool_assign(const char *pool4, const char *pool6, uint32_t slot, struct net_gw_config *c)
{
        struct in6_addr n4, n6;
        unsigned p4, p6;
        uint32_t base, s4;
        uint64_t s6, hi;
        int r;

        if (!pool4)
                return -EINVAL;
        r = parse_pool(pool4, false, &n4, &p4);
        if (r < 0)
                return r;
        if (pool6 && (r = parse_pool(pool6, true, &n6, &p6)) < 0)
                return r;

        /* IPv4: the slot's /30; host bits of the pool's network ignored. */
        memcpy(&base, &n4.s6_addr[12], 4);
        base = ntohl(base) & (p4 ? ~0u << (32 - p4) : 0);
        s4 = p4 == 30 ? 0 : slot % (1u << (30 - p4));
        base += s4 * 4;
        c->ipv4 = true;
        c->gw4.s_addr = htonl(base + 1);
        c->guest4.s_addr = htonl(base + 2);
        c->prefix4 = 30;

        c->ipv6 = pool6 != NULL;
        if (pool6) {
                memcpy(&hi, &n6.s6_addr[0], 8);
                hi = be64toh(hi) & (p6 ? ~0ull << (64 - p6) : 0);
                s6 = p6 == 64 ? 0 : slot % (1ull << MIN(64 - p6, 32u));
                hi = htobe64(hi + s6);
                memset(&c->gw6, 0, sizeof(c->gw6));
                memcpy(&c->gw6.s6_addr[0], &hi, 8);
                c->guest6 = c->gw6;
                c->gw6.s6_addr[15] = 1;
                c->guest6.s6_addr[15] = 2;
                c->prefix6 = 64;
        }

        {
                const uint8_t mac[6] = {0x02, 0x6d, 0x73, (uint8_t)(slot >> 8), (uint8_t)slot, 0};
                memcpy(c->gw_mac, mac, 6);
                memcpy(c->guest_mac, mac, 6);
                c->gw_mac[5] = 1;
                c->guest_mac[5] = 2;
        }
        return 0;
}

/* ------------------------------------------------------------------------ */
/* The host's addresses                                                     */
/* ------------------------------------------------------------------------ */

int net_hostaddrs_load(struct net_hostaddrs *h)
{
        struct ifaddrs *ifa = NULL;
        size_t n = 0;

        if (getifaddrs(&ifa) < 0)
                return negative_errno();
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                struct in6_addr a;

                if (!i->ifa_addr)
                        continue;
                if (i->ifa_addr->sa_family == AF_INET)
                        net_addr_from_v4(&a, &((struct sockaddr_in *)i->ifa_addr)->sin_addr);
                else if (i->ifa_addr->sa_family == AF_INET6)
                        a = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
                else
                        continue;
                if (n == NET_HOSTADDRS_MAX) {
                        log_warn("net: the host has more than %d addresses; the rest are not "
                                 "in group host",
                                 NET_HOSTADDRS_MAX);
                        break;
                }
                h->a[n++] = a;
        }
        freeifaddrs(ifa);
        h->n = n;
        return 0;
}

bool net_hostaddrs_has(const struct net_hostaddrs *h, const struct in6_addr *a)
{
        for (size_t i = 0; i < h->n; i++)
                if (IN6_ARE_ADDR_EQUAL(&h->a[i], a))
                        return true;
        return false;
}

int net_hostaddrs_monitor_open(void)
{
        struct sockaddr_nl sa = {
                .nl_family = AF_NETLINK,
                .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
        };
        _cleanup_close_ int fd = -1;

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
        if (fd < 0)
                return negative_errno();
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

bool net_hostaddrs_monitor_drain(int fd)
{
        char buf[8192];
        bool changed = false;

        /* The content does not matter: any address message (or a lost one,
         * ENOBUFS) means the table is re-read. */
        for (int i = 0; i < 64; i++) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && errno == ENOBUFS) {
                        changed = true;
                        continue;
                }
                if (n <= 0)
                        break;
                changed = true;
        }
        return changed;
}

int net_nameserver_parse(const char *text, struct sockaddr_in6 *ret)
{
        struct sockaddr_in6 s = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
        char addr[INET6_ADDRSTRLEN];
        const char *port = NULL, *end;
        struct in_addr v4;
        uint64_t p;

        if (!text || !*text)
                return -EINVAL;
        if (text[0] == '[') {
                end = strchr(text, ']');
                if (!end || (end[1] != '\0' && end[1] != ':'))
                        return -EINVAL;
                if (end[1] == ':')
                        port = end + 2;
                text++;
        } else {
                end = strchr(text, ':');
                /* one colon: IPv4:PORT; more: a bare IPv6 address */
                if (end && strchr(end + 1, ':'))
                        end = text + strlen(text);
                else if (end)
                        port = end + 1;
                else
                        end = text + strlen(text);
        }
        if ((size_t)(end - text) >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, text, (size_t)(end - text));
        addr[end - text] = '\0';
        if (inet_pton(AF_INET, addr, &v4) == 1)
                net_addr_from_v4(&s.sin6_addr, &v4);
        else if (inet_pton(AF_INET6, addr, &s.sin6_addr) != 1)
                return -EINVAL;
        if (port) {
                if (parse_u64(port, &p) < 0 || p == 0 || p > 65535)
                        return -EINVAL;
                s.sin6_port = htons((uint16_t)p);
        }
        *ret = s;
        return 0;
}
