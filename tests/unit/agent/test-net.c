/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the agent's network setup (agent/net.c), built for the host.
 *
 * /etc/hosts and /etc/resolv.conf are written into a temporary directory.
 * The kernel side runs for real in a network namespace made with `ip netns`
 * (root only; skipped with a message otherwise): the "guest" namespace holds
 * lo and a veth end named eth0, whose peer sits, down, in a second
 * namespace. The link thus has no carrier, the case in which an address
 * that needs duplicate address detection stays tentative for as long as it
 * lasts; ours must not. A child process enters the namespace (setns) and
 * calls agent_net_configure(); `ip -n` then shows what the kernel holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/core/util.h"

#define NET_LINE                                                                                   \
        "msb.ip4=10.115.0.2/30 msb.gw4=10.115.0.1 msb.ip6=fd6d:7362:0:1::2/64 "                    \
        "msb.gw6=fd6d:7362:0:1::1 msb.mtu=65520 msb.dns=10.115.0.1,fd6d:7362:0:1::1 "              \
        "msb.hostalias=host.msb.internal"

#define LOCALHOST_LINES "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
#define ALIAS_LINES     "10.115.0.1\thost.msb.internal\nfd6d:7362:0:1::1\thost.msb.internal\n"
#define RESOLV_TEXT                                                                                \
        "# Written by msb-agentd at every boot.\n"                                                 \
        "nameserver 10.115.0.1\n"                                                                  \
        "nameserver fd6d:7362:0:1::1\n"

static struct agent_bootparams parse(const char *line)
{
        struct agent_bootparams bp;

        assert_int_equal(agent_bootparams_parse(line, &bp, NULL), 0);
        return bp;
}

/* ---- files ---- */

struct etc {
        char dir[64];
        char etc[80];
};

static int etc_setup(void **state)
{
        struct etc *e = calloc(1, sizeof(*e));
        const char *tmp = getenv("TMPDIR");

        if (!e)
                return -1;
        snprintf(e->dir, sizeof(e->dir), "%s/msb-net-XXXXXX",
                 tmp && strlen(tmp) < 40 ? tmp : "/tmp");
        if (!mkdtemp(e->dir))
                return -1;
        snprintf(e->etc, sizeof(e->etc), "%s/etc", e->dir);
        *state = e;
        return 0;
}

static int etc_teardown(void **state)
{
        struct etc *e = *state;

        rm_rf(e->dir);
        free(e);
        return 0;
}

static char *etc_read(const struct etc *e, const char *name)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", e->etc, name);
        char *text = NULL;

        assert_non_null(path);
        assert_int_equal(read_file(path, 1 << 20, &text, NULL), 0);
        return text;
}

static void etc_put(const struct etc *e, const char *name, const char *text)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", e->etc, name);

        assert_int_equal(mkdir_p(e->etc, 0755), 0);
        assert_int_equal(write_file(path, text, 0644), 0);
}

static void etc_write(const struct etc *e, const char *line)
{
        struct agent_bootparams bp = parse(line);
        char err[256] = "";
        int r = agent_net_write_etc(&bp, e->etc, err, sizeof(err));

        if (r < 0)
                fail_msg("agent_net_write_etc: %s: %s", err, strerror(-r));
}

static ino_t etc_inode(const struct etc *e, const char *name)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", e->etc, name);
        struct stat st;

        assert_int_equal(lstat(path, &st), 0);
        return st.st_ino;
}

/* No /etc at all (an image from scratch): made, with a complete hosts. */
static void test_etc_fresh(void **state)
{
        struct etc *e = *state;
        _cleanup_free_ char *hosts = NULL, *resolv = NULL;
        struct stat st;

        etc_write(e, "msb.hostname=box " NET_LINE);
        hosts = etc_read(e, "hosts");
        assert_string_equal(hosts, LOCALHOST_LINES "127.0.1.1\tbox\n" ALIAS_LINES);
        resolv = etc_read(e, "resolv.conf");
        assert_string_equal(resolv, RESOLV_TEXT);
        assert_int_equal(stat(e->etc, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
}

/* The image's lines stay, in order; a missing final newline is added; the
 * host name already there is not added again; our lines from an earlier
 * boot (other addresses) are replaced; a user's line naming the alias among
 * others is the user's. */
static void test_etc_hosts_merge(void **state)
{
        struct etc *e = *state;
        _cleanup_free_ char *hosts = NULL;

        etc_put(e, "hosts",
                "127.0.0.1 localhost\n"
                "# 10.9.9.9 host.msb.internal (a comment)\n"
                "10.115.0.9\thost.msb.internal\n"
                "192.0.2.7 box  # the host\n"
                "fd6d:7362:0:9::1 host.msb.internal\n"
                "198.51.100.1 host.msb.internal other\n"
                "203.0.113.5 last");
        etc_write(e, "msb.hostname=box " NET_LINE);
        hosts = etc_read(e, "hosts");
        assert_string_equal(hosts, "127.0.0.1 localhost\n"
                                   "# 10.9.9.9 host.msb.internal (a comment)\n"
                                   "192.0.2.7 box  # the host\n"
                                   "198.51.100.1 host.msb.internal other\n"
                                   "203.0.113.5 last\n" ALIAS_LINES);
}

/* A second boot with the same parameters leaves both files alone. */
static void test_etc_unchanged(void **state)
{
        struct etc *e = *state;
        ino_t hosts, resolv;

        etc_write(e, "msb.hostname=box " NET_LINE);
        hosts = etc_inode(e, "hosts");
        resolv = etc_inode(e, "resolv.conf");
        etc_write(e, "msb.hostname=box " NET_LINE);
        assert_int_equal(etc_inode(e, "hosts"), hosts);
        assert_int_equal(etc_inode(e, "resolv.conf"), resolv);
}

/* resolv.conf as a link into a systemd-resolved directory: replaced by a
 * file, and nothing is written through the link. */
static void test_etc_resolv_symlink(void **state)
{
        struct etc *e = *state;
        _cleanup_free_ char *link = NULL, *target = NULL, *resolv = NULL;
        struct stat st;

        assert_int_equal(mkdir_p(e->etc, 0755), 0);
        link = strdup_printf("%s/resolv.conf", e->etc);
        target = strdup_printf("%s/run/systemd/resolve/stub-resolv.conf", e->dir);
        assert_int_equal(symlink("../run/systemd/resolve/stub-resolv.conf", link), 0);
        etc_write(e, NET_LINE);
        assert_int_equal(lstat(link, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);
        resolv = etc_read(e, "resolv.conf");
        assert_string_equal(resolv, RESOLV_TEXT);
        assert_int_equal(access(target, F_OK), -1);
}

/* An image may hold anything at those paths: a FIFO must not block the
 * boot, a link to a file must not be written through. */
static void test_etc_hostile(void **state)
{
        struct etc *e = *state;
        _cleanup_free_ char *fifo = NULL, *victim = NULL, *link = NULL, *text = NULL;
        _cleanup_free_ char *hosts = NULL;
        struct stat st;

        assert_int_equal(mkdir_p(e->etc, 0755), 0);
        fifo = strdup_printf("%s/hosts", e->etc);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        victim = strdup_printf("%s/victim", e->dir);
        assert_int_equal(write_file(victim, "keep\n", 0644), 0);
        link = strdup_printf("%s/resolv.conf", e->etc);
        assert_int_equal(symlink(victim, link), 0);
        etc_write(e, "msb.hostname=box " NET_LINE);
        assert_int_equal(lstat(fifo, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        hosts = etc_read(e, "hosts");
        assert_string_equal(hosts, LOCALHOST_LINES "127.0.1.1\tbox\n" ALIAS_LINES);
        assert_int_equal(read_file(victim, 100, &text, NULL), 0);
        assert_string_equal(text, "keep\n");
}

/* Without a network (--no-net) resolv.conf is the image's; without a host
 * name either, nothing is touched at all. */
static void test_etc_no_net(void **state)
{
        struct etc *e = *state;
        _cleanup_free_ char *hosts = NULL, *resolv = NULL;

        etc_write(e, "console=ttyS0");
        assert_int_equal(access(e->etc, F_OK), -1);
        etc_put(e, "resolv.conf", "nameserver 192.0.2.53\n");
        etc_write(e, "msb.hostname=box");
        hosts = etc_read(e, "hosts");
        assert_string_equal(hosts, LOCALHOST_LINES "127.0.1.1\tbox\n");
        resolv = etc_read(e, "resolv.conf");
        assert_string_equal(resolv, "nameserver 192.0.2.53\n");
}

/* IPv4 only: one line each. */
static void test_etc_ipv4_only(void **state)
{
        struct etc *e = *state;
        _cleanup_free_ char *hosts = NULL, *resolv = NULL;

        etc_put(e, "hosts", "127.0.0.1 localhost box\n");
        etc_write(e, "msb.hostname=box msb.ip4=10.115.0.6/30 msb.gw4=10.115.0.5 "
                     "msb.dns=10.115.0.5 msb.hostalias=host.msb.internal");
        hosts = etc_read(e, "hosts");
        assert_string_equal(hosts, "127.0.0.1 localhost box\n10.115.0.5\thost.msb.internal\n");
        resolv = etc_read(e, "resolv.conf");
        assert_string_equal(resolv, "# Written by msb-agentd at every boot.\n"
                                    "nameserver 10.115.0.5\n");
}

/* A file that cannot be replaced is an error that names it; a FIFO where
 * the temporary file goes fails rather than blocking. */
static void test_etc_error(void **state)
{
        struct etc *e = *state;
        _cleanup_free_ char *dir = strdup_printf("%s/resolv.conf", e->etc);
        _cleanup_free_ char *fifo = strdup_printf("%s/resolv.conf.msb-new", e->etc);
        struct agent_bootparams bp = parse(NET_LINE);
        char err[256] = "";

        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_true(agent_net_write_etc(&bp, e->etc, err, sizeof(err)) < 0);
        assert_string_equal(err, dir);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        assert_int_equal(agent_net_write_etc(&bp, e->etc, err, sizeof(err)), -ENXIO);
        assert_string_equal(err, dir);
}

/* ---- the kernel side, in network namespaces ---- */

struct ns {
        char guest[64];
        char peer[64];
};

/* Runs a shell command; its exit status. */
_printf_(1, 2) static int sh(const char *fmt, ...)
{
        char cmd[512];
        va_list ap;
        int st;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A command's output (stderr included). */
_printf_(1, 2) static char *sh_out(const char *fmt, ...)
{
        char cmd[512], *out = NULL;
        size_t len = 0;
        va_list ap;
        FILE *f;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
        f = popen(cmd, "r");
        assert_non_null(f);
        out = calloc(1, 65536);
        assert_non_null(out);
        len = fread(out, 1, 65535, f);
        out[len] = '\0';
        pclose(f);
        return out;
}

static int ns_setup(void **state)
{
        struct ns *n = calloc(1, sizeof(*n));

        if (!n)
                return -1;
        snprintf(n->guest, sizeof(n->guest), "msb-agent-test-%d", (int)getpid());
        snprintf(n->peer, sizeof(n->peer), "msb-agent-peer-%d", (int)getpid());
        *state = n;
        if (geteuid() != 0 || sh("ip netns add %s >/dev/null 2>&1", n->guest) != 0) {
                fprintf(stderr, "test-agent-net: cannot create a network namespace (root and "
                                "iproute2 needed): skipping the kernel tests\n");
                n->guest[0] = '\0';
                return 0;
        }
        if (sh("ip netns add %s", n->peer) != 0)
                return -1;
        return 0;
}

static int ns_teardown(void **state)
{
        struct ns *n = *state;

        if (n->guest[0])
                sh("ip netns del %s; ip netns del %s", n->guest, n->peer);
        free(n);
        return 0;
}

/* Each test starts from a guest namespace with only lo, down. */
static int ns_reset(void **state)
{
        struct ns *n = *state;

        if (!n->guest[0])
                return 0;
        sh("ip -n %s link del eth0 >/dev/null 2>&1; ip -n %s link del veth9 >/dev/null 2>&1; "
           "ip -n %s link set lo down",
           n->guest, n->guest, n->guest);
        return 0;
}

static void ns_require(const struct ns *n)
{
        if (!n->guest[0])
                skip();
}

/* eth0 in the guest namespace, its peer (down) in the other one. */
static void ns_add_nic(const struct ns *n, const char *name)
{
        if (sh("ip -n %s link add %s type veth peer name p-%s netns %s", n->guest, name, name,
               n->peer) != 0) {
                fprintf(stderr, "test-agent-net: no veth support: skipping\n");
                skip();
        }
}

/* agent_net_configure() in the guest namespace, from a child. */
static int ns_configure(const struct ns *n, const char *line, char *errmsg, size_t errmsg_size)
{
        struct agent_bootparams bp = parse(line);
        int pipefd[2], status;
        ssize_t got;
        pid_t pid;
        struct {
                int r;
                char err[256];
        } res = {0};

        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                _cleanup_free_ char *path = strdup_printf("/run/netns/%s", n->guest);
                int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;

                if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
                        res.r = -errno;
                else
                        res.r = agent_net_configure(&bp.net, res.err, sizeof(res.err));
                (void)!write(pipefd[1], &res, sizeof(res));
                _exit(0);
        }
        close(pipefd[1]);
        got = read_full(pipefd[0], &res, sizeof(res));
        close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(got, (ssize_t)sizeof(res));
        res.err[sizeof(res.err) - 1] = '\0';
        snprintf(errmsg, errmsg_size, "%s", res.err);
        return res.r;
}

static void ns_configure_ok(const struct ns *n, const char *line)
{
        char err[256];
        int r = ns_configure(n, line, err, sizeof(err));

        if (r < 0)
                fail_msg("agent_net_configure: %s: %s", err, strerror(-r));
}

static void assert_contains(const char *text, const char *part)
{
        if (!strstr(text, part))
                fail_msg("\"%s\" not in:\n%s", part, text);
}

static void assert_lacks(const char *text, const char *part)
{
        if (strstr(text, part))
                fail_msg("\"%s\" in:\n%s", part, text);
}

static void test_ns_full(void **state)
{
        struct ns *n = *state;
        _cleanup_free_ char *lo = NULL, *link = NULL, *a4 = NULL, *a6 = NULL, *r4 = NULL;
        _cleanup_free_ char *r6 = NULL, *dad = NULL;

        ns_require(n);
        ns_add_nic(n, "eth0");
        ns_configure_ok(n, NET_LINE);

        lo = sh_out("ip -n %s -o link show lo", n->guest);
        assert_contains(lo, ",UP");
        link = sh_out("ip -n %s -o link show eth0", n->guest);
        assert_contains(link, ",UP");
        assert_contains(link, " mtu 65520 ");
        a4 = sh_out("ip -n %s -o -4 addr show dev eth0", n->guest);
        assert_contains(a4, " inet 10.115.0.2/30 ");
        a6 = sh_out("ip -n %s -o -6 addr show dev eth0 scope global", n->guest);
        assert_contains(a6, " inet6 fd6d:7362:0:1::2/64 ");
        assert_contains(a6, " nodad");
        assert_lacks(a6, "tentative");
        r4 = sh_out("ip -n %s -4 route show default", n->guest);
        assert_contains(r4, "default via 10.115.0.1 dev eth0");
        r6 = sh_out("ip -n %s -6 route show default", n->guest);
        assert_contains(r6, "default via fd6d:7362:0:1::1 dev eth0");
        dad = sh_out("ip netns exec %s cat /proc/sys/net/ipv6/conf/eth0/accept_dad", n->guest);
        assert_string_equal(dad, "0\n");
        assert_int_equal(
                sh("ip -n %s -6 route get 2001:db8::1 | grep -q 'src fd6d:7362:0:1::2'", n->guest),
                0);
}

/* IPv4 only, no MTU: IPv6 and the NIC's MTU are the kernel's. */
static void test_ns_ipv4_only(void **state)
{
        struct ns *n = *state;
        _cleanup_free_ char *link = NULL, *a6 = NULL, *r4 = NULL, *dad = NULL;

        ns_require(n);
        ns_add_nic(n, "eth0");
        ns_configure_ok(n, "msb.ip4=10.115.0.6/30 msb.gw4=10.115.0.5");
        link = sh_out("ip -n %s -o link show eth0", n->guest);
        assert_contains(link, ",UP");
        assert_contains(link, " mtu 1500 ");
        a6 = sh_out("ip -n %s -o -6 addr show dev eth0 scope global", n->guest);
        assert_string_equal(a6, "");
        r4 = sh_out("ip -n %s -4 route show default", n->guest);
        assert_contains(r4, "default via 10.115.0.5 dev eth0");
        dad = sh_out("ip netns exec %s cat /proc/sys/net/ipv6/conf/eth0/accept_dad", n->guest);
        assert_string_equal(dad, "1\n");
}

/* --no-net: lo comes up, the NIC is left alone. */
static void test_ns_no_net(void **state)
{
        struct ns *n = *state;
        _cleanup_free_ char *lo = NULL, *link = NULL, *a4 = NULL;

        ns_require(n);
        ns_add_nic(n, "eth0");
        ns_configure_ok(n, "msb.hostname=box");
        lo = sh_out("ip -n %s -o link show lo", n->guest);
        assert_contains(lo, ",UP");
        link = sh_out("ip -n %s -o link show eth0", n->guest);
        assert_lacks(link, ",UP");
        a4 = sh_out("ip -n %s -o -4 addr show dev eth0", n->guest);
        assert_string_equal(a4, "");
}

/* A network asked for without a NIC is an error that says so. */
static void test_ns_no_nic(void **state)
{
        struct ns *n = *state;
        char err[256];

        ns_require(n);
        assert_int_equal(ns_configure(n, NET_LINE, err, sizeof(err)), -ENODEV);
        assert_contains(err, "no network interface");
}

/* The first Ethernet interface is the NIC, whatever its name; later ones
 * are left alone. */
static void test_ns_first_nic(void **state)
{
        struct ns *n = *state;
        _cleanup_free_ char *a4 = NULL, *other = NULL;

        ns_require(n);
        ns_add_nic(n, "veth9");
        ns_add_nic(n, "eth0");
        ns_configure_ok(n, "msb.ip4=10.115.0.2/30 msb.gw4=10.115.0.1");
        a4 = sh_out("ip -n %s -o -4 addr show dev veth9", n->guest);
        assert_contains(a4, " inet 10.115.0.2/30 ");
        other = sh_out("ip -n %s -o -4 addr show dev eth0", n->guest);
        assert_string_equal(other, "");
}

/* A request the kernel refuses names the step: the address exists. */
static void test_ns_refused(void **state)
{
        struct ns *n = *state;
        char err[256];

        ns_require(n);
        ns_add_nic(n, "eth0");
        assert_int_equal(sh("ip -n %s addr add 10.115.0.2/30 dev eth0", n->guest), 0);
        assert_int_equal(ns_configure(n, NET_LINE, err, sizeof(err)), -EEXIST);
        assert_contains(err, "eth0: add 10.115.0.2/30");
}

int main(void)
{
        const struct CMUnitTest etc_tests[] = {
                cmocka_unit_test_setup_teardown(test_etc_fresh, etc_setup, etc_teardown),
                cmocka_unit_test_setup_teardown(test_etc_hosts_merge, etc_setup, etc_teardown),
                cmocka_unit_test_setup_teardown(test_etc_unchanged, etc_setup, etc_teardown),
                cmocka_unit_test_setup_teardown(test_etc_resolv_symlink, etc_setup, etc_teardown),
                cmocka_unit_test_setup_teardown(test_etc_hostile, etc_setup, etc_teardown),
                cmocka_unit_test_setup_teardown(test_etc_no_net, etc_setup, etc_teardown),
                cmocka_unit_test_setup_teardown(test_etc_ipv4_only, etc_setup, etc_teardown),
                cmocka_unit_test_setup_teardown(test_etc_error, etc_setup, etc_teardown),
        };
        const struct CMUnitTest ns_tests[] = {
                cmocka_unit_test_setup(test_ns_full, ns_reset),
                cmocka_unit_test_setup(test_ns_ipv4_only, ns_reset),
                cmocka_unit_test_setup(test_ns_no_net, ns_reset),
                cmocka_unit_test_setup(test_ns_no_nic, ns_reset),
                cmocka_unit_test_setup(test_ns_first_nic, ns_reset),
                cmocka_unit_test_setup(test_ns_refused, ns_reset),
        };
        int failed = cmocka_run_group_tests_name("etc", etc_tests, NULL, NULL);

        return failed + cmocka_run_group_tests_name("netns", ns_tests, ns_setup, ns_teardown);
}
