#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Servers and clients for the gateway tests, run inside the test network
namespaces with `ip netns exec NS python3 netutil.py ROLE ARGS...`.

Servers (they print "ready" once listening, then serve until killed):
  tcp-server PORT per connection, the first line is a command:
                    "source N"  -> N bytes of a fixed pseudo-random stream, then close
                    "sink"      -> read to EOF, answer the sha256 hex, close
                    "echo"      -> echo until EOF, then shut down writing
                    "hold"      -> read and discard forever (never closes)
  udp-server PORT [ADDR...]  echoes datagrams (from the address they came to)
  dns-server PORT ADDR [--silent]  a tiny authoritative server for the zone "test"
                  (UDP and TCP) on ADDR; --silent never answers

Clients (print one result line, exit 0 on success):
  fetch HOST PORT N           sha256 of N bytes from "source"
  send HOST PORT N            sends N bytes to "sink", prints the server's sha256
  concurrent HOST PORT K N    K connections at once, each fetches N bytes; prints "ok K"
  halfclose HOST PORT         sends, shuts writing, reads the echo to EOF
  connect HOST PORT [TIMEOUT] prints "connected", "refused", "reset", "unreachable" or "timeout"
  udp HOST PORT [COUNT]       echo round trips; prints "ok", "refused", "unreachable" or "timeout"
  udpflood HOST PORT K        K datagrams from K source ports (no answers awaited)
  dns SERVER NAME TYPE [--tcp] [--bufsize N]   prints "rcode=N tc=0|1 addrs=a,b"
  ping HOST [COUNT]           ICMP echo through a raw socket; prints "ok", "unreachable" or "timeout"
  stream HOST PORT SECONDS    source stream for SECONDS; prints bytes/s
  reset HOST PORT             asks the server to reset; prints "reset" or "eof"
  abort HOST PORT             resets a connection; prints "ok" if the server saw it
  many HOST PORT K            K connections held open; prints "connected A refused B"
  synflood HOST PORT N        N raw SYNs from random ports (the guest's address)
  garbage IFACE N             malformed and random frames on IFACE
"""
import errno
import hashlib
import os
import random
import select
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 16
RESETS = [0]
# What an ICMP unreachable or prohibited makes of a socket call.
UNREACHABLE = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES)
IP_RECVERR, IPV6_RECVERR = 11, 25  # <linux/in.h>, <linux/in6.h>; not in Python's socket


def stream_bytes(n):
    """A deterministic stream of n bytes, in chunks."""
    rnd = random.Random(n)
    block = bytes(rnd.getrandbits(8) for _ in range(CHUNK))
    sent = 0
    while sent < n:
        k = min(CHUNK, n - sent)
        yield block[:k]
        sent += k


def stream_sha(n):
    h = hashlib.sha256()
    for b in stream_bytes(n):
        h.update(b)
    return h.hexdigest()


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def readline(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            break
        buf += c
    return buf.decode().strip()


# --------------------------------------------------------------------------
# servers


def tcp_conn(conn):
    try:
        cmd = readline(conn).split()
        if not cmd:
            return
        if cmd[0] == "source":
            for b in stream_bytes(int(cmd[1])):
                conn.sendall(b)
        elif cmd[0] == "sink":
            h = hashlib.sha256()
            while True:
                b = conn.recv(CHUNK)
                if not b:
                    break
                h.update(b)
            conn.sendall(h.hexdigest().encode() + b"\n")
        elif cmd[0] == "echo":
            while True:
                b = conn.recv(CHUNK)
                if not b:
                    break
                conn.sendall(b)
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)
        elif cmd[0] == "hold":
            try:
                while conn.recv(CHUNK):
                    pass
            except ConnectionResetError:
                RESETS[0] += 1
        elif cmd[0] == "resets":
            conn.sendall(b"%d\n" % RESETS[0])
        elif cmd[0] == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif cmd[0] == "stream":
            block = b"x" * CHUNK
            end = time.time() + float(cmd[1])
            while time.time() < end:
                conn.sendall(block)
    except OSError:
        pass
    finally:
        conn.close()


def serve_tcp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(512)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()


def serve_udp(port, addrs):
    """Echo; one socket per address, so that answers leave from it."""
    socks = []
    for a in addrs or ["::"]:
        s = socket.socket(family_of(a), socket.SOCK_DGRAM)
        if a == "::":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((a, port))
        socks.append(s)
    print("ready", flush=True)
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)


# The zone "test": name -> list of (type, rdata bytes)
def zone():
    z = {
        "public.test": [(1, socket.inet_aton("44.2.0.10")),
                        (28, socket.inet_pton(socket.AF_INET6, "2a00:44:2::10"))],
        "other.test": [(1, socket.inet_aton("44.2.0.11"))],
        "private.test": [(1, socket.inet_aton("10.99.0.10"))],
        "loop.test": [(1, socket.inet_aton("127.0.0.1"))],
        "hostaddr.test": [(1, socket.inet_aton("44.1.0.1"))],
        "api.corp.test": [(1, socket.inet_aton("192.168.77.10"))],
        "big.test": [(1, bytes([44, 3, i // 250, i % 250 + 1])) for i in range(120)],
    }
    return z


def dns_name(msg, off):
    labels = []
    while True:
        ln = msg[off]
        if ln == 0:
            return ".".join(labels), off + 1
        labels.append(msg[off + 1:off + 1 + ln].decode().lower())
        off += 1 + ln


def dns_answer(query, z):
    qid, flags, qd = struct.unpack("!HHH", query[:6])
    name, off = dns_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[off:off + 4])
    question = query[12:off + 4]
    records = [r for r in z.get(name, []) if r[0] == qtype]
    rcode = 0 if name in z else 3
    hdr = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(records), 0, 0)
    body = b""
    for t, rdata in records:
        body += struct.pack("!HHHIH", 0xc00c, t, 1, 300, len(rdata)) + rdata
    return hdr + question + body


def serve_dns(port, addr, silent):
    z = zone()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, port))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, port))
    t.listen(64)
    print("ready", flush=True)
    while True:
        r, _, _ = select.select([u, t], [], [])
        if u in r:
            q, peer = u.recvfrom(65535)
            if silent:
                continue
            a = dns_answer(q, z)
            limit = 512
            # honour EDNS: an OPT record in the additional section
            if struct.unpack("!H", q[10:12])[0] and len(q) >= 11 + 11:
                limit = max(512, struct.unpack("!H", q[-8:-6])[0])
            if len(a) > limit:
                a = a[:2] + bytes([a[2] | 0x02, a[3]]) + a[4:6] + b"\0\0\0\0\0\0" + \
                    a[12:12 + len(q) - 12 - (11 if struct.unpack("!H", q[10:12])[0] else 0)]
            u.sendto(a, peer)
        if t in r:
            c, _ = t.accept()
            try:
                c.settimeout(5)
                n = struct.unpack("!H", c.recv(2, socket.MSG_WAITALL))[0]
                q = c.recv(n, socket.MSG_WAITALL)
                if not silent:
                    a = dns_answer(q, z)
                    c.sendall(struct.pack("!H", len(a)) + a)
            except OSError:
                pass
            c.close()


# --------------------------------------------------------------------------
# clients

# How long a bulk transfer may wait for progress. Generous: under simulated
# loss the guest recovers one segment per round trip and its retransmission
# timer backs off (no SACK: docs/network.md, "Not done yet"); the transfer
# must still finish intact.
BULK_TIMEOUT = 120


def connect(host, port, timeout=10):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def fetch(host, port, n):
    s = connect(host, port, BULK_TIMEOUT)
    s.sendall(b"source %d\n" % n)
    h = hashlib.sha256()
    got = 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        got += len(b)
    s.close()
    return got, h.hexdigest()


def send(host, port, n):
    s = connect(host, port, BULK_TIMEOUT)
    s.sendall(b"sink\n")
    for b in stream_bytes(n):
        s.sendall(b)
    s.shutdown(socket.SHUT_WR)
    r = readline(s)
    s.close()
    return r


def dns_query(server, name, qtype, tcp=False, bufsize=None):
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if bufsize else 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", {"A": 1, "AAAA": 28, "TXT": 16}[qtype], 1)
    if bufsize:
        q += b"\0" + struct.pack("!HHIH", 41, bufsize, 0, 0)
    if tcp:
        s = socket.socket(family_of(server), socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect((server, 53))
        s.sendall(struct.pack("!H", len(q)) + q)
        n = struct.unpack("!H", s.recv(2, socket.MSG_WAITALL))[0]
        a = s.recv(n, socket.MSG_WAITALL)
        s.close()
    else:
        s = socket.socket(family_of(server), socket.SOCK_DGRAM)
        s.settimeout(15)
        s.connect((server, 53))
        s.send(q)
        a = s.recv(65535)
    assert struct.unpack("!H", a[:2])[0] == qid
    flags, qd, an = struct.unpack("!HHH", a[2:8])
    off = 12
    for _ in range(qd):
        _, off = dns_name(a, off)
        off += 4
    addrs = []
    for _ in range(an):
        if a[off] & 0xc0 == 0xc0:
            off += 2
        else:
            _, off = dns_name(a, off)
        t, _, _, ln = struct.unpack("!HHIH", a[off:off + 10])
        rdata = a[off + 10:off + 10 + ln]
        off += 10 + ln
        if t == 1:
            addrs.append(socket.inet_ntoa(rdata))
        elif t == 28:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
    return "rcode=%d tc=%d n=%d addrs=%s" % (flags & 15, (flags >> 9) & 1, an,
                                              ",".join(addrs[:4]))


def ping(host, count=3):
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    s.settimeout(3)
    ident = os.getpid() & 0xffff
    for seq in range(count):
        payload = b"msb-ping-%d" % seq
        hdr = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, seq)
        pkt = hdr + payload
        if not v6:
            c = 0
            data = pkt + (b"\0" if len(pkt) % 2 else b"")
            for i in range(0, len(data), 2):
                c += (data[i] << 8) + data[i + 1]
            c = (c >> 16) + (c & 0xffff)
            c += c >> 16
            pkt = hdr[:2] + struct.pack("!H", ~c & 0xffff) + hdr[4:] + payload
        s.sendto(pkt, (host, 0))
        end = time.time() + 3
        while True:
            if time.time() > end:
                return "timeout"
            try:
                r, _ = s.recvfrom(65535)
            except socket.timeout:
                return "timeout"
            if not v6:
                r = r[(r[0] & 15) * 4:]
            if r[0] == (129 if v6 else 0) and struct.unpack("!HH", r[4:8]) == (ident, seq):
                break
            if r[0] == (1 if v6 else 3):
                return "unreachable"
    return "ok"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    c = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while c >> 16:
        c = (c & 0xffff) + (c >> 16)
    return ~c & 0xffff


def synflood(host, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    src = socket.inet_aton("10.115.0.2")
    dst = socket.inet_aton(host)
    for _ in range(n):
        sport = random.randrange(1024, 65535)
        hdr = struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, 0x02,
                          65535, 0, 0)
        c = csum(src + dst + struct.pack("!BBH", 0, 6, len(hdr)) + hdr)
        s.sendto(hdr[:16] + struct.pack("!H", c) + hdr[18:], (host, 0))


def ip4(proto, payload, flags=0x4000, ihl=5, total=None, good_csum=True):
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total if total is not None else
                    20 + len(payload), 1, flags, 64, proto, 0,
                    socket.inet_aton("10.115.0.2"), socket.inet_aton("44.2.0.10"))
    if good_csum:
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ip6(nh, payload, plen=None):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload) if plen is None else plen, nh, 64,
                       socket.inet_pton(socket.AF_INET6, "fd6d:7362::2"),
                       socket.inet_pton(socket.AF_INET6, "2a00:44:2::10")) + payload


def garbage(iface, n):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    eth = b"\xff" * 6 + b"\x02\x6d\x73\x00\x00\x02"
    e4, e6, ea = eth + b"\x08\x00", eth + b"\x86\xdd", eth + b"\x08\x06"
    tcp = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 5 << 4, 2, 1000, 0, 0)
    frames = [
        eth,                                            # no ethertype
        e4 + b"\x45\x00",                               # truncated IPv4
        e4 + ip4(6, tcp, ihl=4),                        # IHL too small
        e4 + ip4(6, tcp, ihl=15),                       # IHL past the end
        e4 + ip4(6, tcp, total=4000),                   # total length past the frame
        e4 + ip4(6, tcp, good_csum=False),              # bad header checksum
        e4 + ip4(6, tcp[:12] + b"\x20" + tcp[13:]),      # TCP data offset 2
        e4 + ip4(6, tcp[:12] + b"\xf0" + tcp[13:]),      # TCP data offset past the end
        e4 + ip4(6, tcp[:10]),                          # truncated TCP
        e4 + ip4(17, struct.pack("!HHHH", 1, 2, 200, 0) + b"x" * 10),  # UDP length
        e4 + ip4(17, struct.pack("!HHHH", 1, 2, 4, 0)),  # UDP length < 8
        e4 + ip4(6, tcp[:20] + b"\x02\x09\x05\xb4"[:2] + b"\x00" * 2 + tcp[20:]),  # bad option
        e4 + ip4(17, b"frag" * 4, flags=0x2000),        # a fragment
        e6 + ip6(6, tcp, plen=3000),                    # payload length past the frame
        e6 + ip6(0, (b"\x00\x00" + b"\x00" * 6) * 9 + tcp),  # nine extension headers
        e6 + ip6(0, b"\x3b\xff" + b"\x00" * 6),          # extension header past the end
        e6 + ip6(44, b"\x11\x00\x00\x01" + b"\x00" * 4 + b"frag"),  # a fragment
        e6 + ip6(58, b"\x87"),                          # truncated ICMPv6
        ea + b"\x00\x01\x08\x00\x06",                    # truncated ARP
        e6[:6] + b"\x60",                                # 7 bytes
    ]
    for f in frames:
        try:
            s.send(f)
        except OSError:
            pass  # shorter than the kernel sends
    rnd = random.Random(1)
    for i in range(n):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 200)))
        kind = i % 3
        if kind == 0:
            f = e4 + bytes([0x45]) + body
        elif kind == 1:
            f = e6 + bytes([0x60]) + body
        else:
            f = e4 + ip4(rnd.choice([6, 17, 1]), body)
        s.send(f)
    # Frames go out asynchronously; a ping after them is ordered behind.
    time.sleep(0.5)


def main():
    role, args = sys.argv[1], sys.argv[2:]
    if role == "tcp-server":
        serve_tcp(int(args[0]))
    elif role == "udp-server":
        serve_udp(int(args[0]), args[1:])
    elif role == "dns-server":
        serve_dns(int(args[0]), args[1], "--silent" in args)
    elif role == "fetch":
        got, sha = fetch(args[0], int(args[1]), int(args[2]))
        ok = got == int(args[2]) and sha == stream_sha(int(args[2]))
        print("ok" if ok else "bad %d %s" % (got, sha))
        sys.exit(0 if ok else 1)
    elif role == "send":
        r = send(args[0], int(args[1]), int(args[2]))
        ok = r == stream_sha(int(args[2]))
        print("ok" if ok else "bad %s" % r)
        sys.exit(0 if ok else 1)
    elif role == "concurrent":
        k, n = int(args[2]), int(args[3])
        want = stream_sha(n)
        socks, results = [], []
        for _ in range(k):
            s = connect(args[0], int(args[1]), 60)
            s.setblocking(False)
            socks.append(s)
        for s in socks:
            s.sendall(b"source %d\n" % n)
        hashes = {s: hashlib.sha256() for s in socks}
        open_ = set(socks)
        end = time.time() + 120
        while open_ and time.time() < end:
            r, _, _ = select.select(list(open_), [], [], 5)
            for s in r:
                b = s.recv(1 << 16)
                if b:
                    hashes[s].update(b)
                else:
                    open_.discard(s)
                    results.append(hashes[s].hexdigest() == want)
        ok = len(results) == k and all(results)
        print("ok %d" % k if ok else "bad %d/%d" % (sum(results), k))
        sys.exit(0 if ok else 1)
    elif role == "halfclose":
        s = connect(args[0], int(args[1]))
        s.sendall(b"echo\n")
        data = os.urandom(300000)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += b
        print("ok" if got == data else "bad %d" % len(got))
        sys.exit(0 if got == data else 1)
    elif role == "connect":
        try:
            s = connect(args[0], int(args[1]), float(args[2]) if len(args) > 2 else 10)
            s.sendall(b"echo\nping")
            s.settimeout(10)
            got = s.recv(4)
            print("connected" if got == b"ping" else "reset")
        except ConnectionRefusedError:
            print("refused")
        except ConnectionResetError:
            print("reset")
        except socket.timeout:
            print("timeout")
        except OSError as e:
            print("unreachable" if e.errno in UNREACHABLE else "error %s" % e.strerror)
    elif role == "udp":
        s = socket.socket(family_of(args[0]), socket.SOCK_DGRAM)
        # Every ICMP error fails recv(), not only the hard ones (Linux
        # ignores a host unreachable on a UDP socket otherwise).
        if s.family == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        s.settimeout(3)
        s.connect((args[0], int(args[1])))
        for i in range(int(args[2]) if len(args) > 2 else 3):
            msg = b"udp-%d-" % i + os.urandom(32)
            try:
                s.send(msg)
                r = s.recv(65535)
            except socket.timeout:
                print("timeout")
                return
            except ConnectionRefusedError:
                print("refused")  # an ICMP port unreachable came back
                return
            except OSError as e:
                print("unreachable" if e.errno in UNREACHABLE else "error %s" % e.strerror)
                return
            if r != msg:
                print("bad")
                sys.exit(1)
        print("ok")
    elif role == "udpflood":
        for _ in range(int(args[2])):
            s = socket.socket(family_of(args[0]), socket.SOCK_DGRAM)
            s.sendto(b"flood", (args[0], int(args[1])))
            s.close()
        print("ok")
    elif role == "dns":
        bufsize = int(args[args.index("--bufsize") + 1]) if "--bufsize" in args else None
        try:
            print(dns_query(args[0], args[1], args[2], "--tcp" in args, bufsize))
        except socket.timeout:
            print("timeout")
        except OSError:
            print("unreachable")  # an ICMP error: the flow was denied
    elif role == "ping":
        print(ping(args[0], int(args[1]) if len(args) > 1 else 3))
    elif role == "stream":
        s = connect(args[0], int(args[1]))
        s.sendall(b"stream %s\n" % args[2].encode())
        t0, n = time.time(), 0
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            n += len(b)
        print("%d" % (n / (time.time() - t0)))
    elif role == "reset":
        s = connect(args[0], int(args[1]))
        s.sendall(b"reset\n")
        try:
            print("eof" if not s.recv(1) else "data")
        except ConnectionResetError:
            print("reset")
    elif role == "abort":
        def resets():
            c = connect(args[0], int(args[1]))
            c.sendall(b"resets\n")
            return int(readline(c))
        before = resets()
        s = connect(args[0], int(args[1]))
        s.sendall(b"hold\n")
        time.sleep(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        end = time.time() + 10
        while resets() == before and time.time() < end:
            time.sleep(0.1)
        print("ok" if resets() > before else "not seen")
    elif role == "many":
        held, refused = [], 0
        for _ in range(int(args[2])):
            try:
                s = connect(args[0], int(args[1]), 10)
                s.sendall(b"hold\n")
                held.append(s)
            except (ConnectionRefusedError, ConnectionResetError):
                refused += 1
        print("connected %d refused %d" % (len(held), refused))
    elif role == "synflood":
        synflood(args[0], int(args[1]), int(args[2]))
        print("ok")
    elif role == "garbage":
        garbage(args[0], int(args[1]))
        print("ok")
    else:
        sys.exit("unknown role " + role)


if __name__ == "__main__":
    main()
