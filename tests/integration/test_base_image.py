# SPDX-License-Identifier: Apache-2.0
"""The built-in base image: built from busybox-static without root, imported
into the image store on first use as msb.local/base:latest, with exact
owners and modes in its root disk."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest


def debugfs(disk, request):
    tool = shutil.which("debugfs") or "/sbin/debugfs"
    return subprocess.run([tool, "-R", request, disk], capture_output=True, text=True).stdout


def field(disk, path, name):
    """An integer field of debugfs's stat output ("Mode:  0755" → 0o755)."""
    out = debugfs(disk, f"stat {path}")
    for word, value in zip(out.split(), out.split()[1:]):
        if word == name + ":":
            return int(value, 8 if name == "Mode" else 10)
    raise AssertionError(f"no {name} for {path}: {out}")


@pytest.fixture
def base_disk(msb):
    assert msb("run", "-q", "base", "--", "true").returncode == 0
    images = json.loads(msb("image", "inspect", "msb.local/base:latest", text=True).stdout)
    disk = images[0]["RootDisk"]
    assert Path(disk).exists()
    return disk


def test_base_is_an_image_in_the_store(msb, base_disk):
    r = msb("image", "ls", text=True)
    assert "msb.local/base" in r.stdout
    fsck = shutil.which("e2fsck") or "/sbin/e2fsck"
    r = subprocess.run([fsck, "-fn", base_disk], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_base_layout(base_disk):
    assert "Type: regular" in debugfs(base_disk, "stat /bin/busybox")
    assert field(base_disk, "/bin/busybox", "Mode") == 0o755
    assert field(base_disk, "/bin/busybox", "User") == 0
    assert 'Fast link dest: "busybox"' in debugfs(base_disk, "stat /bin/sh")
    assert 'Fast link dest: "../../bin/busybox"' in debugfs(base_disk, "stat /usr/bin/awk")
    assert field(base_disk, "/tmp", "Mode") == 0o1777
    assert field(base_disk, "/var/tmp", "Mode") == 0o1777
    assert field(base_disk, "/root", "Mode") == 0o700
    assert field(base_disk, "/home/user", "User") == 1000
    assert field(base_disk, "/home/user", "Group") == 1000
    passwd = debugfs(base_disk, "cat /etc/passwd")
    assert "user:x:1000:1000:user:/home/user:/bin/sh" in passwd
    assert "root:x:0:0:" in passwd


def test_second_use_reuses_the_import(msb, base_disk):
    before = json.loads(msb("image", "inspect", "msb.local/base:latest", text=True).stdout)
    assert msb("run", "-q", "base", "--", "true").returncode == 0
    after = json.loads(msb("image", "inspect", "msb.local/base:latest", text=True).stdout)
    assert before[0]["Digest"] == after[0]["Digest"]


def test_base_comes_back_after_removal_or_a_stale_stamp(msb, msb_home, base_disk):
    """The import is skipped only while the stamp matches the built tar and
    the image is still in the store; otherwise the next use imports again."""
    assert msb("image", "rm", "msb.local/base:latest").returncode == 0
    assert "msb.local/base" not in msb("image", "ls", text=True).stdout
    r = msb("run", "-q", "base", "--", "echo", "back", text=True)
    assert (r.returncode, r.stdout) == (0, "back\n"), r.stderr
    assert "msb.local/base" in msb("image", "ls", text=True).stdout

    stamp = msb_home / "cache" / "base.stamp"
    good = stamp.read_text()
    stamp.write_text("0 0\n")
    r = msb("run", "-q", "base", "--", "true")
    assert r.returncode == 0, r.stderr
    assert stamp.read_text() == good
