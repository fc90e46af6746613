# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures of the end-to-end tests: they drive the real `msb` binary,
which boots real microVMs (TCG on hosts without usable KVM)."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MSB_BUILD", ROOT / "build"))
MSB = BUILD / "cmd" / "msb" / "msb"

# Generous: a loaded CI machine under TCG is slow, and tests never assert timings.
RUN_TIMEOUT = 300


@pytest.fixture(scope="session")
def msb_bin():
    if not MSB.exists():
        pytest.fail(f"{MSB} is missing: build first (make)")
    return str(MSB)


@pytest.fixture
def msb_home(tmp_path):
    home = tmp_path / "msb-home"
    home.mkdir()
    yield home
    leftovers = list((home / "sandboxes").glob("*")) if (home / "sandboxes").exists() else []
    assert leftovers == [], f"sandbox state left behind: {leftovers}"


@pytest.fixture
def msb(msb_bin, msb_home):
    """Runs msb with an isolated MSB_HOME; returns the CompletedProcess."""

    def run(*args, input=None, env=None, timeout=RUN_TIMEOUT, text=False):
        full_env = dict(os.environ)
        full_env["MSB_HOME"] = str(msb_home)
        full_env.update(env or {})
        return subprocess.run(
            [msb_bin, *args],
            input=input,
            capture_output=True,
            env=full_env,
            timeout=timeout,
            text=text,
        )

    return run


def qemu_processes_for(path_fragment):
    """QEMU processes whose command line mentions path_fragment."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "qemu-system" in l and path_fragment in l]


def build_init_fixture(name, workdir):
    """Compiles tests/integration/fixtures/<name>.c with musl-gcc as a static
    /init and packs it into an initramfs; returns the cpio path."""
    src = Path(__file__).parent / "fixtures" / f"{name}.c"
    root = Path(workdir) / f"{name}-root"
    root.mkdir()
    subprocess.run(["musl-gcc", "-static", "-Os", "-o", str(root / "init"), str(src)], check=True)
    cpio = Path(workdir) / f"{name}.cpio"
    files = subprocess.run(["find", ".", "-print"], cwd=root, capture_output=True, text=True,
                           check=True).stdout
    with open(cpio, "wb") as out:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                       input=files.encode(), stdout=out, check=True)
    return str(cpio)
