/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: everything here happens before QEMU starts, except
 * sv_net_run(), which the supervisor's loop calls when the gateway's own
 * epoll fd is ready. The guest's addresses come from the pool by the
 * sandbox's slot, the gateway's address doubles as the DNS server and the
 * host alias, and the agent learns all of it from msb.* boot parameters.
 */
#include "network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/core/util.h"

#define HOST_ALIAS "host.msb.internal"

struct sv_net {
        struct net_gw *gw;
        struct net_gw_config cfg;
        struct vm_net nic;
        sv_net_log_fn log;
        void *userdata;
        char params[512];
};

static void on_deny(const struct net_deny *d, void *userdata)
{
        struct sv_net *n = userdata;
        char line[512];

        if (n->log && net_deny_format(d, line, sizeof(line)) >= 0)
                n->log(line, n->userdata);
}

static void boot_params(struct sv_net *n)
{
        char g4[INET_ADDRSTRLEN], a4[INET_ADDRSTRLEN], g6[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
        const struct net_gw_config *c = &n->cfg;
        size_t len = 0;

        n->params[0] = '\0';
        if (c->ipv4) {
                inet_ntop(AF_INET, &c->guest4, a4, sizeof(a4));
                inet_ntop(AF_INET, &c->gw4, g4, sizeof(g4));
                len += (size_t)snprintf(n->params + len, sizeof(n->params) - len,
                                        "msb.ip4=%s/%u msb.gw4=%s ", a4, c->prefix4, g4);
        }
        if (c->ipv6) {
                inet_ntop(AF_INET6, &c->guest6, a6, sizeof(a6));
                inet_ntop(AF_INET6, &c->gw6, g6, sizeof(g6));
                len += (size_t)snprintf(n->params + len, sizeof(n->params) - len,
                                        "msb.ip6=%s/%u msb.gw6=%s ", a6, c->prefix6, g6);
        }
        snprintf(n->params + len, sizeof(n->params) - len,
                 "msb.mtu=%u msb.dns=%s%s%s msb.hostalias=" HOST_ALIAS, c->mtu, c->ipv4 ? g4 : "",
                 c->ipv4 && c->ipv6 ? "," : "", c->ipv6 ? g6 : "");
}

int sv_net_new(const struct sbconfig_net *cfg, uint32_t slot, sv_net_log_fn log, void *userdata,
               struct sv_net **ret, char *errmsg, size_t errmsg_size)
{
        struct sv_net *n = calloc(1, sizeof(*n));
        int sv[2] = {-1, -1}, r;

        if (!n)
                return -ENOMEM;
        n->log = log;
        n->userdata = userdata;
        n->nic.fd = -1;
        net_gw_config_init(&n->cfg);
        r = net_pool_assign(NET_POOL4_DEFAULT, NET_POOL6_DEFAULT, slot, &n->cfg);
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "no addresses for slot %u", slot);
                goto fail;
        }
        n->cfg.policy = &cfg->policy;
        n->cfg.dns = cfg->dns;
        n->cfg.n_dns = cfg->n_dns;
        n->cfg.ports = cfg->ports;
        n->cfg.n_ports = cfg->n_ports;
        n->cfg.max_tcp = cfg->max_connections;
        n->cfg.on_deny = on_deny;
        n->cfg.userdata = n;
        r = net_gw_new(&n->cfg, &n->gw);
        if (r < 0) {
                if (r == -EADDRINUSE || r == -EACCES)
                        snprintf(errmsg, errmsg_size, "a published port cannot be bound: %s",
                                 strerror(-r));
                else
                        snprintf(errmsg, errmsg_size, "the network gateway: %s", strerror(-r));
                goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = negative_errno();
                snprintf(errmsg, errmsg_size, "socketpair: %s", strerror(-r));
                goto fail;
        }
        r = net_gw_attach(n->gw, sv[0], NET_LINK_STREAM);
        if (r < 0) {
                safe_close(sv[0]);
                safe_close(sv[1]);
                snprintf(errmsg, errmsg_size, "the network gateway: %s", strerror(-r));
                goto fail;
        }
        n->nic.fd = sv[1];
        n->nic.mtu = n->cfg.mtu;
        memcpy(n->nic.mac, n->cfg.guest_mac, sizeof(n->nic.mac));
        boot_params(n);
        *ret = n;
        return 0;
fail:
        sv_net_free(n);
        return r;
}

struct sv_net *sv_net_free(struct sv_net *n)
{
        if (!n)
                return NULL;
        net_gw_free(n->gw);
        safe_close(n->nic.fd);
        free(n);
        return NULL;
}

const struct vm_net *sv_net_nic(const struct sv_net *n)
{
        return &n->nic;
}

void sv_net_nic_handed_over(struct sv_net *n)
{
        n->nic.fd = safe_close(n->nic.fd);
}

const char *sv_net_boot_params(const struct sv_net *n)
{
        return n->params;
}

int sv_net_fd(const struct sv_net *n)
{
        return net_gw_fd(n->gw);
}

void sv_net_run(struct sv_net *n)
{
        int r = net_gw_run(n->gw);

        if (r < 0 && r != -EPIPE)
                log_warn("network gateway: %s", strerror(-r));
}

void sv_net_write_status(const struct sv_net *n, struct json_writer *w)
{
        char a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "";
        struct net_gw_stats st;

        net_gw_get_stats(n->gw, &st);
        if (n->cfg.ipv4)
                inet_ntop(AF_INET, &n->cfg.guest4, a4, sizeof(a4));
        if (n->cfg.ipv6)
                inet_ntop(AF_INET6, &n->cfg.guest6, a6, sizeof(a6));
        json_begin_object(w);
        json_kv_string(w, "ipv4", *a4 ? a4 : NULL);
        json_kv_string(w, "ipv6", *a6 ? a6 : NULL);
        json_kv_uint(w, "bytes_to_host", st.bytes_to_host);
        json_kv_uint(w, "bytes_from_host", st.bytes_from_host);
        json_kv_uint(w, "tcp_active", st.tcp_active);
        json_kv_uint(w, "tcp_opened", st.tcp_opened);
        json_kv_uint(w, "udp_opened", st.udp_opened);
        json_kv_uint(w, "denied_egress", st.denied_egress);
        json_kv_uint(w, "denied_ingress", st.denied_ingress);
        json_kv_uint(w, "dns_queries", st.dns_queries);
        json_kv_uint(w, "dns_denied", st.dns_denied);
        json_end_object(w);
}
