/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net-harness: the gateway serving a TAP device instead of a VM, so that a
 * network namespace plays the guest and the host kernel's TCP/IP is the
 * peer of everything the gateway does.
 *
 *   net-harness --guest-ns NAME --tap NAME [options]
 *
 * The TAP device is created inside the guest namespace (whose name is
 * under /run/netns); the gateway runs in the namespace the harness was
 * started in (the "host"). With --link stream (the default) or dgram,
 * frames are shuttled between the TAP fd and a socketpair exactly as QEMU's
 * -netdev stream / dgram would send them; the shuttle can drop every Nth
 * frame (--drop-every) and can be paused (SIGUSR2 toggles: the "guest"
 * stops reading, as a guest that never drains its queue). With --link tap
 * the gateway reads the TAP fd itself (for benchmarks).
 *
 * It prints "ready" on stdout once the TAP device exists and the gateway is
 * attached; denials go to stderr as "denied ..." lines. SIGUSR1 writes the
 * counters to the --stats file as "name value" lines; SIGTERM writes them
 * and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/core/util.h"
#include "lib/net/net.h"
#include "lib/net/packet.h"

#define MAX_LIST 64

static struct {
        const char *guest_ns, *tap, *stats;
        enum { LINK_STREAM, LINK_DGRAM, LINK_TAP } link;
        unsigned drop_every;
        const char *profile;
        const char *rules[MAX_LIST];
        size_t n_rules;
        int default_egress; /* -1: the profile's */
        struct sockaddr_in6 dns[MAX_LIST];
        size_t n_dns;
        struct net_port ports[MAX_LIST];
        size_t n_ports;
        struct net_gw_config cfg;
        const char *pool4, *pool6;
        uint32_t slot;
} opt = {.link = LINK_STREAM, .profile = "public", .default_egress = -1};

static atomic_bool paused;
static atomic_uint frame_count;
static int tap_fd = -1, sock_fd = -1;

static _noreturn_ void die(const char *what, int err)
{
        fprintf(stderr, "net-harness: %s: %s\n", what, strerror(err));
        exit(1);
}

static int open_tap_in(const char *ns, const char *name)
{
        _cleanup_close_ int self = -1, target = -1;
        char path[256];
        struct ifreq ifr = {0};
        int fd;

        self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof(path), "/run/netns/%s", ns);
        target = open(path, O_RDONLY | O_CLOEXEC);
        if (self < 0 || target < 0)
                die(path, errno);
        if (setns(target, CLONE_NEWNET) < 0)
                die("setns", errno);
        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                die("/dev/net/tun", errno);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                die("TUNSETIFF", errno);
        if (setns(self, CLONE_NEWNET) < 0)
                die("setns back", errno);
        return fd;
}

static bool drop_this(void)
{
        unsigned n = atomic_fetch_add(&frame_count, 1) + 1;

        return opt.drop_every && n % opt.drop_every == 0;
}

/* TAP -> socket: what the guest sends. */
static void *shuttle_out(void *arg)
{
        static uint8_t buf[4 + 65536 + 64];

        for (;;) {
                ssize_t n = read(tap_fd, buf + 4, sizeof(buf) - 4);

                if (n <= 0) {
                        if (n < 0 && errno == EINTR)
                                continue;
                        return NULL;
                }
                if (drop_this())
                        continue;
                if (opt.link == LINK_STREAM) {
                        buf[0] = (uint8_t)(n >> 24);
                        buf[1] = (uint8_t)(n >> 16);
                        buf[2] = (uint8_t)(n >> 8);
                        buf[3] = (uint8_t)n;
                        if (write_all(sock_fd, buf, (size_t)n + 4) < 0)
                                return NULL;
                } else if (write(sock_fd, buf + 4, (size_t)n) < 0 && errno != ENOBUFS) {
                        return NULL;
                }
        }
}

/* socket -> TAP: what the gateway sends; stops while paused. */
static void *shuttle_in(void *arg)
{
        static uint8_t buf[4 + 65536 + 64];

        for (;;) {
                ssize_t n;

                while (atomic_load(&paused))
                        usleep(10000);
                if (opt.link == LINK_STREAM) {
                        uint32_t len;
                        if (read_full(sock_fd, buf, 4) != 4)
                                return NULL;
                        len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
                              (uint32_t)buf[2] << 8 | buf[3];
                        if (len > sizeof(buf) - 4)
                                return NULL;
                        if (read_full(sock_fd, buf + 4, len) != (ssize_t)len)
                                return NULL;
                        n = len;
                } else {
                        n = read(sock_fd, buf + 4, sizeof(buf) - 4);
                        if (n <= 0)
                                return NULL;
                }
                if (drop_this())
                        continue;
                if (write(tap_fd, buf + 4, (size_t)n) < 0 && errno != EIO)
                        return NULL;
        }
}

static void on_deny(const struct net_deny *d, void *userdata)
{
        char line[600];

        net_deny_format(d, line, sizeof(line));
        fprintf(stderr, "%s\n", line);
}

static void write_stats(struct net_gw *gw)
{
        struct net_gw_stats s;
        FILE *f;

        if (!opt.stats)
                return;
        net_gw_get_stats(gw, &s);
        f = fopen(opt.stats, "we");
        if (!f)
                return;
#define S(x) fprintf(f, #x " %llu\n", (unsigned long long)s.x)
        S(rx_frames);
        S(rx_bytes);
        S(tx_frames);
        S(tx_bytes);
        S(rx_malformed);
        S(rx_unsupported);
        S(rx_fragments);
        S(tx_dropped);
        S(tcp_active);
        S(udp_active);
        S(icmp_active);
        S(tcp_opened);
        S(udp_opened);
        S(icmp_opened);
        S(tcp_limit_rst);
        S(tcp_retransmits);
        S(tcp_held);
        S(tcp_host_full);
        S(tcp_ooo);
        S(udp_evicted);
        S(icmp_errors);
        S(bytes_to_host);
        S(bytes_from_host);
        S(denied_egress);
        S(denied_ingress);
        S(dns_queries);
        S(dns_denied);
        S(dns_rebind_blocked);
        S(dns_timeouts);
        S(dns_truncated);
#undef S
        fprintf(f, "paused %d\n", atomic_load(&paused) ? 1 : 0);
        fclose(f);
}

static void parse_dns(const char *s)
{
        struct sockaddr_in6 *d = &opt.dns[opt.n_dns++];
        char addr[INET6_ADDRSTRLEN + 8];
        const char *port = NULL;
        struct in_addr v4;

        *d = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(53)};
        snprintf(addr, sizeof(addr), "%s", s);
        if (addr[0] == '[') {
                char *close = strchr(addr, ']');
                if (!close)
                        die("--dns", EINVAL);
                *close = '\0';
                if (close[1] == ':')
                        port = close + 2;
                memmove(addr, addr + 1, strlen(addr));
        } else if (strchr(addr, ':') == strrchr(addr, ':') && strchr(addr, ':')) {
                char *c = strchr(addr, ':');
                *c = '\0';
                port = c + 1;
        }
        if (port)
                d->sin6_port = htons((uint16_t)atoi(port));
        if (inet_pton(AF_INET, addr, &v4) == 1)
                net_addr_from_v4(&d->sin6_addr, &v4);
        else if (inet_pton(AF_INET6, addr, &d->sin6_addr) != 1)
                die("--dns", EINVAL);
}

static void parse_args(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"guest-ns", required_argument, NULL, 'g'},
                {"tap", required_argument, NULL, 't'},
                {"link", required_argument, NULL, 'l'},
                {"drop-every", required_argument, NULL, 'D'},
                {"net", required_argument, NULL, 'n'},
                {"rule", required_argument, NULL, 'r'},
                {"default-egress", required_argument, NULL, 'e'},
                {"dns", required_argument, NULL, 'd'},
                {"publish", required_argument, NULL, 'p'},
                {"max-tcp", required_argument, NULL, 'T'},
                {"max-udp", required_argument, NULL, 'U'},
                {"connect-timeout", required_argument, NULL, 'C'},
                {"dns-timeout", required_argument, NULL, 'Q'},
                {"mtu", required_argument, NULL, 'm'},
                {"pool4", required_argument, NULL, '4'},
                {"pool6", required_argument, NULL, '6'},
                {"slot", required_argument, NULL, 's'},
                {"stats", required_argument, NULL, 'S'},
                {NULL, 0, NULL, 0},
        };
        int c;

        net_gw_config_init(&opt.cfg);
        opt.pool4 = NET_POOL4_DEFAULT;
        opt.pool6 = NET_POOL6_DEFAULT;
        while ((c = getopt_long(argc, argv, "p:", longopts, NULL)) != -1) {
                switch (c) {
                case 'g':
                        opt.guest_ns = optarg;
                        break;
                case 't':
                        opt.tap = optarg;
                        break;
                case 'l':
                        opt.link = streq(optarg, "tap")     ? LINK_TAP
                                   : streq(optarg, "dgram") ? LINK_DGRAM
                                                            : LINK_STREAM;
                        break;
                case 'D':
                        opt.drop_every = (unsigned)atoi(optarg);
                        break;
                case 'n':
                        opt.profile = optarg;
                        break;
                case 'r':
                        if (opt.n_rules < MAX_LIST)
                                opt.rules[opt.n_rules++] = optarg;
                        break;
                case 'e':
                        opt.default_egress = streq(optarg, "allow");
                        break;
                case 'd':
                        if (opt.n_dns < MAX_LIST)
                                parse_dns(optarg);
                        break;
                case 'p':
                        if (opt.n_ports < MAX_LIST &&
                            net_port_parse(optarg, &opt.ports[opt.n_ports++]) < 0)
                                die(optarg, EINVAL);
                        break;
                case 'T':
                        opt.cfg.max_tcp = (uint32_t)atoi(optarg);
                        break;
                case 'U':
                        opt.cfg.max_udp = (uint32_t)atoi(optarg);
                        break;
                case 'C':
                        opt.cfg.tcp_connect_timeout_ms = (uint32_t)atoi(optarg);
                        break;
                case 'Q':
                        opt.cfg.dns_timeout_ms = (uint32_t)atoi(optarg);
                        break;
                case 'm':
                        opt.cfg.mtu = (uint32_t)atoi(optarg);
                        break;
                case '4':
                        opt.pool4 = optarg;
                        break;
                case '6':
                        opt.pool6 = optarg;
                        break;
                case 's':
                        opt.slot = (uint32_t)atoi(optarg);
                        break;
                case 'S':
                        opt.stats = optarg;
                        break;
                default:
                        exit(2);
                }
        }
        if (!opt.guest_ns || !opt.tap) {
                fprintf(stderr, "usage: net-harness --guest-ns NAME --tap NAME [options]\n");
                exit(2);
        }
}

int main(int argc, char **argv)
{
        _cleanup_(net_gw_freep) struct net_gw *gw = NULL;
        struct net_policy policy;
        struct epoll_event ev;
        pthread_t t1, t2;
        sigset_t mask;
        int ep, sfd, r;

        parse_args(argc, argv);
        /* Blocked in every thread (the shuttles inherit it); read by signalfd. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        r = net_pool_assign(opt.pool4, streq(opt.pool6, "none") ? NULL : opt.pool6, opt.slot,
                            &opt.cfg);
        if (r < 0)
                die("address pool", -r);
        r = net_policy_from_profile(opt.profile, &policy);
        if (r < 0)
                die("--net", -r);
        for (size_t i = 0; i < opt.n_rules; i++) {
                struct net_rule rule;
                if (net_policy_parse_rule(opt.rules[i], &rule) < 0)
                        die(opt.rules[i], EINVAL);
                if (net_policy_add_rule(&policy, &rule) < 0)
                        die("rule", ENOMEM);
        }
        if (opt.default_egress >= 0)
                policy.default_egress = opt.default_egress ? NET_ALLOW : NET_DENY;
        opt.cfg.policy = &policy;
        opt.cfg.dns = opt.dns;
        opt.cfg.n_dns = opt.n_dns;
        opt.cfg.ports = opt.ports;
        opt.cfg.n_ports = opt.n_ports;
        opt.cfg.on_deny = on_deny;

        tap_fd = open_tap_in(opt.guest_ns, opt.tap);
        r = net_gw_new(&opt.cfg, &gw);
        if (r < 0)
                die("net_gw_new", -r);
        net_policy_done(&policy);

        if (opt.link == LINK_TAP) {
                r = net_gw_attach(gw, tap_fd, NET_LINK_DGRAM);
        } else {
                int sv[2];
                int type = opt.link == LINK_STREAM ? SOCK_STREAM : SOCK_DGRAM;
                int size = 4 * 1024 * 1024;

                if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
                        die("socketpair", errno);
                setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
                setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
                sock_fd = sv[1];
                r = net_gw_attach(gw, sv[0],
                                  opt.link == LINK_STREAM ? NET_LINK_STREAM : NET_LINK_DGRAM);
                if (r == 0 && (pthread_create(&t1, NULL, shuttle_out, NULL) != 0 ||
                               pthread_create(&t2, NULL, shuttle_in, NULL) != 0))
                        die("pthread_create", EAGAIN);
        }
        if (r < 0)
                die("net_gw_attach", -r);

        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        ep = epoll_create1(EPOLL_CLOEXEC);
        ev = (struct epoll_event){.events = EPOLLIN, .data.fd = net_gw_fd(gw)};
        epoll_ctl(ep, EPOLL_CTL_ADD, net_gw_fd(gw), &ev);
        ev = (struct epoll_event){.events = EPOLLIN, .data.fd = sfd};
        epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
        printf("ready\n");
        fflush(stdout);

        for (;;) {
                struct epoll_event got[4];
                int n = epoll_wait(ep, got, 4, -1);

                for (int i = 0; i < n; i++) {
                        if (got[i].data.fd == sfd) {
                                struct signalfd_siginfo si;
                                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                                        continue;
                                if (si.ssi_signo == SIGUSR1) {
                                        write_stats(gw);
                                } else if (si.ssi_signo == SIGUSR2) {
                                        atomic_store(&paused, !atomic_load(&paused));
                                } else {
                                        write_stats(gw);
                                        /* Freed, so that sanitizer builds check
                                         * the teardown too. */
                                        gw = net_gw_free(gw);
                                        exit(0);
                                }
                                continue;
                        }
                        if (net_gw_run(gw) == -EPIPE) {
                                fprintf(stderr, "net-harness: frame socket closed\n");
                                write_stats(gw);
                                _exit(1);
                        }
                }
        }
}
