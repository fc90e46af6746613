#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Request/response latency over one TCP connection (bench/net.sh).

  net-rr.py server PORT          echo one byte per request (prints "ready")
  net-rr.py client HOST PORT N   N round trips of 1 byte; prints the mean and
                                 the 99th percentile in microseconds
"""
import socket
import sys
import time


def server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            b = c.recv(1)
            if not b:
                break
            c.sendall(b)
        c.close()


def client(host, port, n):
    c = socket.create_connection((host, port), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(100):  # warm up
        c.sendall(b"x")
        c.recv(1)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.sendall(b"x")
        c.recv(1)
        times.append(time.perf_counter() - t0)
    c.close()
    times.sort()
    print("%.1f %.1f" % (sum(times) / n * 1e6, times[int(n * 0.99)] * 1e6))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
