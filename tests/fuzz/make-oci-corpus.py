#!/usr/bin/env python3
# Writes the seed corpora of fuzz-oci-json and fuzz-tar into
# corpus/<target>/. Run from anywhere: python3 tests/fuzz/make-oci-corpus.py
# (needs GNU tar and zstd). The files are committed; the script documents
# how they were made.
import base64
import gzip
import io
import json
import os
import subprocess
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
D = "sha256:" + "ab" * 32
D2 = "sha256:" + "cd" * 32


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def js(x):
    return json.dumps(x, separators=(",", ":"))


def json_corpus():
    t = "fuzz-oci-json"
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2,
             "size": 1234}
    oci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D,
                      "size": 100}, "layers": [layer, layer]}
    write(t, "manifest-oci", js(oci))
    docker = dict(oci, mediaType="application/vnd.docker.distribution.manifest.v2+json")
    docker["config"] = dict(oci["config"],
                            mediaType="application/vnd.docker.container.image.v1+json")
    docker["layers"] = [dict(layer,
                             mediaType="application/vnd.docker.image.rootfs.diff.tar.gzip")]
    write(t, "manifest-docker", js(docker))
    write(t, "manifest-nomediatype", js({"schemaVersion": 2, "config": oci["config"],
                                         "layers": []}))
    write(t, "manifest-foreign", js(dict(oci, layers=[dict(
        layer, mediaType="application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")])))
    write(t, "manifest-sha512", js(dict(oci, config=dict(oci["config"],
                                                         digest="sha512:" + "a" * 128))))
    write(t, "manifest-negsize", js(dict(oci, config=dict(oci["config"], size=-1))))
    write(t, "manifest-schema1", js({"schemaVersion": 1, "name": "x", "fsLayers": []}))
    plat = lambda a, v=None: dict({"os": "linux", "architecture": a}, **({"variant": v} if v else {}))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D,
                  "size": 500, "platform": plat("arm64", "v8")},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D2,
                  "size": 600, "platform": plat("amd64"),
                  "annotations": {"org.opencontainers.image.ref.name": "latest",
                                  "io.containerd.image.name": "docker.io/library/x:latest"}},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D2,
                  "size": 600, "platform": {"os": "unknown", "architecture": "unknown"}}]}
    write(t, "index-oci", js(index))
    write(t, "index-docker", js(dict(index, mediaType=(
        "application/vnd.docker.distribution.manifest.list.v2+json"))))
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
           "config": {"Env": ["PATH=/usr/bin", "A=b=c"], "Entrypoint": ["/ep"],
                      "Cmd": ["-c", "x"], "WorkingDir": "/w", "User": "1000:1000",
                      "StopSignal": "SIGTERM", "Labels": {"k": "v"}},
           "rootfs": {"type": "layers", "diff_ids": [D, D2]}, "history": [{"created_by": "x"}]}
    write(t, "config", js(cfg))
    write(t, "config-nulls", js({"config": {"Env": None, "Cmd": None, "Entrypoint": []}}))
    write(t, "config-badenv", js({"config": {"Env": ["NOEQUALS", 3]}}))
    write(t, "config-nul", '{"config":{"User":"a\\u0000b"}}')
    write(t, "meta", "msb-layer 1 " + D + " 10240 5 2 1 100 20 1 2 1\n")
    write(t, "meta-paths", ("msb-layer 1 " + D + " 10240 5 2 1 100 20 1 2 1\n").encode()
          + b"/etc/passwd\0/a/\xff\0/var/cache\0")
    write(t, "meta-bad", "msb-layer 1 sha256:zz 1 2 3 4 5 6 7 99 99\n/x\0")
    write(t, "challenge-bearer", 'Bearer realm="https://auth.docker.io/token",'
                                 'service="registry.docker.io",scope="repository:a/b:pull"')
    write(t, "challenge-basic", 'Basic realm="Registry Realm"')
    write(t, "challenge-escapes", 'bearer realm="a\\"b",  service=tok, ,scope="x"')
    write(t, "challenge-bad", 'Bearer realm="unterminated')
    write(t, "deep", "[" * 70 + "]" * 70)
    write(t, "empty", "")


def tar_of(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            ti = tarfile.TarInfo(e[0])
            kind = e[1]
            ti.mtime = 1700000000
            if kind == "file":
                ti.size = len(e[2])
                ti.mode = e[3] if len(e) > 3 else 0o644
                if len(e) > 4:
                    ti.pax_headers = e[4]
                t.addfile(ti, io.BytesIO(e[2]))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                       "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
                       "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("sym", "hard"):
                ti.linkname = e[2]
            if kind in ("chr", "blk"):
                ti.devmajor, ti.devminor = 1, 3
            ti.mode = 0o755 if kind == "dir" else 0o644
            t.addfile(ti)
    return buf.getvalue()


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                          check=True).stdout


def tar_corpus():
    t = "fuzz-tar"
    basic = tar_of([("./", "dir"), ("etc", "dir"), ("etc/hostname", "file", b"box\n"),
                    ("usr/bin/ping", "file", b"ELF", 0o4755,
                     {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}),
                    ("bin", "sym", "usr/bin"), ("usr/bin/ping6", "hard", "usr/bin/ping"),
                    ("dev/null", "chr"), ("dev/sda", "blk"), ("run/fifo", "fifo")])
    write(t, "basic.tar", basic)
    write(t, "basic.tar.gz", gzip.compress(basic, mtime=0))
    write(t, "basic.tar.zst", zstd(basic))
    wh = tar_of([("etc/.wh.passwd", "file", b""), ("var/cache/.wh..wh..opq", "file", b""),
                 (".wh..wh..opq", "file", b""), ("x/.wh..wh.plnk", "dir"),
                 ("d/.wh..", "file", b"")])
    write(t, "whiteouts.tar", wh)
    write(t, "escape.tar", tar_of([("../../etc/passwd", "file", b"x")]))
    write(t, "escape-link.tar", tar_of([("a", "hard", "../../../etc/shadow")]))
    write(t, "absolute.tar", tar_of([("/etc/abs", "file", b"x"), ("a/./b/../c", "file", b"y")]))
    write(t, "symlink-through.tar", tar_of([("evil", "sym", "/etc"),
                                            ("evil/passwd", "file", b"x")]))
    write(t, "longname-gnu.tar", tar_of([("d/" + "n" * 300, "file", b"long")],
                                        fmt=tarfile.GNU_FORMAT))
    write(t, "longname-pax.tar", tar_of([("/".join(["p" * 50] * 30), "file", b"deep")]))
    raw = bytearray(tar_of([("rawX", "file", b"z")], fmt=tarfile.USTAR_FORMAT))
    raw[3] = 0xFF  # a name that is not UTF-8
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    write(t, "rawbytes.tar", bytes(raw))
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "sparse"), "wb") as f:
            f.write(b"head")
            f.seek(1 << 20)
            f.write(b"tail")
        for fmt, name in (("gnu", "sparse-gnu.tar"), ("posix", "sparse-pax.tar")):
            out = os.path.join(d, name)
            subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", d, "-cf", out,
                            "sparse"], check=True)
            with open(out, "rb") as f:
                write(t, name, f.read())
    big = bytearray(tar_of([("huge", "file", b"tiny")], fmt=tarfile.USTAR_FORMAT))
    big[124:136] = b"77777777777\0"
    big[148:156] = b" " * 8
    big[148:156] = b"%06o\0 " % sum(big[:512])
    write(t, "huge-size.tar", bytes(big))
    gz = gzip.compress(basic, mtime=0)
    write(t, "truncated.tar.gz", gz[: len(gz) // 2])
    write(t, "not-a-tar", b"hello, world\n" * 10)
    write(t, "empty", b"")
    write(t, "zeros.tar", b"\0" * 1024)


if __name__ == "__main__":
    json_corpus()
    tar_corpus()
