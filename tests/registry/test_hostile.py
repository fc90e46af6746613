# SPDX-License-Identifier: Apache-2.0
"""Bad input: tampered blobs, corrupt gzip, hostile layers (escaping paths,
writes through symlinks, hard links out of the image, devices, absurd
sizes and counts), a registry that stalls, a full disk. Each failure names
the image and the layer, leaves the cache consistent, and the next pull
succeeds."""
import hashlib
import json
import os
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import RawLayout, TarLayer, cat, debugfs, exists, push_layers, sha256

EXIT_IMAGE_INVALID = 122
EXIT_REGISTRY = 112


def assert_cache_clean(msb):
    """No half-published blob: nothing left in tmp/ but resumable parts,
    and every blob hashes to its name."""
    for name in msb.cache_files("tmp"):
        assert name.endswith(".part"), f"leftover in tmp/: {name}"
    blobs = msb.home / "cache" / "blobs" / "sha256"
    for p in blobs.iterdir() if blobs.exists() else []:
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name, f"bad blob {p.name}"


def test_tampered_blob(msb, registry, tmp_path):
    layer = TarLayer().file("data", os.urandom(50000)).bytes()
    ref = push_layers(registry, tmp_path, "test/tamper", "t", [layer])
    digest = layer_digests(ref)[0][0]
    blob = registry.blob_file(digest)
    good = blob.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    blob.write_bytes(bytes(bad))

    r = msb.run("pull", ref, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID, r.err
    assert "digest mismatch" in r.err and "layer 1/1" in r.err and ref in r.err
    assert digest.split(":")[1] not in msb.cache_files("blobs/sha256")
    assert msb.cache_files("rootfs") == []
    assert_cache_clean(msb)

    blob.write_bytes(good)
    msb.run("pull", ref, check=True)
    assert len(cat(msb.rootfs(ref), "/data")) > 0


def test_truncated_gzip(msb, registry, tmp_path):
    layer = TarLayer().file("data", os.urandom(200000)).bytes()
    lay = RawLayout(tmp_path / "trunc")
    gz = __import__("gzip").compress(layer)
    d = lay.blob(gz[: len(gz) // 2])
    d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    cfg = lay.blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                               "rootfs": {"type": "layers",
                                          "diff_ids": [sha256(layer)]}}).encode())
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cfg, "layers": [d]}).encode()
    md = lay.blob(m)
    md["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    lay.tag("t", md)
    ref = registry.push(lay.path, "t", "test/trunc")

    r = msb.run("pull", ref, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID, r.err
    assert "layer 1/1" in r.err
    assert msb.cache_files("rootfs") == []
    assert_cache_clean(msb)

    # fixed upstream: the next pull works
    ref = push_layers(registry, tmp_path, "test/trunc", "t", [layer])
    msb.run("pull", ref, check=True)
    msb.rootfs(ref)


def hostile(msb, registry, tmp_path, repo, layers, *needles):
    ref = push_layers(registry, tmp_path, repo, "h", layers)
    r = msb.run("pull", ref, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID, r.err
    for n in needles:
        assert n in r.err, f"{n!r} not in {r.err!r}"
    assert msb.cache_files("rootfs") == []
    assert_cache_clean(msb)
    return ref


def test_escaping_paths(msb, registry, tmp_path):
    canary = tmp_path / "escaped"
    rel = os.path.relpath(canary, "/")
    hostile(msb, registry, tmp_path, "test/escape",
            [TarLayer().file("ok", "fine").file("../../../../../../../" + rel, "x").bytes()],
            "layer 1/1", "escapes the image")
    assert not canary.exists()
    hostile(msb, registry, tmp_path, "test/escape2",
            [TarLayer().file("a", "x").add("b", type=tarfile.LNKTYPE,
                                            linkname="../../etc/shadow").bytes()],
            "hard link target", "escapes the image")


def test_absolute_paths_stay_inside(msb, registry, tmp_path):
    ref = push_layers(registry, tmp_path, "test/abs", "a",
                      [TarLayer().file("/etc/abs", "inside").bytes()])
    msb.run("pull", ref, check=True)
    assert cat(msb.rootfs(ref), "/etc/abs") == "inside"
    assert not Path("/etc/abs").exists() or Path("/etc/abs").read_text() != "inside"


def test_write_through_symlink(msb, registry, tmp_path):
    target = tmp_path / "victim"
    target.mkdir()
    l1 = TarLayer().add("evil", type=tarfile.SYMTYPE, linkname=str(target)).bytes()
    l2 = TarLayer().file("evil/pwned", "x").bytes()
    hostile(msb, registry, tmp_path, "test/symlink", [l1, l2], "layer 2/2", "/evil/pwned",
            "not a directory")
    assert list(target.iterdir()) == []
    # the same within one layer
    hostile(msb, registry, tmp_path, "test/symlink1",
            [TarLayer().add("e", type=tarfile.SYMTYPE, linkname="/etc").file("e/x", "y").bytes()],
            "layer 1/1", "not a directory")


def test_hardlink_to_missing(msb, registry, tmp_path):
    hostile(msb, registry, tmp_path, "test/hl",
            [TarLayer().add("x", type=tarfile.LNKTYPE, linkname="nowhere").bytes()],
            "layer 1/1", "hard link target missing")


def test_devices_are_entries_only(msb, registry, tmp_path):
    dev = TarLayer().add("dev/evil-null", type=tarfile.CHRTYPE, devmajor=1, devminor=3,
                         mode=0o666).add("dev/evil-disk", type=tarfile.BLKTYPE, devmajor=8,
                                         devminor=0).add("run/fifo", type=tarfile.FIFOTYPE)
    ref = push_layers(registry, tmp_path, "test/dev", "d", [dev.bytes()])
    msb.run("pull", ref, check=True)
    disk = msb.rootfs(ref)
    out = debugfs(disk, 'stat "/dev/evil-null"')
    assert "Type: character special" in out and "01:03" in out
    assert "Type: block special" in debugfs(disk, 'stat "/dev/evil-disk"')
    # nothing was created on the host
    found = subprocess.run(["find", str(msb.home), "(", "-type", "b", "-o", "-type", "c", "-o",
                            "-type", "p", ")"], capture_output=True, text=True).stdout
    assert found == ""


def test_limits(msb, registry, tmp_path):
    many = TarLayer()
    for i in range(20):
        many.file(f"f{i}", "x")
    ref = push_layers(registry, tmp_path, "test/many", "m", [many.bytes()])
    r = msb.run("pull", "--max-entries", "10", ref, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID and "entries" in r.err, r.err
    assert_cache_clean(msb)
    msb.run("pull", ref, check=True)  # the default limit takes it

    big = TarLayer().file("big", b"z" * 5000).bytes()
    ref = push_layers(registry, tmp_path, "test/big", "b", [big])
    r = msb.run("pull", "--max-file-size", "4K", ref, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID and "over the limit" in r.err, r.err
    r = msb.run("pull", "--max-size", "4K", ref, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID, r.err


def forge_size(tar, name, size):
    """Rewrites the size field of member name's ustar header (a lie)."""
    data = bytearray(tar)
    off = 0
    while off < len(data):
        hdr = data[off:off + 512]
        if hdr[:len(name)] == name.encode() and hdr[len(name)] == 0:
            field = b"%011o\0" % size if size < 8 ** 11 else b"\x80" + size.to_bytes(11, "big")
            data[off + 124:off + 136] = field
            data[off + 148:off + 156] = b" " * 8
            chk = sum(data[off:off + 512])
            data[off + 148:off + 156] = b"%06o\0 " % chk
            return bytes(data)
        size_field = hdr[124:136]
        n = int(size_field.strip(b"\0 ") or b"0", 8) if size_field[0] != 0x80 else 0
        off += 512 + (n + 511) // 512 * 512
    raise KeyError(name)


def test_absurd_sizes(msb, registry, tmp_path):
    tb = TarLayer()
    tb.tar.format = tarfile.USTAR_FORMAT
    plain = tb.file("small", "tiny").bytes()
    hostile(msb, registry, tmp_path, "test/huge",
            [forge_size(plain, "small", 1 << 40)], "layer 1/1", "over the limit")
    hostile(msb, registry, tmp_path, "test/short",
            [forge_size(plain, "small", 1 << 20)], "layer 1/1")


class StallServer:
    """A registry that serves one image, and stalls in the middle of the
    layer until told to behave; it honours Range."""

    def __init__(self, layer):
        self.layer = layer
        self.stall = True
        self.ranges = []
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}).encode()
        self.blobs = {sha256(layer): layer, sha256(cfg): cfg}
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(cfg), "size": len(cfg)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256(layer), "size": len(layer)}]}).encode()
        self.release = threading.Event()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def handle(self, h):
        if h.path == "/v2/":
            return self.send(h, 200, b"{}", "application/json")
        if "/manifests/" in h.path:
            return self.send(h, 200, self.manifest, "application/vnd.oci.image.manifest.v1+json")
        digest = h.path.rsplit("/", 1)[1]
        data = self.blobs.get(digest)
        if data is None:
            return self.send(h, 404, b"{}", "application/json")
        start = 0
        rng = h.headers.get("Range")
        if rng:
            self.ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0])
        h.send_response(206 if rng else 200)
        h.send_header("Content-Length", str(len(data) - start))
        if rng:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if self.stall and digest == sha256(self.layer):
            h.wfile.write(data[start:start + len(data) // 2])
            h.wfile.flush()
            self.release.wait(60)  # stalls; the client gives up first
            return
        h.wfile.write(data[start:])

    @staticmethod
    def send(h, status, body, ctype):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_stalling_registry_then_resume(msb, tmp_path):
    layer = TarLayer().file("payload", os.urandom(4 << 20)).bytes()
    srv = StallServer(layer)
    try:
        ref = f"{srv.host}/test/stall:s"
        r = msb.run("pull", "--timeout", "2s", ref, check=False, timeout=120)
        assert r.returncode == EXIT_REGISTRY, r.err
        assert "stalled" in r.err and "layer 1/1" in r.err
        assert msb.cache_files("rootfs") == []
        assert_cache_clean(msb)
        parts = msb.cache_files("tmp")
        assert len(parts) == 1 and parts[0].endswith(".part")  # kept for resuming

        srv.stall = False
        msb.run("pull", "--timeout", "10s", ref, check=True, timeout=120)
        assert srv.ranges and srv.ranges[-1].startswith("bytes=") and srv.ranges[-1] != "bytes=0-"
        assert msb.cache_files("tmp") == []
        msb.rootfs(ref)
    finally:
        srv.close()


def layer_digests(ref):
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, check=True).stdout
    return [(l["digest"], l["size"]) for l in json.loads(raw)["layers"]]


def test_corrupt_part_is_not_trusted(msb, registry, tmp_path):
    layer = TarLayer().file("payload", os.urandom(1 << 20)).bytes()
    ref = push_layers(registry, tmp_path, "test/part", "p", [layer])
    digest, size = layer_digests(ref)[0]
    (msb.home / "cache" / "tmp").mkdir(parents=True)
    (msb.home / "cache" / "tmp" / (digest.split(":")[1] + ".part")).write_bytes(
        b"\0" * (size // 2))
    r = msb.run("pull", ref, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID and "digest mismatch" in r.err, r.err
    assert_cache_clean(msb)
    assert msb.cache_files("tmp") == []  # the bad part is gone
    msb.run("pull", ref, check=True)
    msb.rootfs(ref)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk(msb, registry, tmp_path):
    layer = TarLayer().file("big", os.urandom(12 << 20)).bytes()
    ref = push_layers(registry, tmp_path, "test/full", "f", [layer], compression="none")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    try:
        from conftest import Msb

        tiny = Msb(msb.exe, small / "home")
        r = tiny.run("pull", ref, check=False)
        assert r.returncode != 0
        assert "No space left" in r.err or "no space" in r.err.lower(), r.err
        assert tiny.cache_files("rootfs") == []
        assert_cache_clean(tiny)
    finally:
        subprocess.run(["umount", str(small)], check=True)
    msb.run("pull", ref, check=True)
    msb.rootfs(ref)
