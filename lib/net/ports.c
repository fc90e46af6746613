/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: published ports. Each "-p [BIND:]HOST:GUEST[/udp]"
 * becomes a host listener opened when the gateway is created (so that a
 * port already in use fails the start, not the first connection). A TCP
 * connection accepted there is handed to the TCP translator, which opens it
 * into the guest; UDP datagrams are handed to the UDP module, which keeps a
 * flow per host-side client. The ingress policy is asked for each new
 * connection or client.
 */
#include "net-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/core/util.h"

static int parse_port(const char *s, size_t n, uint16_t *ret)
{
        char buf[8];
        uint64_t v;

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (parse_u64(buf, &v) < 0 || v < 1 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

int net_port_parse(const char *text, struct net_port *ret)
{
        struct net_port p = {.proto = NET_PROTO_TCP};
        const char *s = text, *end, *slash, *colon;
        struct in_addr lo = {htonl(INADDR_LOOPBACK)};

        if (!text || !*text)
                return -EINVAL;
        end = text + strlen(text);
        slash = strchr(text, '/');
        if (slash) {
                if (streq(slash, "/udp"))
                        p.proto = NET_PROTO_UDP;
                else if (!streq(slash, "/tcp"))
                        return -EINVAL;
                end = slash;
        }
        net_addr_from_v4(&p.bind, &lo);
        if (*s == '[') {
                const char *close = memchr(s, ']', (size_t)(end - s));
                char addr[INET6_ADDRSTRLEN];

                if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(addr))
                        return -EINVAL;
                memcpy(addr, s + 1, (size_t)(close - s - 1));
                addr[close - s - 1] = '\0';
                if (inet_pton(AF_INET6, addr, &p.bind) != 1)
                        return -EINVAL;
                s = close + 2;
        } else {
                const char *c1 = memchr(s, ':', (size_t)(end - s));
                const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;

                if (c2) {
                        char addr[INET_ADDRSTRLEN];
                        struct in_addr a;

                        if ((size_t)(c1 - s) >= sizeof(addr))
                                return -EINVAL;
                        memcpy(addr, s, (size_t)(c1 - s));
                        addr[c1 - s] = '\0';
                        if (inet_pton(AF_INET, addr, &a) != 1)
                                return -EINVAL;
                        net_addr_from_v4(&p.bind, &a);
                        s = c1 + 1;
                }
        }
        colon = memchr(s, ':', (size_t)(end - s));
        if (!colon || parse_port(s, (size_t)(colon - s), &p.host_port) < 0 ||
            parse_port(colon + 1, (size_t)(end - colon - 1), &p.guest_port) < 0)
                return -EINVAL;
        *ret = p;
        return 0;
}

int net_port_format(const struct net_port *p, char *buf, size_t size)
{
        char a[INET6_ADDRSTRLEN];

        net_addr_str(&p->bind, a, sizeof(a));
        return snprintf(buf, size, net_addr_is_v4(&p->bind) ? "%s:%u:%u/%s" : "[%s]:%u:%u/%s", a,
                        p->host_port, p->guest_port, p->proto == NET_PROTO_UDP ? "udp" : "tcp");
}

int net_ports_open(struct net_gw *gw)
{
        for (size_t i = 0; i < gw->n_listeners; i++) {
                struct listener *l = &gw->listeners[i];
                bool udp = l->port.proto == NET_PROTO_UDP;
                struct sockaddr_storage sa;
                socklen_t sl = net_sockaddr(&l->port.bind, l->port.host_port, &sa);
                int one = 1, r;

                if (l->port.proto != NET_PROTO_TCP && !udp)
                        return -EINVAL;
                l->fd = socket(sa.ss_family,
                               (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (l->fd < 0)
                        return negative_errno();
                setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (sa.ss_family == AF_INET6)
                        setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
                if (bind(l->fd, (struct sockaddr *)&sa, sl) < 0)
                        return negative_errno();
                if (!udp && listen(l->fd, 128) < 0)
                        return negative_errno();
                r = net_inner_add(gw, l->fd, EPOLLIN, ep_ref(EP_LISTEN, (uint32_t)i, 0));
                if (r < 0)
                        return r;
        }
        return 0;
}

void net_ports_close(struct net_gw *gw)
{
        for (size_t i = 0; i < gw->n_listeners; i++)
                gw->listeners[i].fd = safe_close(gw->listeners[i].fd);
}

void net_listen_event(struct net_gw *gw, uint32_t idx)
{
        struct listener *l;

        if (idx >= gw->n_listeners)
                return;
        l = &gw->listeners[idx];
        if (l->port.proto == NET_PROTO_UDP) {
                net_udp_inbound(gw, l, idx);
                return;
        }
        for (int i = 0; i < 16; i++) {
                struct sockaddr_storage peer;
                socklen_t pl = sizeof(peer);
                int fd;

                memset(&peer, 0, sizeof(peer));
                fd = accept4(l->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        return;
                /* Without a guest on the link the connection cannot open. */
                if (gw->link_fd < 0 || gw->link_dead) {
                        close(fd);
                        continue;
                }
                net_tcp_inbound(gw, fd, &l->port, &peer);
        }
}
