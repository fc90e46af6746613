#!/usr/bin/env python3
# Writes the seed corpora of the network fuzz targets (fuzz-net-frame,
# fuzz-dns) into corpus/<target>/. Run from anywhere:
# python3 tests/fuzz/make-net-corpus.py. The files are committed; the script
# documents how they were made. Addresses are the default pool's slot 0.
import os
import socket
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GW_MAC = bytes.fromhex("026d73000001")
GUEST_MAC = bytes.fromhex("026d73000002")
G4, W4 = socket.inet_aton("10.115.0.2"), socket.inet_aton("10.115.0.1")
G6 = socket.inet_pton(socket.AF_INET6, "fd6d:7362::2")
W6 = socket.inet_pton(socket.AF_INET6, "fd6d:7362::1")
PUB4 = socket.inet_aton("44.2.0.10")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def eth(t, payload, dst=GW_MAC):
    return dst + GUEST_MAC + struct.pack("!H", t) + payload


def ip4(proto, l4, src=G4, dst=W4, flags=0x4000):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, flags, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    if proto in (6, 17):
        ph = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        off = 16 if proto == 6 else 6
        l4 = l4[:off] + struct.pack("!H", csum(ph + l4)) + l4[off + 2:]
    elif proto == 1:
        l4 = l4[:2] + struct.pack("!H", csum(l4)) + l4[4:]
    return eth(0x0800, h + l4)


def ip6(nh, l4, src=G6, dst=W6, hop=64):
    ph = src + dst + struct.pack("!IxxxB", len(l4), nh)
    if nh == 58:
        l4 = l4[:2] + struct.pack("!H", csum(ph + l4)) + l4[4:]
    elif nh in (6, 17):
        off = 16 if nh == 6 else 6
        l4 = l4[:off] + struct.pack("!H", csum(ph + l4)) + l4[off + 2:]
    return eth(0x86dd, struct.pack("!IHBB", 0x60000000, len(l4), nh, hop) + src + dst + l4)


def tcp(sport, dport, flags, seq=1000, ack=0, opts=b"", data=b""):
    off = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 64240, 0, 0) + \
        opts + data


def udp(sport, dport, data):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def dns_query(name, qtype=1, edns=None, qid=0x4242):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return q


def frames():
    syn_opts = bytes([2, 4, 0x05, 0xb4, 4, 2, 8, 10]) + b"\0" * 8 + bytes([1, 3, 3, 7])
    yield "arp-request", eth(0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
                                                GUEST_MAC, G4, b"\0" * 6, W4),
                             dst=b"\xff" * 6)
    yield "arp-gratuitous", eth(0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
                                                   GUEST_MAC, G4, b"\0" * 6, G4),
                                dst=b"\xff" * 6)
    yield "ping4-gw", ip4(1, struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"ping")
    yield "ping4-public", ip4(1, struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"ping", dst=PUB4)
    yield "ping6-gw", ip6(58, struct.pack("!BBHHH", 128, 0, 0, 7, 1) + b"ping")
    ns = struct.pack("!BBHI", 135, 0, 0, 0) + W6 + bytes([1, 1]) + GUEST_MAC
    yield "ndp-ns", ip6(58, ns, hop=255)
    yield "ndp-ns-dad", ip6(58, struct.pack("!BBHI", 135, 0, 0, 0) + G6, src=b"\0" * 16, hop=255)
    yield "ndp-rs", ip6(58, struct.pack("!BBHI", 133, 0, 0, 0) + bytes([1, 1]) + GUEST_MAC,
                        dst=socket.inet_pton(socket.AF_INET6, "ff02::2"), hop=255)
    yield "mld-hbh", ip6(0, bytes([58, 0, 5, 2, 0, 0, 1, 0]) + bytes([143, 0, 0, 0, 0, 0, 0, 0]),
                         dst=socket.inet_pton(socket.AF_INET6, "ff02::16"), hop=1)
    yield "tcp-syn-public", ip4(6, tcp(40000, 443, 0x02, opts=syn_opts), dst=PUB4)
    yield "tcp-syn-gw-dns", ip4(6, tcp(40001, 53, 0x02, opts=syn_opts))
    yield "tcp-ack-stray", ip4(6, tcp(40002, 80, 0x10, ack=5), dst=PUB4)
    yield "tcp-rst", ip4(6, tcp(40003, 80, 0x04), dst=PUB4)
    yield "tcp6-syn", ip6(6, tcp(40004, 80, 0x02, opts=syn_opts),
                          dst=socket.inet_pton(socket.AF_INET6, "2a00:44:2::10"))
    yield "udp-dns-gw", ip4(17, udp(40005, 53, dns_query("example.com")))
    yield "udp-dns-gw-edns", ip4(17, udp(40006, 53, dns_query("example.com", 28, 1232)))
    yield "udp6-dns-gw", ip6(17, udp(40007, 53, dns_query("example.com", 28)))
    yield "udp-public", ip4(17, udp(40008, 9999, b"hello"), dst=PUB4)
    yield "udp-mdns", ip4(17, udp(5353, 5353, b"x"), dst=socket.inet_aton("224.0.0.251"))
    yield "ip4-fragment", ip4(17, udp(1, 2, b"frag"), flags=0x2000)
    yield "ip6-fragment", ip6(44, bytes([17, 0, 0, 1, 0, 0, 0, 1]) + udp(1, 2, b"frag"))
    yield "bad-ihl", eth(0x0800, bytes([0x4f]) + b"\0" * 30)
    yield "bad-total", eth(0x0800, struct.pack("!BBH", 0x45, 0, 9000) + b"\0" * 40)
    yield "vlan", eth(0x8100, b"\0" * 46)
    yield "short", GW_MAC + GUEST_MAC


def dns_msgs():
    yield "query", dns_query("www.example.com")
    yield "query-edns", dns_query("www.example.com", 28, 4096)
    ans = bytes.fromhex("123481800001000300000000") + b"\x03www\x07example\x03com\x00" + \
        bytes.fromhex("00010001") + \
        bytes.fromhex("c00c0005000100000e100002c010") + \
        bytes.fromhex("c010000100010000010000045db8d822") + \
        bytes.fromhex("c010001c000100000e100010") + bytes(range(16))
    yield "answer", ans
    yield "loop", bytes.fromhex("000100000001000000000000c00c00010001")
    yield "forward", bytes.fromhex("000100000001000000000000c01400010001") + b"\0" * 8
    long = b"".join(bytes([63]) + b"a" * 63 for _ in range(4)) + b"\0"
    yield "long-name", bytes.fromhex("000100000001000000000000") + long + b"\0\1\0\1"
    yield "nxdomain", bytes.fromhex("beef81830001000000000000") + b"\x04nope\x04test\x00\x00\x01\x00\x01"


def write(target, items):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in items:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("fuzz-net-frame", frames())
write("fuzz-dns", dns_msgs())
