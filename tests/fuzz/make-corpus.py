#!/usr/bin/env python3
# Writes the small seed corpora of the fuzz targets into corpus/<target>/.
# Run from anywhere: python3 tests/fuzz/make-corpus.py. The files are
# committed; the script only documents how they were made.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def head(major, v):
    if v < 24:
        return bytes([major << 5 | v])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if v < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, v)
    raise ValueError(v)


class Tag:
    def __init__(self, n, item):
        self.n, self.item = n, item


class Raw:
    def __init__(self, b):
        self.b = b


def enc(x):
    if isinstance(x, Raw):
        return x.b
    if x is False:
        return b"\xf4"
    if x is True:
        return b"\xf5"
    if x is None:
        return b"\xf6"
    if isinstance(x, int):
        return head(0, x) if x >= 0 else head(1, -1 - x)
    if isinstance(x, float):
        return b"\xfb" + struct.pack(">d", x)
    if isinstance(x, bytes):
        return head(2, len(x)) + x
    if isinstance(x, str):
        b = x.encode()
        return head(3, len(b)) + b
    if isinstance(x, list):
        return head(4, len(x)) + b"".join(enc(i) for i in x)
    if isinstance(x, dict):
        return head(5, len(x)) + b"".join(enc(k) + enc(v) for k, v in x.items())
    if isinstance(x, Tag):
        return head(6, x.n) + enc(x.item)
    raise TypeError(x)


def msg(t, p, v=1):
    return enc({"v": v, "t": t, "p": p})


def frame(id_, flags, body):
    return struct.pack(">IIB", 5 + len(body), id_, flags) + body


REQ = {
    "argv": ["/bin/sh", "-c", "echo hi"],
    "env": ["PATH=/bin", "A="],
    "cwd": "/tmp",
    "user": "1000:1000",
    "tty": True,
    "stdin": True,
    "rows": 50,
    "cols": 132,
    "rlimits": [{"resource": "nofile", "soft": 1024, "hard": "unlimited"}],
}

BODIES = {
    "ready": msg("core.ready", {"version": 1, "agent_version": "0.1.0",
                                "boot_time_ns": 123456789, "ready_time_ns": 987654321}),
    "ping": msg("core.ping", {}),
    "shutdown": msg("core.shutdown", {}),
    "error": msg("core.error", {"kind": "unsupported_message_type", "message": "no",
                                "offending_type": "core.fs.request"}),
    "request": msg("core.exec.request", REQ),
    "request-min": msg("core.exec.request", {"argv": ["true"]}),
    "started": msg("core.exec.started", {"pid": 42}),
    "stdin": msg("core.exec.stdin", {"data": b"input\n"}),
    "stdin-eof": msg("core.exec.stdin", {"data": b""}),
    "ack": msg("core.exec.stdin.ack", {"bytes": 6}),
    "stdout": msg("core.exec.stdout", {"data": b"hi\n"}),
    "stderr": msg("core.exec.stderr", {"data": b"oops\n"}),
    "exited": msg("core.exec.exited", {"code": -1, "signal": 9}),
    "failed": msg("core.exec.failed", {"kind": "not_found", "errno": 2,
                                       "message": "execve failed", "stage": "exec"}),
    "resize": msg("core.exec.resize", {"rows": 24, "cols": 80}),
    "signal": msg("core.exec.signal", {"signal": 15}),
    "unknown-fields": msg("core.exec.request", {"x": [Tag(1, 1.5), {"y": None}],
                                                "argv": ["ls"], "z": -(2**63)}),
    "unknown-type": msg("core.future.thing", {"path": "/"}, v=7),
    "request-detached": msg("core.exec.request", {"argv": ["sleep", "9"], "detached": True}),
    "disconnected": msg("core.relay.client.disconnected",
                        {"id_start": 67108865, "id_end": 134217728}),
    "fs-stat": msg("core.fs.request", {"op": "stat", "path": "/etc/passwd", "follow": True}),
    "fs-write": msg("core.fs.request", {"op": "write", "path": "/tmp/x", "mode": 0o600,
                                        "exclusive": True}),
    "fs-mkdir": msg("core.fs.request", {"op": "mkdir", "path": "/a/b", "parents": True}),
    "fs-rename": msg("core.fs.request", {"op": "rename", "path": "/a", "target": "/b"}),
    "fs-symlink": msg("core.fs.request", {"op": "symlink", "path": "/l", "target": "../x"}),
    "fs-remove": msg("core.fs.request", {"op": "remove", "path": "/d", "recursive": True}),
    "fs-chmod": msg("core.fs.request", {"op": "chmod", "path": "/d", "mode": 0o4755}),
    "fs-data": msg("core.fs.data", {"data": b"file bytes"}),
    "fs-ack": msg("core.fs.ack", {"bytes": 65536}),
    "fs-cancel": msg("core.fs.cancel", {}),
    "fs-entries": msg("core.fs.entries", {"entries": [
        {"name": "a", "type": "file", "mode": 0o644, "size": 3, "uid": 0, "gid": 0,
         "mtime_ns": 1700000000123456789},
        {"name": "l", "type": "symlink", "mode": 0o777, "size": 1, "target": "a"},
        {"name": "d", "type": "dir", "mode": 0o755, "mtime_ns": -5}]}),
    "fs-response": msg("core.fs.response", {"errno": 0, "message": "", "stat": {
        "type": "dir", "mode": 0o1777, "size": 4096, "uid": 0, "gid": 0, "mtime_ns": 0}}),
    "fs-response-err": msg("core.fs.response", {"errno": 2, "path": "/nope",
                                                "message": "stat /nope: No such file"}),
    "fs-response-truncated": msg("core.fs.response", {"errno": 0, "truncated": True}),
    "bad-fs-dotdot": msg("core.fs.entries", {"entries": [
        {"name": "..", "type": "file", "mode": 0o644}]}),
    "bad-fs-relative": msg("core.fs.request", {"op": "read", "path": "etc/passwd"}),
    "bad-missing-p": enc({"v": 1, "t": "core.ping"}),
    "bad-p-array": enc({"v": 1, "t": "core.ping", "p": []}),
    "bad-argv-empty": msg("core.exec.request", {"argv": []}),
    "bad-nul": msg("core.exec.request", {"argv": ["a\0b"]}),
}

CBOR = {
    "uints": enc([0, 23, 24, 255, 256, 65535, 65536, 2**32, 2**64 - 1]),
    "negints": enc([-1, -24, -25, -256, -257, -(2**63)]),
    "negint-huge": bytes.fromhex("3bffffffffffffffff"),
    "strings": enc(["", "a", "x" * 24, b"", b"\x00\xff"]),
    "floats": bytes.fromhex("84f93c00fa47c35000fb3ff199999999999af97e00"),
    "simple": bytes.fromhex("86f4f5f6f7f0f8ff"),
    "tags": enc(Tag(1, Tag(55799, [1, {"a": 2}]))),
    "map": enc({"a": {"b": {"c": [1, 2, 3]}}, 1: 2}),
    "request": BODIES["request"],
    "nest-32": b"\x81" * 32 + b"\x00",
    "nest-33": b"\x81" * 33 + b"\x00",
    "bad-indefinite": bytes.fromhex("9f01ff"),
    "bad-reserved": bytes.fromhex("1c"),
    "bad-simple": bytes.fromhex("f810"),
    "bad-huge-bytes": bytes.fromhex("5bffffffffffffffff00"),
    "bad-huge-map": bytes.fromhex("bb8000000000000000"),
    "bad-truncated": enc(["abcdef"])[:-2],
}


def frames_stream():
    return (frame(0, 0, BODIES["ready"]) + frame(1, 2, BODIES["request"])
            + frame(1, 0, BODIES["stdout"]) + frame(1, 1, BODIES["exited"]))


FRAME = {
    "stream-bytewise": b"\x00" + frames_stream(),
    "stream-chunks": b"\x3f" + frames_stream(),
    "stream-feed": b"\x47" + frames_stream(),
    "stream-whole": b"\x80" + frames_stream(),
    "empty-bodies": b"\x05" + frame(1, 0, b"") * 3,
    "partial": b"\x10" + frames_stream()[:-3],
    "bad-len-4": b"\x01" + frame(1, 0, b"ok") + struct.pack(">I", 4) + b"\0" * 5,
    "bad-len-huge": b"\x80" + struct.pack(">I", 0xffffffff) + b"\0" * 8,
    "bad-len-max1": b"\x02" + struct.pack(">I", 4 * 1024 * 1024 + 1) + b"\0" * 5,
}

PROTO = {k: struct.pack(">IB", 1 if k != "ready" else 0, 0) + v for k, v in BODIES.items()}


def write(target, items):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("fuzz-cbor", CBOR)
write("fuzz-frame", FRAME)
write("fuzz-proto", PROTO)
