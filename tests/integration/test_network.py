# SPDX-License-Identifier: Apache-2.0
"""The sandbox network end to end: a real guest behind the userspace gateway,
reaching a real HTTP server on the host only when the policy allows it, and
serving one through a published port. (No `wget -T`: Debian's busybox-static
crashes on it, on the host too.)"""
import http.server
import json
import socket
import threading
import time
import urllib.request

import pytest

from conftest import RUN_TIMEOUT


@pytest.fixture
def host_http():
    """An HTTP server on the host's loopback; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello from the host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_guest_network_is_configured(msb):
    r = msb("run", "-q", "base", "--", "sh", "-c",
            "ip -4 addr show dev eth0; ip -6 addr show dev eth0; ip route; cat /etc/resolv.conf;"
            " grep host.msb.internal /etc/hosts", text=True)
    assert r.returncode == 0, r.stderr
    assert "inet 10.115." in r.stdout
    assert "inet6 fd6d:7362:" in r.stdout
    assert "tentative" not in r.stdout
    assert "default via 10.115." in r.stdout
    assert "nameserver 10.115." in r.stdout
    assert "host.msb.internal" in r.stdout


def test_host_is_denied_by_default(msb, host_http):
    r = msb("run", "-q", "--name", "deny", "base", "--", "wget", "-q", "-O-",
            f"http://host.msb.internal:{host_http}/", text=True)
    assert r.returncode != 0
    assert "hello from the host" not in r.stdout


def test_host_is_reachable_with_allow_host(msb, host_http):
    r = msb("run", "-q", "--net-rule", "allow@host", "base", "--", "wget", "-q",
            "-O-", f"http://host.msb.internal:{host_http}/", text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from the host\n"


def test_denials_are_logged(msb, host_http):
    assert msb("create", "-q", "--name", "lg", "base").returncode == 0
    try:
        msb("exec", "lg", "--", "wget", "-q", "-O-",
            f"http://host.msb.internal:{host_http}/")
        r = msb("logs", "--source", "system", "lg", text=True)
        assert "denied tcp" in r.stdout and f":{host_http}" in r.stdout
        status = json.loads(msb("inspect", "lg", text=True).stdout)
        assert status["network"]["denied_egress"] >= 1
    finally:
        msb("rm", "-f", "lg")


def test_published_port_serves_a_guest_http_server(msb):
    port = free_port()
    r = msb("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:8080", "base", "--", "sh",
            "-c", "mkdir -p /www && echo hello from the guest > /www/index.html && "
                  "exec httpd -f -p 8080 -h /www", text=True)
    assert r.returncode == 0, r.stderr
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
                    body = resp.read()
                break
            except OSError:
                time.sleep(0.3)
        assert body == b"hello from the guest\n"
    finally:
        msb("rm", "-f", "web")


def test_published_port_in_use_is_a_clear_error(msb):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = msb("run", "-p", f"127.0.0.1:{port}:80", "base", "--", "true", text=True)
    assert r.returncode == 114, r.stderr
    assert "port" in r.stderr


def test_no_net_has_only_loopback(msb):
    r = msb("run", "-q", "--no-net", "base", "--", "sh", "-c", "ls /sys/class/net", text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["lo"]


def test_bad_network_options(msb):
    for args in (["--net-rule", "maybe@host"], ["--net", "nowhere"], ["-p", "99999:1"],
                 ["--dns-nameserver", "not-an-ip"], ["--net-default-egress", "sometimes"]):
        r = msb("run", *args, "base", "--", "true", text=True)
        assert r.returncode == 125, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
