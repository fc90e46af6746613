#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The gateway against the host kernel's own TCP/IP, no VM.

    run.py --harness BUILD/tests/net/net-harness GROUP

Three network namespaces made for the run (and removed after it):
  guest  a TAP device served by the gateway (net-harness) plays the VM
  host   where the gateway runs: its address 44.1.0.1 (a public-looking
         address of the host itself), loopback services (7000/tcp), the DNS
         servers of the test zone (127.0.0.1, and 127.0.0.2 which never
         answers)
  world  the rest of the Internet behind the host: public 44.2.0.10-11
         and 2a00:44:2::10, private 10.99.0.10 192.168.77.10 172.20.0.10
         fd99::10, metadata 169.254.169.254; tcp servers on 8000 and 8002,
         udp echo on 8001, a DNS server on 44.2.0.11; 44.9.9.0/24 is a
         blackhole (connects hang); 44.8.8.0/24 and 2a00:44:8::/48 are
         unreachable, 44.7.7.0/24 prohibited (the world's router answers
         with ICMP errors: IPv4 five at once, then one a second)
Traffic never leaves these namespaces. Prints one line per test and
"N passed, N failed" at the end. Exits 77 (skip) when namespaces cannot be
made (not root, no `ip netns`).
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETUTIL = os.path.join(HERE, "netutil.py")
PY = sys.executable or "python3"

GUEST4, GW4 = "10.115.0.2", "10.115.0.1"
GUEST6, GW6 = "fd6d:7362::2", "fd6d:7362::1"
GUEST_MAC = "02:6d:73:00:00:02"
PUB, PUB2, PUB6 = "44.2.0.10", "44.2.0.11", "2a00:44:2::10"
HOSTADDR = "44.1.0.1"
PRIVATE = ["10.99.0.10", "192.168.77.10", "172.20.0.10"]
PRIV6 = "fd99::10"
METADATA = "169.254.169.254"
BLACKHOLE = "44.9.9.9"
UNREACHABLE, UNREACHABLE6, PROHIBITED = "44.8.8.8", "2a00:44:8::8", "44.7.7.7"


def sh(*cmd, check=True, timeout=60):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stdout.strip()))
    return r.stdout.strip()


class World:
    def __init__(self, harness):
        self.harness = harness
        tag = "%d%04x" % (os.getpid() % 100000, random.randrange(65536))
        self.g, self.h, self.w = "msbg" + tag, "msbh" + tag, "msbw" + tag
        self.tmp = "/tmp/msb-net-" + tag
        os.makedirs(self.tmp, exist_ok=True)
        self.procs = []
        self.gw = None
        self.gw_args = None
        try:
            self.build()
        except BaseException:
            self.close()  # nothing half-made stays behind
            raise

    def build(self):
        for ns in (self.g, self.h, self.w):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        h, w = self.h, self.w
        sh("ip", "-n", h, "link", "add", "hv", "type", "veth", "peer", "name", "wv",
           "netns", w)
        sh("ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
        sh("ip", "netns", "exec", w, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
        sh("ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv6.conf.hv.accept_dad=0")
        sh("ip", "netns", "exec", w, "sysctl", "-qw", "net.ipv6.conf.wv.accept_dad=0")
        sh("ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
        sh("ip", "-n", h, "addr", "add", HOSTADDR + "/24", "dev", "hv")
        sh("ip", "-n", h, "addr", "add", "2a00:44::1/64", "dev", "hv", "nodad")
        sh("ip", "-n", h, "link", "set", "hv", "up")
        sh("ip", "-n", h, "route", "add", "default", "via", "44.1.0.2")
        sh("ip", "-n", h, "-6", "route", "add", "default", "via", "2a00:44::2")
        sh("ip", "-n", w, "addr", "add", "44.1.0.2/24", "dev", "wv")
        sh("ip", "-n", w, "addr", "add", "2a00:44::2/64", "dev", "wv", "nodad")
        sh("ip", "-n", w, "link", "set", "wv", "up")
        for a in [PUB, PUB2, METADATA] + PRIVATE:
            sh("ip", "-n", w, "addr", "add", a + "/32", "dev", "lo")
        for a in [PUB6, PRIV6]:
            sh("ip", "-n", w, "addr", "add", a + "/128", "dev", "lo", "nodad")
        sh("ip", "-n", w, "route", "add", "blackhole", "44.9.9.0/24")
        sh("ip", "-n", w, "route", "add", "unreachable", "44.8.8.0/24")
        sh("ip", "-n", w, "-6", "route", "add", "unreachable", "2a00:44:8::/48")
        sh("ip", "-n", w, "route", "add", "prohibit", "44.7.7.0/24")
        # The world routes (else it drops what it cannot deliver without a
        # word) and does not limit its ICMP errors. The IPv4 limit is off by
        # type, not by rate: a rate of 0 would still empty the per-host
        # bucket the router's own errors draw on (net.ipv4.route.error_cost,
        # one a second after a burst of five, which is not per namespace).
        for knob in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                     "net.ipv4.icmp_ratemask=0", "net.ipv6.icmp.ratelimit=0"):
            sh("ip", "netns", "exec", w, "sysctl", "-qw", knob)
        self.server(w, "tcp-server", "8000")
        self.server(w, "tcp-server", "8002")
        self.server(w, "udp-server", "8001", PUB, PUB2, PUB6, PRIV6, METADATA, *PRIVATE)
        self.server(w, "dns-server", "53", PUB2)
        self.server(h, "tcp-server", "7000")
        self.server(h, "dns-server", "53", "127.0.0.1")
        self.server(h, "dns-server", "53", "127.0.0.2", "--silent")

    def server(self, ns, *args):
        p = subprocess.Popen(["ip", "netns", "exec", ns, PY, NETUTIL] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("server %s did not start" % (args,))
        self.procs.append(p)
        return p

    def gateway(self, *args, link="stream", mtu=65520):
        """(Re)starts the gateway with these options and configures the guest."""
        key = (args, link, mtu)
        if self.gw and self.gw_args == key:
            return
        self.stop_gateway()
        self.log = os.path.join(self.tmp, "gw.log")
        self.stats_file = os.path.join(self.tmp, "stats")
        cmd = ["ip", "netns", "exec", self.h, self.harness, "--guest-ns", self.g, "--tap", "tap0",
               "--link", link, "--mtu", str(mtu), "--stats", self.stats_file] + list(args)
        if "--dns" not in args:
            cmd += ["--dns", "127.0.0.1"]
        self.logf = open(self.log, "w")
        self.gw = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.logf, text=True)
        if self.gw.stdout.readline().strip() != "ready":
            raise RuntimeError("net-harness did not start: " + open(self.log).read())
        self.gw_args = key
        g = self.g
        sh("ip", "-n", g, "link", "set", "tap0", "address", GUEST_MAC, "mtu", str(mtu), "up")
        sh("ip", "-n", g, "addr", "add", GUEST4 + "/30", "dev", "tap0")
        sh("ip", "-n", g, "route", "add", "default", "via", GW4)
        sh("ip", "-n", g, "-6", "addr", "add", GUEST6 + "/64", "dev", "tap0", "nodad")
        # The IPv6 default route comes from our router advertisement.
        end = time.time() + 60
        while "default" not in sh("ip", "-n", g, "-6", "route", "show", "default"):
            if time.time() > end:
                raise RuntimeError("no IPv6 default route from the RA")
            time.sleep(0.1)

    def stop_gateway(self):
        if self.gw:
            self.gw.send_signal(signal.SIGTERM)
            try:
                self.gw.wait(10)
            except subprocess.TimeoutExpired:
                self.gw.kill()
                self.gw.wait()
            self.logf.close()
            self.gw = None

    def alive(self):
        return self.gw is not None and self.gw.poll() is None

    def stats(self):
        if os.path.exists(self.stats_file):
            os.unlink(self.stats_file)
        self.gw.send_signal(signal.SIGUSR1)
        end = time.time() + 60  # generous: a loaded machine is slow
        while time.time() < end:
            if os.path.exists(self.stats_file):
                text = open(self.stats_file).read()
                if text.endswith("\n") and "paused" in text:
                    return {k: int(v) for k, v in (l.split() for l in text.splitlines())}
            time.sleep(0.05)
        raise RuntimeError("no stats from the gateway")

    def denials(self):
        self.logf.flush()
        return open(self.log).read()

    def run(self, ns, *args, timeout=120, check=False):
        return sh("ip", "netns", "exec", ns, PY, NETUTIL, *args, timeout=timeout, check=check)

    def guest(self, *args, timeout=120):
        return self.run(self.g, *args, timeout=timeout)

    def close(self):
        self.stop_gateway()
        for p in self.procs:
            p.kill()
            p.wait()
        for ns in (self.g, self.h, self.w):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", self.tmp])


def expect(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def expect_in(needle, hay, what=""):
    if needle not in hay:
        raise AssertionError("%s: %r not in %r" % (what, needle, hay[-2000:]))


def wait_for(pred, what, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


# --------------------------------------------------------------------------
# link: ARP, NDP, RA, echo


def test_ping_gateway(w):
    w.gateway()
    expect(w.guest("ping", GW4), "ok", "ping gw4")
    expect(w.guest("ping", GW6), "ok", "ping gw6")


def test_ra_and_dad(w):
    w.gateway()
    out = sh("ip", "-n", w.g, "-6", "route", "show", "default")
    expect_in("proto ra", out, "default route")
    # An address configured with DAD must not stay tentative (#948).
    sh("ip", "-n", w.g, "-6", "addr", "add", "fd6d:7362::3/64", "dev", "tap0")
    wait_for(lambda: "tentative" not in sh("ip", "-n", w.g, "-6", "addr", "show", "dev", "tap0"),
             "DAD to finish", 10)
    expect_in("fd6d:7362::3", sh("ip", "-n", w.g, "-6", "addr", "show", "dev", "tap0"))


def test_ping_remote(w):
    w.gateway()
    expect(w.guest("ping", PUB), "ok", "ping public v4")
    expect(w.guest("ping", PUB6), "ok", "ping public v6")
    expect(w.guest("ping", PRIVATE[0]), "unreachable", "ping private")
    expect_in("denied icmp %s -> %s by default (egress deny)" % (GUEST4, PRIVATE[0]), w.denials())


def test_links(w):
    for link in ("dgram", "tap"):
        w.gateway(link=link)
        expect(w.guest("fetch", PUB, "8000", "5000000"), "ok", "fetch over " + link)
        expect(w.guest("ping", GW6), "ok", "ping over " + link)
    w.gateway(mtu=1500)
    expect(w.guest("fetch", PUB, "8000", "5000000"), "ok", "fetch at MTU 1500")
    expect(w.guest("send", PUB, "8000", "5000000"), "ok", "send at MTU 1500")


# --------------------------------------------------------------------------
# tcp


def test_tcp_100mb(w):
    w.gateway()
    expect(w.guest("fetch", PUB, "8000", str(100 * 1000 * 1000), timeout=300), "ok", "download")
    expect(w.guest("send", PUB, "8000", str(100 * 1000 * 1000), timeout=300), "ok", "upload")


def test_tcp_concurrent(w):
    w.gateway()
    expect(w.guest("concurrent", PUB, "8000", "200", "200000", timeout=300), "ok 200")
    wait_for(lambda: w.stats()["tcp_active"] == 0, "all flows to close", 20)


def test_tcp_halfclose(w):
    w.gateway()
    expect(w.guest("halfclose", PUB, "8000"), "ok", "guest shuts writing first")
    expect(w.guest("halfclose", PUB6, "8000"), "ok", "v6")


def test_tcp_reset(w):
    w.gateway()
    # The host side resets: the guest sees the reset.
    expect(w.guest("reset", PUB, "8000"), "reset", "host RST")
    # The guest aborts: the host side sees a reset.
    expect(w.guest("abort", PUB, "8000"), "ok", "guest RST")


def test_tcp_refused_unreachable(w):
    w.gateway("--connect-timeout", "2000")
    expect(w.guest("connect", PUB, "9"), "refused", "closed port")
    t0 = time.time()
    expect(w.guest("connect", BLACKHOLE, "80", "20"), "refused", "blackholed host")
    if time.time() - t0 > 10:
        raise AssertionError("the connect timeout did not end the SYN")


def test_tcp_no_route(w):
    # What the host's connect() learnt from an ICMP error, the guest's learns too.
    w.gateway()
    expect(w.guest("connect", UNREACHABLE, "80"), "unreachable", "unreachable host")
    expect(w.guest("connect", PROHIBITED, "80"), "unreachable", "prohibited host")
    expect(w.guest("connect", UNREACHABLE6, "80"), "unreachable", "unreachable v6 host")
    if w.stats()["icmp_errors"] != 3:
        raise AssertionError("the ICMP errors were not counted")


def test_tcp_ipv6(w):
    w.gateway()
    expect(w.guest("fetch", PUB6, "8000", "20000000"), "ok", "v6 download")
    expect(w.guest("send", PUB6, "8000", "20000000"), "ok", "v6 upload")


def test_tcp_loss(w):
    w.gateway("--drop-every", "101")
    expect(w.guest("fetch", PUB, "8000", "20000000", timeout=300), "ok", "download with loss")
    expect(w.guest("send", PUB, "8000", "20000000", timeout=300), "ok", "upload with loss")
    s = w.stats()
    if s["tcp_retransmits"] == 0:
        raise AssertionError("no retransmission happened")
    if s["tcp_ooo"] == 0:
        raise AssertionError("no data after a gap was kept")
    w.gateway("--drop-every", "101", link="dgram", mtu=1500)
    expect(w.guest("fetch", PUB, "8000", "5000000", timeout=300), "ok", "download, loss, 1500")


def test_tcp_guest_stops_reading(w):
    w.gateway()
    p = subprocess.Popen(["ip", "netns", "exec", w.g, PY, NETUTIL, "fetch", PUB, "8000",
                          str(200 * 1000 * 1000)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    w.gw.send_signal(signal.SIGUSR2)  # the guest stops draining its queue
    wait_for(lambda: w.stats()["paused"] == 1, "the pause", 5)
    time.sleep(2)
    s1 = w.stats()
    time.sleep(1)
    s2 = w.stats()
    if s2["bytes_from_host"] - s1["bytes_from_host"] > 8 * 1024 * 1024:
        raise AssertionError("the gateway kept reading the host while the guest did not read")
    w.gw.send_signal(signal.SIGUSR2)
    out, _ = p.communicate(timeout=300)
    expect(out.strip(), "ok", "the transfer after the guest resumed")
    if not w.alive():
        raise AssertionError("the gateway died")


# --------------------------------------------------------------------------
# udp


def test_udp_echo(w):
    w.gateway()
    expect(w.guest("udp", PUB, "8001"), "ok", "v4")
    expect(w.guest("udp", PUB6, "8001"), "ok", "v6")
    expect(w.guest("udp", PRIVATE[0], "8001"), "unreachable", "denied")


def test_udp_errors(w):
    # ICMP errors for what the gateway sent on the guest's behalf reach the
    # guest's socket: it fails at once instead of waiting for an answer.
    w.gateway()
    expect(w.guest("udp", PUB, "8009"), "refused", "closed port")
    expect(w.guest("udp", PUB6, "8009"), "refused", "closed port, v6")
    expect(w.guest("udp", UNREACHABLE, "8001"), "unreachable", "unreachable host")
    expect(w.guest("udp", UNREACHABLE6, "8001"), "unreachable", "unreachable host, v6")
    expect(w.guest("udp", PROHIBITED, "8001"), "unreachable", "prohibited host")
    expect(w.guest("udp", PUB, "8001"), "ok", "the echo still works")
    expect(w.guest("ping", UNREACHABLE), "unreachable", "ping an unreachable host")
    expect(w.guest("ping", UNREACHABLE6), "unreachable", "ping an unreachable v6 host")
    if w.stats()["icmp_errors"] != 7:
        raise AssertionError("the ICMP errors were not counted")
    # The gateway's own address is the host: its closed port, too.
    w.gateway("--net", "public,host")
    expect(w.guest("udp", GW4, "7009"), "refused", "closed port of the host")
    expect(w.guest("udp", GW6, "7009"), "refused", "closed port of the host, v6")


def test_udp_flood(w):
    w.gateway("--max-udp", "32")
    expect(w.guest("udpflood", PUB, "8001", "500"), "ok")
    s = w.stats()
    if s["udp_active"] > 32 or s["udp_opened"] < 300 or \
            s["udp_evicted"] < s["udp_opened"] - 32:
        raise AssertionError("udp limits not kept: %r" % s)
    expect(w.guest("udp", PUB, "8001"), "ok", "echo after the flood")


# --------------------------------------------------------------------------
# dns


def dns(w, name, qtype="A", *extra, server=GW4):
    return w.guest("dns", server, name, qtype, *extra, timeout=60)


def test_dns_basic(w):
    w.gateway()
    expect(dns(w, "public.test"), "rcode=0 tc=0 n=1 addrs=" + PUB, "A")
    expect(dns(w, "public.test", "AAAA"), "rcode=0 tc=0 n=1 addrs=" + PUB6, "AAAA")
    expect(dns(w, "public.test", server=GW6), "rcode=0 tc=0 n=1 addrs=" + PUB, "over v6")
    expect(dns(w, "nope.test"), "rcode=3 tc=0 n=0 addrs=", "NXDOMAIN")
    expect(dns(w, "public.test", "A", "--tcp"), "rcode=0 tc=0 n=1 addrs=" + PUB, "TCP")


def test_dns_truncation(w):
    w.gateway()
    expect(dns(w, "big.test"), "rcode=0 tc=1 n=0 addrs=", "UDP answer too big")
    out = dns(w, "big.test", "A", "--tcp")
    expect_in("rcode=0 tc=0 n=120", out, "TCP fallback")
    expect_in("rcode=0 tc=0 n=120", dns(w, "big.test", "A", "--bufsize", "4096"), "EDNS")


def test_dns_policy(w):
    w.gateway("--rule", "deny@other.test")
    expect(dns(w, "other.test"), "rcode=3 tc=0 n=0 addrs=", "denied name")
    expect_in("denied dns other.test by rule deny@other.test", w.denials())
    expect(dns(w, "public.test"), "rcode=0 tc=0 n=1 addrs=" + PUB, "other names")


def test_dns_rebind(w):
    w.gateway()
    for name in ("private.test", "loop.test", "hostaddr.test"):
        expect(dns(w, name), "rcode=3 tc=0 n=0 addrs=", "rebind " + name)
    expect_in("denied dns answer private.test -> 10.99.0.10 (rebind protection)", w.denials())
    w.gateway("--net", "public,private")
    expect(dns(w, "private.test"), "rcode=0 tc=0 n=1 addrs=10.99.0.10", "allowed private")
    w.gateway("--rule", "allow@api.corp.test")
    expect(dns(w, "api.corp.test"), "rcode=0 tc=0 n=1 addrs=192.168.77.10", "allowed by name")
    expect(dns(w, "private.test"), "rcode=3 tc=0 n=0 addrs=", "other names still blocked")


def test_dns_upstreams(w):
    w.gateway("--dns", "127.0.0.2", "--dns", "127.0.0.1", "--dns-timeout", "1000")
    t0 = time.time()
    out = dns(w, "public.test")
    expect(out, "rcode=0 tc=0 n=1 addrs=" + PUB, "the second upstream after a timeout")
    if time.time() - t0 < 0.9:
        raise AssertionError("the silent upstream was not tried first")
    if w.stats()["dns_timeouts"] < 1:
        raise AssertionError("no timeout counted")


def test_dns_silent_upstream(w):
    w.gateway("--dns", "127.0.0.2", "--dns-timeout", "500")
    expect(dns(w, "public.test"), "rcode=2 tc=0 n=0 addrs=", "SERVFAIL")
    expect(w.guest("ping", GW4), "ok", "alive")


def test_dns_direct(w):
    w.gateway()
    expect(dns(w, "public.test", server=PUB2), "rcode=0 tc=0 n=1 addrs=" + PUB, "direct")
    w.gateway("--rule", "deny@" + PUB2)
    expect(dns(w, "public.test", server=PUB2), "unreachable", "direct, denied")


# --------------------------------------------------------------------------
# policy matrix (TCP connects to echo servers)


def conn(w, host, port="8000"):
    return w.guest("connect", host, port, "15")


def test_policy_public(w):
    w.gateway()
    expect(conn(w, PUB), "connected", "public")
    expect(conn(w, PUB6), "connected", "public v6")
    for a in PRIVATE + [PRIV6, METADATA]:
        expect(conn(w, a), "refused", a)
    expect(conn(w, HOSTADDR, "7000"), "refused", "the host's own public address")
    expect(conn(w, GW4, "7000"), "refused", "the host alias")
    expect_in("denied tcp %s:" % GUEST4, w.denials())
    expect_in("-> 10.99.0.10:8000 by default (egress deny)", w.denials())


def test_policy_profiles(w):
    w.gateway("--net", "public,private")
    for a in PRIVATE + [PRIV6]:
        expect(conn(w, a), "connected", "private " + a)
    expect(conn(w, METADATA), "refused", "metadata")
    expect(conn(w, HOSTADDR, "7000"), "refused", "host")
    w.gateway("--net", "public,host")
    expect(conn(w, HOSTADDR, "7000"), "connected", "host address")
    expect(conn(w, GW4, "7000"), "connected", "host alias v4")
    expect(conn(w, GW6, "7000"), "connected", "host alias v6")
    expect(conn(w, PRIVATE[0]), "refused", "private")
    w.gateway("--net", "none")
    expect(conn(w, PUB), "refused", "none")
    expect(dns(w, "public.test"), "rcode=5 tc=0 n=0 addrs=", "none: DNS refused")
    w.gateway("--net", "all")
    for a in [PUB, METADATA, PRIV6] + PRIVATE:
        expect(conn(w, a), "connected", "all " + a)
    w.gateway("--net", "public,metadata")
    expect(conn(w, METADATA), "connected", "metadata")


def test_policy_rules(w):
    w.gateway("--rule", "deny@" + PUB2)
    expect(conn(w, PUB2), "refused", "deny ip")
    expect(conn(w, PUB), "connected", "other ip")
    expect_in("by rule deny@" + PUB2, w.denials())
    w.gateway("--rule", "allow@10.99.0.0/16")
    expect(conn(w, "10.99.0.10"), "connected", "cidr")
    expect(conn(w, "192.168.77.10"), "refused", "outside the cidr")
    w.gateway("--rule", "allow@private:tcp:8000-8001")
    expect(conn(w, "10.99.0.10", "8000"), "connected", "port in range")
    expect(conn(w, "10.99.0.10", "8002"), "refused", "port outside")
    w.gateway("--rule", "allow@" + PUB, "--rule", "deny@" + PUB)
    expect(conn(w, PUB), "refused", "deny wins a tie")
    w.gateway("--net", "public,private", "--rule", "deny@10.99.0.0/16")
    expect(conn(w, "10.99.0.10"), "refused", "cidr deny over group allow")
    expect(conn(w, "192.168.77.10"), "connected", "the rest of the group")
    w.gateway("--rule", "deny@10.0.0.0/8", "--rule", "allow@10.99.0.10")
    expect(conn(w, "10.99.0.10"), "connected", "more specific allow")
    w.gateway("--rule", "deny@[%s]" % PUB6)
    expect(conn(w, PUB6), "refused", "v6 address rule")
    w.gateway("--rule", "deny@public:icmp")
    expect(w.guest("ping", PUB), "unreachable", "icmp denied")
    expect(conn(w, PUB), "connected", "tcp still allowed")
    w.gateway("--rule", "deny@public:udp:8001")
    expect(w.guest("udp", PUB, "8001"), "unreachable", "udp port denied")
    w.gateway("--default-egress", "allow", "--rule", "deny@private")
    expect(conn(w, METADATA), "connected", "default allow")
    expect(conn(w, PRIVATE[1]), "refused", "deny group")


def test_policy_domains(w):
    w.gateway("--rule", "allow@api.corp.test")
    expect(conn(w, "192.168.77.10"), "refused", "before resolving")
    expect(dns(w, "api.corp.test"), "rcode=0 tc=0 n=1 addrs=192.168.77.10", "resolve")
    expect(conn(w, "192.168.77.10"), "connected", "after resolving")
    w.gateway("--rule", "allow@*.corp.test")
    expect(dns(w, "api.corp.test"), "rcode=0 tc=0 n=1 addrs=192.168.77.10", "resolve")
    expect(conn(w, "192.168.77.10"), "connected", "suffix")
    w.gateway("--rule", "deny@*.test:tcp")
    expect(dns(w, "public.test"), "rcode=0 tc=0 n=1 addrs=" + PUB, "name allowed for DNS")
    expect(conn(w, PUB), "refused", "suffix deny on tcp")
    expect(w.guest("udp", PUB, "8001"), "ok", "udp still allowed")


# --------------------------------------------------------------------------
# published ports


def test_ports(w):
    w.gateway("-p", "127.0.0.1:9000:5000", "-p", "127.0.0.1:9001:5001/udp",
              "-p", "[::1]:9002:5000")
    srv = subprocess.Popen(["ip", "netns", "exec", w.g, PY, NETUTIL, "tcp-server", "5000"],
                           stdout=subprocess.PIPE, text=True)
    srv.stdout.readline()
    usrv = subprocess.Popen(["ip", "netns", "exec", w.g, PY, NETUTIL, "udp-server", "5001"],
                            stdout=subprocess.PIPE, text=True)
    usrv.stdout.readline()
    try:
        expect(w.run(w.h, "fetch", "127.0.0.1", "9000", "20000000"), "ok", "into the guest")
        expect(w.run(w.h, "send", "127.0.0.1", "9000", "20000000"), "ok", "from the guest")
        expect(w.run(w.h, "halfclose", "127.0.0.1", "9000"), "ok", "half-close")
        expect(w.run(w.h, "fetch", "::1", "9002", "1000000"), "ok", "v6 bind, guest v6")
        expect(w.run(w.h, "udp", "127.0.0.1", "9001"), "ok", "udp")
    finally:
        srv.kill()
        usrv.kill()
    w.gateway("-p", "127.0.0.1:9000:5000", "--rule", "deny:ingress@loopback")
    expect(w.run(w.h, "connect", "127.0.0.1", "9000", "5"), "reset", "ingress denied")
    expect_in("denied ingress tcp 127.0.0.1:", w.denials())


# --------------------------------------------------------------------------
# hostile guests


def test_malformed_frames(w):
    w.gateway()
    expect(w.guest("garbage", "tap0", "3000"), "ok")
    s = w.stats()
    if s["rx_malformed"] < 100:
        raise AssertionError("malformed frames not counted: %r" % s)
    expect(w.guest("ping", GW4), "ok", "alive")
    expect(w.guest("fetch", PUB, "8000", "1000000"), "ok", "still working")


def test_flow_limit(w):
    w.gateway("--max-tcp", "64")
    out = w.guest("many", PUB, "8000", "100")
    expect(out, "connected 64 refused 36", "the limit")
    if w.stats()["tcp_limit_rst"] < 36:
        raise AssertionError("limit RSTs not counted")
    wait_for(lambda: w.stats()["tcp_active"] == 0, "flows to close", 20)
    expect(w.guest("fetch", PUB, "8000", "1000000"), "ok", "after the flood")


def test_syn_flood(w):
    w.gateway("--max-tcp", "64")
    expect(w.guest("synflood", PUB, "8000", "3000"), "ok")
    wait_for(lambda: w.stats()["tcp_active"] < 64, "flows to drain", 30)
    expect(w.guest("fetch", PUB, "8000", "1000000"), "ok", "after the SYN flood")
    if not w.alive():
        raise AssertionError("the gateway died")


GROUPS = {
    "link": [test_ping_gateway, test_ra_and_dad, test_ping_remote, test_links],
    "tcp": [test_tcp_100mb, test_tcp_concurrent, test_tcp_halfclose, test_tcp_reset,
            test_tcp_refused_unreachable, test_tcp_no_route, test_tcp_ipv6, test_tcp_loss,
            test_tcp_guest_stops_reading],
    "udp": [test_udp_echo, test_udp_errors, test_udp_flood],
    "dns": [test_dns_basic, test_dns_truncation, test_dns_policy, test_dns_rebind,
            test_dns_upstreams, test_dns_silent_upstream, test_dns_direct],
    "policy": [test_policy_public, test_policy_profiles, test_policy_rules, test_policy_domains],
    "ports": [test_ports],
    "hostile": [test_malformed_frames, test_flow_limit, test_syn_flood],
}


def can_run():
    if os.geteuid() != 0:
        return "not root"
    name = "msbprobe%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", name], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        return "cannot create a network namespace: " + r.stdout.strip()
    subprocess.run(["ip", "netns", "del", name])
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--harness", required=True)
    ap.add_argument("group", choices=sorted(GROUPS) + ["all"])
    ap.add_argument("-k", help="only tests whose name contains this")
    a = ap.parse_args()
    why = can_run()
    if why:
        print("SKIP: network namespace tests need root and ip netns: " + why)
        sys.exit(77)
    tests = [t for g in (sorted(GROUPS) if a.group == "all" else [a.group]) for t in GROUPS[g]]
    if a.k:
        tests = [t for t in tests if a.k in t.__name__]
    w = World(a.harness)
    passed = failed = 0
    try:
        for t in tests:
            t0 = time.time()
            try:
                t(w)
                if not w.alive():
                    raise AssertionError("the gateway died")
                passed += 1
                print("PASS %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
            except Exception as e:  # noqa: BLE001 -- report every failure and go on
                failed += 1
                print("FAIL %s: %s" % (t.__name__, e), flush=True)
                if w.gw is not None:
                    print("  gateway log: " + w.denials()[-1500:].replace("\n", "\n    "))
                w.stop_gateway()
    finally:
        w.close()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
