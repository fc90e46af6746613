/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the guest's network, from the msb.* boot parameters,
 * in as few system calls as we can (PID 1 runs this under TCG, where each
 * one is slow).
 *
 * Kernel side, over one rtnetlink socket:
 *   1. one RTM_GETLINK dump finds the NIC: the Ethernet interface with the
 *      lowest index (the first registered; virtio-net's eth0). lo is not
 *      Ethernet, nor are the tunnels the kernel creates on its own (sit0);
 *      the dump also names the interface, for the sysctl below and errors.
 *   2. with IPv6, accept_dad=0 on the NIC before it goes up, so that neither
 *      the link-local nor our address ever sits "tentative" (anchor #948:
 *      a tentative address cannot be used as a source); accept_ra is left
 *      as it is, so the gateway's router advertisements still apply.
 *   3. one send() carries every request, which the kernel runs in order:
 *      lo up; the NIC's MTU and up (the IPv4 prefix route needs the link up
 *      when the address comes); the IPv4 address; the IPv6 address with
 *      IFA_F_NODAD; the default routes via gw4 and gw6 (set explicitly, the
 *      RA's route does not have to come first). Only the last request asks
 *      for an acknowledgement: a failed one answers with an error anyway,
 *      so one recv() normally ends it all. With NETLINK_EXT_ACK, errors
 *      carry the kernel's own explanation, which goes into the message.
 * Without an address or MTU parameter only lo comes up (--no-net).
 *
 * musl ships no <linux/...> headers, so the few rtnetlink structures and
 * numbers are defined below; they are the kernel's user ABI
 * (include/uapi/linux/{netlink,rtnetlink,if_link,if_addr}.h), stable by the
 * kernel's rules. The dump is parsed with bounds checks all the same.
 *
 * Files: /etc/hosts gets the host name line (unless the image names the
 * host already) and "GATEWAY ALIAS" lines; lines that map only the alias
 * are ours, from an earlier boot of the same upper disk, and are replaced,
 * since a restarted sandbox may have other addresses. /etc/resolv.conf is
 * ours whole. Files are read without following links or blocking (an image
 * may hold a link or a FIFO there), rewritten only when they change, and
 * replaced by rename, which also turns a resolv.conf symlink (into
 * /run/systemd/resolve, say) into a file.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/util.h"

/* ---- rtnetlink: kernel user ABI ---- */

struct nl_msghdr {
        uint32_t len;
        uint16_t type;
        uint16_t flags;
        uint32_t seq;
        uint32_t pid;
};

struct nl_msgerr {
        int32_t error; /* -errno, 0 for an acknowledgement */
        struct nl_msghdr msg;
};

struct nl_attr {
        uint16_t len;
        uint16_t type;
};

struct nl_ifinfomsg {
        uint8_t family;
        uint8_t pad;
        uint16_t type; /* ARPHRD_* */
        int32_t index;
        uint32_t flags; /* IFF_* */
        uint32_t change;
};

struct nl_ifaddrmsg {
        uint8_t family;
        uint8_t prefixlen;
        uint8_t flags; /* IFA_F_*, the low 8 bits */
        uint8_t scope;
        uint32_t index;
};

struct nl_rtmsg {
        uint8_t family;
        uint8_t dst_len;
        uint8_t src_len;
        uint8_t tos;
        uint8_t table;
        uint8_t protocol;
        uint8_t scope;
        uint8_t type;
        uint32_t flags;
};

enum {
        NL_NETLINK_ROUTE = 0,
        NL_SOL_NETLINK = 270,
        NL_NETLINK_EXT_ACK = 11,

        NL_NLMSG_ERROR = 2,
        NL_NLMSG_DONE = 3,
        NL_F_REQUEST = 0x1,
        NL_F_ACK = 0x4,
        NL_F_DUMP = 0x300,
        NL_F_REPLACE = 0x100,
        NL_F_EXCL = 0x200,
        NL_F_CREATE = 0x400,
        NL_F_CAPPED = 0x100,   /* in an error: the request was not echoed */
        NL_F_ACK_TLVS = 0x200, /* in an error: extended ack attributes follow */
        NL_ERR_ATTR_MSG = 1,

        NL_RTM_GETLINK = 18,
        NL_RTM_SETLINK = 19,
        NL_RTM_NEWLINK = 16,
        NL_RTM_NEWADDR = 20,
        NL_RTM_NEWROUTE = 24,
        NL_IFLA_IFNAME = 3,
        NL_IFLA_MTU = 4,
        NL_IFA_ADDRESS = 1,
        NL_IFA_LOCAL = 2,
        NL_IFA_F_NODAD = 0x02,
        NL_RTA_OIF = 4,
        NL_RTA_GATEWAY = 5,
        NL_RT_TABLE_MAIN = 254,
        NL_RTPROT_BOOT = 3,
        NL_RT_SCOPE_UNIVERSE = 0,
        NL_RTN_UNICAST = 1,

        NL_LOOPBACK_IFINDEX = 1, /* the kernel gives lo index 1 in every namespace */
};

#define NL_ALIGN(n)  (((n) + 3u) & ~(size_t)3u)
#define NL_HDRLEN    NL_ALIGN(sizeof(struct nl_msghdr))
#define NL_RECV_SIZE 32768 /* the kernel's largest dump message */
#define SEQ_DUMP     1
#define SEQ_BATCH    2 /* the batch's requests: SEQ_BATCH + i */
#define BATCH_MAX    6 /* lo, the NIC, two addresses, two routes */

/* The batch of requests, and what each one does (for errors). */
struct nl_batch {
        uint8_t buf[1024];
        size_t len;
        size_t msg; /* offset of the message being built */
        bool overflow;
        unsigned n;
        char what[BATCH_MAX][96];
};

static void nl_put(struct nl_batch *b, const void *data, size_t len)
{
        if (b->overflow || NL_ALIGN(len) > sizeof(b->buf) - b->len) {
                b->overflow = true;
                return;
        }
        memcpy(b->buf + b->len, data, len);
        memset(b->buf + b->len + len, 0, NL_ALIGN(len) - len);
        b->len += NL_ALIGN(len);
}

/* The current message's length: everything since its header, padding
 * included. */
static void nl_set_len(struct nl_batch *b)
{
        uint32_t len = (uint32_t)(b->len - b->msg);

        if (!b->overflow)
                memcpy(b->buf + b->msg + offsetof(struct nl_msghdr, len), &len, sizeof(len));
}

_printf_(6, 7) static void nl_begin(struct nl_batch *b, uint16_t type, uint16_t flags,
                                    const void *body, size_t body_len, const char *fmt, ...)
{
        struct nl_msghdr h = {.type = type, .flags = NL_F_REQUEST | flags, .seq = SEQ_BATCH + b->n};
        va_list ap;

        if (b->n == BATCH_MAX) {
                b->overflow = true;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(b->what[b->n++], sizeof(b->what[0]), fmt, ap);
        va_end(ap);
        b->msg = b->len;
        nl_put(b, &h, sizeof(h));
        nl_put(b, body, body_len);
        nl_set_len(b);
}

/* An attribute's own length leaves out its padding; the message's counts it. */
static void nl_attr(struct nl_batch *b, uint16_t type, const void *data, size_t len)
{
        struct nl_attr a = {.len = (uint16_t)(sizeof(a) + len), .type = type};

        nl_put(b, &a, sizeof(a));
        nl_put(b, data, len);
        nl_set_len(b);
}

/* Only the last request asks for an acknowledgement. */
static void nl_end(struct nl_batch *b)
{
        uint16_t flags;
        size_t at = b->msg + offsetof(struct nl_msghdr, flags);

        if (b->overflow || b->n == 0)
                return;
        memcpy(&flags, b->buf + at, sizeof(flags));
        flags |= NL_F_ACK;
        memcpy(b->buf + at, &flags, sizeof(flags));
}

/* Receives one datagram. -EMSGSIZE if it did not fit. */
static ssize_t nl_recv(int fd, void *buf, size_t size)
{
        ssize_t n;

        do
                n = recv(fd, buf, size, MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        if ((size_t)n > size)
                return -EMSGSIZE;
        return n;
}

/* The next message of a datagram, or NULL at its end (or a malformed one). */
static const struct nl_msghdr *nl_next(const uint8_t *buf, size_t len, size_t *off)
{
        const struct nl_msghdr *h;

        if (len - *off < sizeof(*h))
                return NULL;
        h = (const struct nl_msghdr *)(const void *)(buf + *off);
        if (h->len < sizeof(*h) || h->len > len - *off)
                return NULL;
        *off += MIN(NL_ALIGN(h->len), len - *off);
        return h;
}

/* The attribute of the given type among [p, p+len), or NULL. */
static const struct nl_attr *nl_find_attr(const uint8_t *p, size_t len, uint16_t type,
                                          size_t *ret_len)
{
        for (size_t off = 0; len - off >= sizeof(struct nl_attr);) {
                const struct nl_attr *a = (const struct nl_attr *)(const void *)(p + off);

                if (a->len < sizeof(*a) || a->len > len - off)
                        return NULL;
                if (a->type == type) {
                        *ret_len = a->len - sizeof(*a);
                        return a;
                }
                off += MIN(NL_ALIGN(a->len), len - off);
        }
        return NULL;
}

struct nic {
        int index;
        char name[IFNAMSIZ];
};

/* Keeps the Ethernet interface with the lowest index. */
static void nic_consider(const struct nl_msghdr *h, struct nic *best)
{
        const struct nl_ifinfomsg *ifi = (const void *)((const uint8_t *)h + NL_HDRLEN);
        size_t attrs_len, name_len;
        const struct nl_attr *name;

        if (h->type != NL_RTM_NEWLINK || h->len < NL_HDRLEN + NL_ALIGN(sizeof(*ifi)))
                return;
        if (ifi->type != ARPHRD_ETHER || (ifi->flags & IFF_LOOPBACK) || ifi->index <= 0 ||
            (best->index > 0 && ifi->index >= best->index))
                return;
        attrs_len = h->len - NL_HDRLEN - NL_ALIGN(sizeof(*ifi));
        name = nl_find_attr((const uint8_t *)ifi + NL_ALIGN(sizeof(*ifi)), attrs_len,
                            NL_IFLA_IFNAME, &name_len);
        if (!name || name_len == 0)
                return;
        name_len = strnlen((const char *)(name + 1), name_len);
        if (name_len == 0 || name_len >= sizeof(best->name))
                return;
        best->index = ifi->index;
        memcpy(best->name, name + 1, name_len);
        best->name[name_len] = '\0';
}

static int find_nic(int fd, uint8_t *buf, struct nic *ret)
{
        struct {
                struct nl_msghdr h;
                struct nl_ifinfomsg ifi;
        } req = {
                .h = {.len = sizeof(req),
                      .type = NL_RTM_GETLINK,
                      .flags = NL_F_REQUEST | NL_F_DUMP,
                      .seq = SEQ_DUMP},
        };
        struct nic best = {0};

        if (send(fd, &req, sizeof(req), 0) < 0)
                return negative_errno();
        for (;;) {
                const struct nl_msghdr *h;
                ssize_t n = nl_recv(fd, buf, NL_RECV_SIZE);
                size_t off = 0;

                if (n < 0)
                        return (int)n;
                while ((h = nl_next(buf, (size_t)n, &off))) {
                        if (h->seq != SEQ_DUMP)
                                continue;
                        if (h->type == NL_NLMSG_DONE) {
                                if (best.index == 0)
                                        return -ENODEV;
                                *ret = best;
                                return 0;
                        }
                        if (h->type == NL_NLMSG_ERROR) {
                                const struct nl_msgerr *e =
                                        (const void *)((const uint8_t *)h + NL_HDRLEN);

                                if (h->len < NL_HDRLEN + sizeof(e->error) || e->error >= 0)
                                        return -EPROTO;
                                return e->error;
                        }
                        nic_consider(h, &best);
                }
        }
}

/* The kernel's explanation attached to an error (NETLINK_EXT_ACK), or "". */
static const char *nl_err_text(const struct nl_msghdr *h)
{
        const struct nl_msgerr *e = (const void *)((const uint8_t *)h + NL_HDRLEN);
        size_t off, len, tlen;
        const struct nl_attr *a;
        const char *text;

        if (!(h->flags & NL_F_ACK_TLVS))
                return "";
        off = NL_HDRLEN + sizeof(e->error) +
              ((h->flags & NL_F_CAPPED) ? NL_HDRLEN : NL_ALIGN(e->msg.len));
        if (off >= h->len)
                return "";
        len = h->len - off;
        a = nl_find_attr((const uint8_t *)h + off, len, NL_ERR_ATTR_MSG, &tlen);
        if (!a || tlen == 0)
                return "";
        text = (const char *)(a + 1);
        return strnlen(text, tlen) < tlen ? text : "";
}

/* Sends the batch and waits for the answer to its last request. The first
 * failed request is the one reported. */
static int run_batch(int fd, const struct nl_batch *b, uint8_t *buf, char *errmsg,
                     size_t errmsg_size)
{
        uint32_t failed = UINT32_MAX;
        int err = 0;

        snprintf(errmsg, errmsg_size, "rtnetlink request");
        if (b->overflow)
                return -ENOBUFS;
        if (send(fd, b->buf, b->len, 0) < 0)
                return negative_errno();
        for (;;) {
                const struct nl_msghdr *h;
                ssize_t n = nl_recv(fd, buf, NL_RECV_SIZE);
                size_t off = 0;

                if (n < 0)
                        return (int)n;
                while ((h = nl_next(buf, (size_t)n, &off))) {
                        const struct nl_msgerr *e = (const void *)((const uint8_t *)h + NL_HDRLEN);
                        uint32_t i = h->seq - SEQ_BATCH;

                        if (h->type != NL_NLMSG_ERROR || h->seq < SEQ_BATCH || i >= b->n ||
                            h->len < NL_HDRLEN + sizeof(*e))
                                continue;
                        if (e->error < 0 && i < failed) {
                                const char *text = nl_err_text(h);

                                failed = i;
                                err = e->error;
                                snprintf(errmsg, errmsg_size, "%s%s%s%s", b->what[i],
                                         text[0] ? " (" : "", text, text[0] ? ")" : "");
                        }
                        if (i == b->n - 1)
                                return err;
                }
        }
}

static void format_addr(int family, const void *addr, char *buf, size_t size)
{
        if (!inet_ntop(family, addr, buf, (socklen_t)size))
                snprintf(buf, size, "?");
}

static void add_default_route(struct nl_batch *b, const struct nic *nic, int family, const void *gw,
                              size_t gw_len)
{
        struct nl_rtmsg rt = {.family = (uint8_t)family,
                              .table = NL_RT_TABLE_MAIN,
                              .protocol = NL_RTPROT_BOOT,
                              .scope = NL_RT_SCOPE_UNIVERSE,
                              .type = NL_RTN_UNICAST};
        uint32_t oif = (uint32_t)nic->index;
        char a[INET6_ADDRSTRLEN];

        format_addr(family, gw, a, sizeof(a));
        /* REPLACE: the gateway's router advertisement may have installed a
         * default route already (it races the agent on SMP guests). */
        nl_begin(b, NL_RTM_NEWROUTE, NL_F_CREATE | NL_F_REPLACE, &rt, sizeof(rt),
                 "%s: default route via %s", nic->name, a);
        nl_attr(b, NL_RTA_GATEWAY, gw, gw_len);
        nl_attr(b, NL_RTA_OIF, &oif, sizeof(oif));
}

/* Every request, in the order the kernel must run them. */
static void build_batch(const struct agent_net_params *net, const struct nic *nic,
                        struct nl_batch *b)
{
        struct nl_ifinfomsg up = {.index = NL_LOOPBACK_IFINDEX, .flags = IFF_UP, .change = IFF_UP};
        char a[INET6_ADDRSTRLEN];

        nl_begin(b, NL_RTM_SETLINK, 0, &up, sizeof(up), "bring lo up");
        if (nic) {
                up.index = nic->index;
                if (net->mtu) {
                        nl_begin(b, NL_RTM_SETLINK, 0, &up, sizeof(up),
                                 "%s: set MTU %u and bring it up", nic->name, (unsigned)net->mtu);
                        nl_attr(b, NL_IFLA_MTU, &net->mtu, sizeof(net->mtu));
                } else {
                        nl_begin(b, NL_RTM_SETLINK, 0, &up, sizeof(up), "%s: bring it up",
                                 nic->name);
                }
        }
        if (nic && net->has_ip4) {
                struct nl_ifaddrmsg ifa = {.family = AF_INET,
                                           .prefixlen = net->prefix4,
                                           .scope = NL_RT_SCOPE_UNIVERSE,
                                           .index = (uint32_t)nic->index};

                format_addr(AF_INET, &net->ip4, a, sizeof(a));
                nl_begin(b, NL_RTM_NEWADDR, NL_F_CREATE | NL_F_EXCL, &ifa, sizeof(ifa),
                         "%s: add %s/%u", nic->name, a, net->prefix4);
                nl_attr(b, NL_IFA_LOCAL, &net->ip4, sizeof(net->ip4));
                nl_attr(b, NL_IFA_ADDRESS, &net->ip4, sizeof(net->ip4));
        }
        if (nic && net->has_ip6) {
                struct nl_ifaddrmsg ifa = {.family = AF_INET6,
                                           .prefixlen = net->prefix6,
                                           .flags = NL_IFA_F_NODAD,
                                           .scope = NL_RT_SCOPE_UNIVERSE,
                                           .index = (uint32_t)nic->index};

                format_addr(AF_INET6, &net->ip6, a, sizeof(a));
                nl_begin(b, NL_RTM_NEWADDR, NL_F_CREATE | NL_F_EXCL, &ifa, sizeof(ifa),
                         "%s: add %s/%u", nic->name, a, net->prefix6);
                nl_attr(b, NL_IFA_ADDRESS, &net->ip6, sizeof(net->ip6));
        }
        if (nic && net->has_gw4)
                add_default_route(b, nic, AF_INET, &net->gw4, sizeof(net->gw4));
        if (nic && net->has_gw6)
                add_default_route(b, nic, AF_INET6, &net->gw6, sizeof(net->gw6));
        nl_end(b);
}

static int disable_dad(const char *ifname)
{
        _cleanup_free_ char *path = strdup_printf("/proc/sys/net/ipv6/conf/%s/accept_dad", ifname);

        if (!path)
                return -ENOMEM;
        return write_file(path, "0\n", 0644);
}

int agent_net_configure(const struct agent_net_params *net, char *errmsg, size_t errmsg_size)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        bool want_nic = net->has_ip4 || net->has_ip6 || net->mtu;
        struct nl_batch batch = {0};
        struct nic nic;
        const int one = 1;
        int r;

        snprintf(errmsg, errmsg_size, "rtnetlink socket");
        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NL_NETLINK_ROUTE);
        if (fd < 0)
                return negative_errno();
        buf = malloc(NL_RECV_SIZE);
        if (!buf)
                return -ENOMEM;
        /* only for clearer errors: never fatal */
        (void)setsockopt(fd, NL_SOL_NETLINK, NL_NETLINK_EXT_ACK, &one, sizeof(one));
        if (want_nic) {
                r = find_nic(fd, buf, &nic);
                if (r < 0) {
                        snprintf(errmsg, errmsg_size, "%s",
                                 r == -ENODEV ? "no network interface (virtio-net) to configure"
                                              : "listing the network interfaces");
                        return r;
                }
                if (net->has_ip6) {
                        r = disable_dad(nic.name);
                        if (r < 0) {
                                snprintf(errmsg, errmsg_size, "%s: disabling IPv6 DAD", nic.name);
                                return r;
                        }
                }
        }
        build_batch(net, want_nic ? &nic : NULL, &batch);
        return run_batch(fd, &batch, buf, errmsg, errmsg_size);
}

/* ---- /etc/hosts and /etc/resolv.conf ---- */

#define ETC_FILE_MAX (1024 * 1024)

/* A regular file's contents; anything else (missing, a link, a FIFO, a
 * directory) reads as absent: *ret NULL. */
static int read_etc(const char *path, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd =
                open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        _cleanup_free_ char *text = NULL;
        struct stat st;
        ssize_t n;

        *ret = NULL;
        *ret_len = 0;
        if (fd < 0)
                return errno == ENOENT || errno == ELOOP ? 0 : negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return 0;
        if (st.st_size > ETC_FILE_MAX)
                return -EFBIG;
        text = malloc((size_t)st.st_size + 1);
        if (!text)
                return -ENOMEM;
        n = read_full(fd, text, (size_t)st.st_size);
        if (n < 0)
                return (int)n;
        text[n] = '\0';
        *ret_len = (size_t)n;
        *ret = TAKE_PTR(text);
        return 0;
}

/* Replaces path with text (unless it holds exactly that already) through a
 * temporary file and rename. */
static int write_etc(const char *path, const char *old, size_t old_len, const char *text,
                     size_t len)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (old && old_len == len && memcmp(old, text, len) == 0)
                return 0;
        tmp = strdup_printf("%s.msb-new", path);
        if (!tmp)
                return -ENOMEM;
        /* O_NONBLOCK: a FIFO left there fails instead of blocking the boot */
        fd = open(tmp,
                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                  0644);
        if (fd < 0)
                return negative_errno();
        r = write_all(fd, text, len);
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r;
}

static bool hosts_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r';
}

/* The next field of a hosts line [*p, end), up to a '#'. */
static bool hosts_field(const char **p, const char *end, const char **ret, size_t *ret_len)
{
        const char *s = *p, *e;

        while (s < end && hosts_space(*s))
                s++;
        if (s == end || *s == '#')
                return false;
        for (e = s; e < end && !hosts_space(*e) && *e != '#'; e++)
                ;
        *ret = s;
        *ret_len = (size_t)(e - s);
        *p = e;
        return true;
}

static bool field_is(const char *f, size_t n, const char *s)
{
        return s[0] && strlen(s) == n && memcmp(f, s, n) == 0;
}

/* A string built in a buffer sized in advance for what goes in. */
struct strbuf {
        char *buf;
        size_t len, cap;
        bool overflow;
};

static int strbuf_init(struct strbuf *t, size_t cap)
{
        *t = (struct strbuf){.buf = malloc(cap), .cap = cap};
        if (!t->buf)
                return -ENOMEM;
        t->buf[0] = '\0';
        return 0;
}

static void strbuf_add(struct strbuf *t, const char *s, size_t n)
{
        if (t->overflow || n >= t->cap - t->len) {
                t->overflow = true;
                return;
        }
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        t->buf[t->len] = '\0';
}

_printf_(2, 3) static void strbuf_addf(struct strbuf *t, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (t->overflow)
                return;
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= t->cap - t->len)
                t->overflow = true;
        else
                t->len += (size_t)n;
}

/* The old text's lines, but those that map only the alias, then ours. Room:
 * the old text and a newline, the localhost lines and three of ours. */
static int hosts_text(const struct agent_bootparams *bp, const char *old, size_t old_len,
                      struct strbuf *t)
{
        const struct agent_net_params *net = &bp->net;
        bool has_host = false;
        char a[INET6_ADDRSTRLEN];
        int r = strbuf_init(t, old_len + 1024);

        if (r < 0)
                return r;
        if (!old)
                strbuf_addf(t, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (const char *line = old, *end = old ? old + old_len : NULL, *next; line && line < end;
             line = next) {
                const char *eol = memchr(line, '\n', (size_t)(end - line)), *p = line, *f;
                size_t names = 0, n;
                bool alias_only = false;

                next = eol ? eol + 1 : end;
                eol = eol ? eol : end;
                if (hosts_field(&p, eol, &f, &n)) /* the address, then the names */
                        while (hosts_field(&p, eol, &f, &n)) {
                                alias_only = ++names == 1 && field_is(f, n, net->hostalias);
                                has_host = has_host || field_is(f, n, bp->hostname);
                        }
                if (alias_only)
                        continue;
                strbuf_add(t, line, (size_t)(eol - line));
                strbuf_add(t, "\n", 1);
        }
        if (bp->hostname[0] && !has_host)
                strbuf_addf(t, "127.0.1.1\t%s\n", bp->hostname);
        if (net->hostalias[0] && net->has_gw4) {
                format_addr(AF_INET, &net->gw4, a, sizeof(a));
                strbuf_addf(t, "%s\t%s\n", a, net->hostalias);
        }
        if (net->hostalias[0] && net->has_gw6) {
                format_addr(AF_INET6, &net->gw6, a, sizeof(a));
                strbuf_addf(t, "%s\t%s\n", a, net->hostalias);
        }
        return t->overflow ? -ENOBUFS : 0;
}

static int resolv_text(const struct agent_net_params *net, struct strbuf *t)
{
        int r = strbuf_init(t, 64 + AGENT_MAX_DNS * (INET6_ADDRSTRLEN + 12));

        if (r < 0)
                return r;
        strbuf_addf(t, "# Written by msb-agentd at every boot.\n");
        for (size_t i = 0; i < net->n_dns; i++) {
                const struct agent_addr *d = &net->dns[i];
                char a[INET6_ADDRSTRLEN];

                format_addr(d->family, d->family == AF_INET ? (const void *)&d->v4 : &d->v6, a,
                            sizeof(a));
                strbuf_addf(t, "nameserver %s\n", a);
        }
        return t->overflow ? -ENOBUFS : 0;
}

static int update_etc(const char *path, const struct agent_bootparams *bp, bool resolv)
{
        _cleanup_free_ char *old = NULL;
        struct strbuf t = {0};
        size_t old_len;
        int r = read_etc(path, &old, &old_len);

        if (r >= 0)
                r = resolv ? resolv_text(&bp->net, &t) : hosts_text(bp, old, old_len, &t);
        if (r >= 0)
                r = write_etc(path, old, old_len, t.buf, t.len);
        free(t.buf);
        return r;
}

int agent_net_write_etc(const struct agent_bootparams *bp, const char *etc_dir, char *errmsg,
                        size_t errmsg_size)
{
        _cleanup_free_ char *hosts = strdup_printf("%s/hosts", etc_dir);
        _cleanup_free_ char *resolv = strdup_printf("%s/resolv.conf", etc_dir);
        bool want_hosts = bp->hostname[0] || bp->net.hostalias[0];
        bool want_resolv = bp->net.n_dns > 0;
        int r;

        if (!hosts || !resolv)
                return -ENOMEM;
        if (!want_hosts && !want_resolv)
                return 0;
        r = mkdir_p(etc_dir, 0755);
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "mkdir %s", etc_dir);
                return r;
        }
        if (want_hosts) {
                r = update_etc(hosts, bp, false);
                if (r < 0) {
                        snprintf(errmsg, errmsg_size, "%s", hosts);
                        return r;
                }
        }
        if (want_resolv) {
                r = update_etc(resolv, bp, true);
                if (r < 0) {
                        snprintf(errmsg, errmsg_size, "%s", resolv);
                        return r;
                }
        }
        return 0;
}
