# SPDX-License-Identifier: Apache-2.0
"""Managed sandboxes end to end: create, exec, stop/start, ls, logs, cp, rm,
and what happens when processes die. Real VMs under the host's accelerator."""
import hashlib
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import RUN_TIMEOUT, qemu_processes_for


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def one_line_error(r, code, *words):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.strip().splitlines() if not l.startswith("msb: warning:")]
    assert len(lines) == 1 and lines[0].startswith("msb: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def status_of(msb, name):
    r = ok(msb("ls", "--format", "json", text=True))
    for sb in json.loads(r.stdout):
        if sb["name"] == name:
            return sb
    return None


def wait_for(predicate, timeout=RUN_TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sandbox(msb):
    """A running sandbox named 'dev', removed at the end."""
    ok(msb("create", "-q", "--name", "dev", "base", text=True))
    yield "dev"
    msb("rm", "-f", "dev")


def test_create_exec_stop_start_rm(msb, msb_home):
    r = ok(msb("create", "-q", "--name", "box", "--label", "team=a", "base", text=True))
    assert r.stdout.strip() == "box"
    r = ok(msb("exec", "box", "--", "sh", "-c", "echo persisted > /root/file; hostname",
               text=True))
    assert r.stdout.strip() == "box"
    assert status_of(msb, "box")["status"] == "running"

    ok(msb("stop", "box", text=True))
    info = status_of(msb, "box")
    assert info["status"] == "stopped" and info["end_reason"] == "stopped"
    one_line_error(msb("exec", "box", "--", "true", text=True), 113, "not running")

    ok(msb("start", "box", text=True))
    r = ok(msb("exec", "box", "--", "cat", "/root/file", text=True))
    assert r.stdout == "persisted\n"

    ok(msb("restart", "box", text=True))
    r = ok(msb("exec", "box", "--", "cat", "/root/file", text=True))
    assert r.stdout == "persisted\n"

    one_line_error(msb("rm", "box", text=True), 114, "running")
    ok(msb("rm", "-f", "box", text=True))
    assert status_of(msb, "box") is None
    assert not (msb_home / "sandboxes" / "box").exists()
    assert not (msb_home / "run" / "box").exists()
    assert qemu_processes_for(str(msb_home)) == []


def test_names(msb):
    r = ok(msb("create", "-q", "base", text=True))
    generated = r.stdout.strip()
    assert generated and status_of(msb, generated)["status"] == "running"
    one_line_error(msb("create", "--name", generated, "base", text=True), 114, "already exists")
    one_line_error(msb("create", "--name", "bad/name", "base", text=True), 125, "invalid")
    one_line_error(msb("create", "--name", "x" * 129, "base", text=True), 125, "invalid")
    r = ok(msb("create", "-q", "--name", generated, "--replace", "base", text=True))
    assert r.stdout.strip() == generated
    ok(msb("rm", "-f", generated))


def test_unknown_sandbox_everywhere(msb):
    for args in (["exec", "nope", "--", "true"], ["stop", "nope"], ["start", "nope"],
                 ["rm", "nope"], ["status", "nope"], ["inspect", "nope"], ["logs", "nope"],
                 ["ping", "nope"], ["cp", "/etc/hostname", "nope:/tmp/x"]):
        one_line_error(msb(*args, text=True), 115, "nope")


def test_ls_filters_and_formats(msb):
    ok(msb("create", "-q", "--name", "a1", "--label", "team=a", "base"))
    ok(msb("create", "-q", "--name", "b1", "--label", "team=b", "base"))
    ok(msb("stop", "b1"))
    r = ok(msb("ls", "-q", text=True))
    assert r.stdout.split() == ["a1", "b1"]
    assert ok(msb("ls", "-q", "--running", text=True)).stdout.split() == ["a1"]
    assert ok(msb("ls", "-q", "--stopped", text=True)).stdout.split() == ["b1"]
    assert ok(msb("ls", "-q", "--label", "team=b", text=True)).stdout.split() == ["b1"]
    assert ok(msb("ls", "-q", "--label", "team", text=True)).stdout.split() == ["a1", "b1"]
    table = ok(msb("ls", text=True)).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "IMAGE", "STATUS"]
    listed = json.loads(ok(msb("ls", "--format", "json", text=True)).stdout)
    assert {s["name"]: s["labels"] for s in listed} == {"a1": {"team": "a"}, "b1": {"team": "b"}}
    r = ok(msb("status", "a1", text=True))
    assert "running" in r.stdout
    doc = json.loads(ok(msb("inspect", "a1", text=True)).stdout)
    assert doc["name"] == "a1" and doc["status"] == "running"
    assert doc["config"]["memory_mib"] == 512
    ok(msb("rm", "-f", "a1", "b1"))


def test_two_clients_exec_at_once(msb, sandbox):
    def one(i):
        return msb("exec", sandbox, "--", "sh", "-c",
                   f"for n in 1 2 3; do echo c{i}-$n; sleep 0.2; done", text=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(one, range(2))
    assert ok(a).stdout.split() == ["c0-1", "c0-2", "c0-3"]
    assert ok(b).stdout.split() == ["c1-1", "c1-2", "c1-3"]


def test_ping_and_exec_options(msb, sandbox):
    assert "answered" in ok(msb("ping", sandbox, text=True)).stdout
    r = ok(msb("exec", "-e", "A=1", "-w", "/tmp", "-u", "user", sandbox, "--", "sh", "-c",
               "echo $A; pwd; id -u", text=True))
    assert r.stdout.split() == ["1", "/tmp", "1000"]
    r = msb("exec", sandbox, "--", "sh", "-c", "exit 7")
    assert r.returncode == 7
    r = msb("exec", "--timeout", "1s", sandbox, "--", "sleep", "100", text=True)
    assert r.returncode == 124
    r = ok(msb("exec", sandbox, "--", "cat", input=b"stdin works"))
    assert r.stdout == b"stdin works"


def test_run_detached_and_logs(msb):
    r = ok(msb("run", "-d", "--name", "bg", "base", "--", "sh", "-c",
               "echo to-out; echo to-err >&2; sleep 1; echo later", text=True))
    assert r.stdout.strip() == "bg"
    wait_for(lambda: "later" in msb("logs", "bg", text=True).stdout, what="detached output")
    r = ok(msb("logs", "bg", text=True))
    assert r.stdout == "to-out\nlater\n"
    assert r.stderr == "to-err\n"
    assert ok(msb("logs", "--source", "stdout", "bg", text=True)).stdout == "to-out\nlater\n"
    assert ok(msb("logs", "--source", "stderr", "bg", text=True)).stdout == ""
    assert ok(msb("logs", "--tail", "1", "bg", text=True)).stdout == "later\n"
    assert ok(msb("logs", "--since", "2099-01-01T00:00:00Z", "bg", text=True)).stdout == ""
    system = ok(msb("logs", "--source", "system", "bg", text=True)).stdout
    assert "Linux version" in system  # the kernel log
    ok(msb("rm", "-f", "bg"))


def test_logs_follow(msb_bin, msb, msb_home):
    ok(msb("create", "-q", "--name", "fl", "base"))
    env = {**os.environ, "MSB_HOME": str(msb_home)}
    p = subprocess.Popen([msb_bin, "logs", "-f", "fl"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    ok(msb("exec", "fl", "--", "echo", "followed"))
    line = p.stdout.readline()
    assert line == b"followed\n"
    ok(msb("stop", "fl"))
    assert p.wait(timeout=RUN_TIMEOUT) == 0
    ok(msb("rm", "fl"))


def test_cp_files_and_trees(msb, sandbox, tmp_path):
    src = tmp_path / "tree"
    for i in range(1000):
        d = src / f"d{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(os.urandom(i % 300) + str(i).encode())
    (src / "exec.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "exec.sh").chmod(0o755)
    os.symlink("d0/f0", src / "link")
    ok(msb("cp", str(src), f"{sandbox}:/work", text=True))
    r = ok(msb("exec", sandbox, "--", "sh", "-c",
               "find /work -type f | wc -l; /work/exec.sh; readlink /work/link", text=True))
    assert r.stdout.split() == ["1001", "hi", "d0/f0"]
    out = tmp_path / "back"
    ok(msb("cp", f"{sandbox}:/work", str(out), text=True))

    def digest(root):
        h = {}
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root)
            if p.is_symlink():
                h[rel] = ("link", os.readlink(p))
            elif p.is_file():
                h[rel] = (oct(p.stat().st_mode & 0o777), hashlib.sha256(p.read_bytes()).hexdigest())
        return h

    assert digest(out) == digest(src)
    one_line_error(msb("cp", str(src / "exec.sh"), f"{sandbox}:/no/such/dir/x", text=True),
                   116, "/no/such/dir")
    r = msb("cp", f"{sandbox}:relative/path", str(tmp_path / "x"), text=True)
    assert r.returncode != 0


def test_full_upper_disk_is_reported_and_survivable(msb):
    ok(msb("create", "-q", "--name", "tiny", "--root-disk", "64M", "base"))
    r = msb("exec", "tiny", "--", "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=200",
            text=True)
    assert r.returncode != 0
    assert "No space left" in r.stderr
    r = ok(msb("exec", "tiny", "--", "sh", "-c", "rm /big; echo fine > /f; cat /f", text=True))
    assert r.stdout == "fine\n"
    ok(msb("rm", "-f", "tiny"))


def test_idle_timeout_fires(msb):
    ok(msb("create", "-q", "--name", "idle", "--idle-timeout", "2s", "base"))
    info = wait_for(lambda: (s := status_of(msb, "idle")) and s["status"] == "stopped" and s,
                    what="idle timeout")
    assert info["status"] == "stopped" and info["end_reason"] == "idle_timeout"
    ok(msb("rm", "idle"))


def test_max_duration(msb):
    ok(msb("create", "-q", "--name", "short", "--max-duration", "3s", "base"))
    info = wait_for(lambda: (s := status_of(msb, "short")) and s["status"] == "stopped" and s,
                    what="max duration")
    assert info["end_reason"] == "max_duration"
    ok(msb("rm", "short"))


def supervisor_and_qemu(msb_home, name):
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    sup = qemu = None
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "msb-sandbox" in args and f"--name {name}" in args and str(msb_home) in args:
            sup = int(pid)
        if "qemu-system" in args and f"{msb_home}/sandboxes/{name}/" in args:
            qemu = int(pid)
    return sup, qemu


def test_kill_9_of_qemu_shows_crashed(msb, msb_home):
    ok(msb("create", "-q", "--name", "k1", "base"))
    _, qemu = supervisor_and_qemu(msb_home, "k1")
    os.kill(qemu, signal.SIGKILL)
    info = wait_for(lambda: (s := status_of(msb, "k1")) and s["status"] == "crashed" and s,
                    what="crashed status")
    assert info["end_reason"] == "crashed"
    ok(msb("start", "k1"))
    ok(msb("exec", "k1", "--", "true"))
    ok(msb("rm", "-f", "k1"))


def test_kill_9_of_supervisor_shows_crashed(msb, msb_home):
    ok(msb("create", "-q", "--name", "k2", "base"))
    sup, _ = supervisor_and_qemu(msb_home, "k2")
    os.kill(sup, signal.SIGKILL)
    info = wait_for(lambda: (s := status_of(msb, "k2")) and s["status"] == "crashed" and s,
                    what="crashed status")
    assert info["end_reason"] == "crashed"
    wait_for(lambda: qemu_processes_for(f"{msb_home}/sandboxes/k2/") == [], what="QEMU gone")
    ok(msb("rm", "k2"))


def test_kill_9_of_exec_client_ends_its_command(msb_bin, msb, msb_home, sandbox):
    env = {**os.environ, "MSB_HOME": str(msb_home)}
    p = subprocess.Popen([msb_bin, "exec", sandbox, "--", "sh", "-c",
                          "echo started; exec sleep 1000"], env=env, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"started\n"
    p.kill()
    p.wait()
    wait_for(lambda: "sleep 1000" not in msb("exec", sandbox, "--", "ps", text=True).stdout,
             what="the orphaned command to end")
    assert status_of(msb, sandbox)["status"] == "running"


def test_concurrent_lifecycle_operations_are_safe(msb):
    ok(msb("create", "-q", "--name", "race", "base"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda args: msb(*args),
                                [["stop", "race"], ["stop", "race"], ["start", "race"],
                                 ["stop", "race"]]))
    for r in results:
        assert r.returncode == 0, r.stderr
    info = status_of(msb, "race")
    assert info["status"] in ("running", "stopped")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: msb("create", "-q", "--name", "twin", "base"),
                                range(2)))
    assert sorted(r.returncode for r in results) == [0, 114]
    ok(msb("rm", "-f", "race", "twin"))
