# SPDX-License-Identifier: Apache-2.0
"""`msb run` end to end: real VMs, the built-in base image, the CLI's exit
codes, streams, options and failure modes."""
import hashlib
import os
import pty
import select
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import RUN_TIMEOUT, build_init_fixture, qemu_processes_for


# ---- failures: one clear line, a distinct exit code, nothing left behind ----

def assert_one_line(stderr):
    """One error line; the accelerator notice (a warning) may precede it."""
    lines = [l for l in stderr.strip().splitlines() if l and not l.startswith("msb: warning:")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("msb: ")


def test_uname_reports_our_kernel(msb):
    r = msb("run", "base", "--", "uname", "-a", text=True)
    assert r.returncode == 0, r.stderr
    assert "Linux" in r.stdout and "-msb" in r.stdout


@pytest.mark.parametrize("script,code", [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 137)])
def test_exit_codes_pass_through(msb, script, code):
    r = msb("run", "-q", "base", "--", "sh", "-c", script)
    assert r.returncode == code, r.stderr


def test_command_not_found_is_127(msb):
    r = msb("run", "base", "--", "/no/such/command", text=True)
    assert r.returncode == 127
    assert "/no/such/command" in r.stderr
    assert_one_line(r.stderr)


def test_not_executable_is_126(msb):
    r = msb("run", "base", "--", "/etc/passwd", text=True)
    assert r.returncode == 126
    assert "/etc/passwd" in r.stderr


def test_stdout_and_stderr_stay_separate(msb):
    r = msb("run", "-q", "base", "--", "sh", "-c", "echo out; echo err >&2; echo out2", text=True)
    assert r.returncode == 0
    assert r.stdout == "out\nout2\n"
    assert r.stderr == "err\n"


def test_ten_megabytes_of_output_arrive_intact(msb):
    # 10 MB of pseudo-random bytes made in the guest, hashed there and here.
    script = ("head -c 10485760 /dev/urandom > /tmp/blob && sha256sum /tmp/blob >&2 && "
              "cat /tmp/blob")
    r = msb("run", "-q", "base", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == 10485760
    guest_sum = r.stderr.decode().split()[0]
    assert hashlib.sha256(r.stdout).hexdigest() == guest_sum


def test_stdin_is_forwarded_with_eof(msb):
    r = msb("run", "-q", "base", "--", "cat", input=b"hi\n")
    assert r.returncode == 0
    assert r.stdout == b"hi\n"


def test_large_stdin_round_trips(msb):
    data = os.urandom(3 * 1024 * 1024)
    r = msb("run", "-q", "base", "--", "sha256sum", input=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split()[0] == hashlib.sha256(data).hexdigest()


def test_env_workdir_and_user(msb):
    r = msb("run", "-q", "-e", "GREETING=hello world", "-e", "HOME_FROM_HOST", "-w", "/tmp",
            "-u", "user", "base", "--", "sh", "-c", 'echo "$GREETING"; pwd; id -u; id -g; echo $HOME',
            env={"HOME_FROM_HOST": "x"}, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hello world", "/tmp", "1000", "1000", "/home/user"]


def test_numeric_user_and_group(msb):
    r = msb("run", "-q", "-u", "65534:65534", "base", "--", "sh", "-c", "id -u; id -g", text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["65534", "65534"]


def test_bad_workdir_and_user_are_reported(msb):
    r = msb("run", "-w", "/nope", "base", "--", "true", text=True)
    assert r.returncode == 125 and "/nope" in r.stderr
    r = msb("run", "-u", "nosuchuser", "base", "--", "true", text=True)
    assert r.returncode == 125 and "nosuchuser" in r.stderr


def test_rlimit(msb):
    r = msb("run", "-q", "--rlimit", "nofile=123:456", "base", "--", "sh", "-c",
            "ulimit -n; ulimit -Hn", text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["123", "456"]


def test_timeout_kills_the_command(msb):
    r = msb("run", "--timeout", "2s", "base", "--", "sleep", "600", text=True)
    assert r.returncode == 124
    assert "timed out" in r.stderr


def test_memory_and_cpus_are_visible_in_the_guest(msb):
    r = msb("run", "-q", "-m", "300M", "-c", "2", "base", "--", "sh", "-c",
            "nproc; grep MemTotal /proc/meminfo", text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "2"
    mem_kib = int(lines[1].split()[1])
    assert 250 * 1024 < mem_kib <= 300 * 1024


def test_writes_land_in_the_writable_layer(msb):
    r = msb("run", "-q", "base", "--", "sh", "-c",
            "echo data > /etc/new && cat /etc/new && mount | grep ' / '", text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("data\n")
    assert "overlay" in r.stdout


def test_three_runs_at_once(msb):
    def one(i):
        return msb("run", "-q", "base", "--", "sh", "-c", f"echo run-{i}; hostname", text=True)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(one, range(3)))
    for i, r in enumerate(results):
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == f"run-{i}"
    hostnames = {r.stdout.splitlines()[1] for r in results}
    assert len(hostnames) == 3


def test_tty_session_through_a_pty(msb_bin, msb_home):
    """Drives `msb run -t base` through a real pseudo-terminal, as a user's
    terminal would: a shell prompt, a command, the window size, exit."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["MSB_HOME"] = str(msb_home)
        os.execv(msb_bin, [msb_bin, "run", "-q", "-t", "base", "--", "/bin/sh"])
    import fcntl, struct, termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    out = b""

    def read_until(token, timeout=RUN_TIMEOUT):
        nonlocal out
        deadline = time.monotonic() + timeout
        while token not in out:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {token!r}; got {out[-500:]!r}"
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk

    os.write(fd, b"tty; stty size; echo mark-$((40+2))\r")
    read_until(b"mark-42")
    assert b"/dev/pts/" in out
    assert b"33 101" in out
    os.write(fd, b"exit 5\r")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WEXITSTATUS(status) == 5


def test_rootfs_directory_image(msb, tmp_path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    os.symlink("busybox", root / "bin" / "sh")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "hello.txt").write_text("from a host directory\n")
    r = msb("run", "-q", str(root), "--", "/bin/busybox", "cat", "/hello.txt", text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from a host directory\n"


def test_unknown_image(msb):
    r = msb("run", "--pull", "never", "nosuchimage", "--", "true", text=True)
    assert r.returncode == 123
    assert_one_line(r.stderr)
    assert "nosuchimage" in r.stderr


def test_unreachable_registry(msb):
    r = msb("run", "127.0.0.1:1/nothing:here", "--", "true", text=True)
    assert r.returncode == 112
    assert_one_line(r.stderr)
    assert "127.0.0.1:1/nothing" in r.stderr


def test_directory_that_is_not_a_rootfs(msb, tmp_path):
    (tmp_path / "empty").mkdir()
    r = msb("run", str(tmp_path / "empty"), "--", "true", text=True)
    assert r.returncode == 122
    assert_one_line(r.stderr)
    assert "not a root filesystem" in r.stderr


def test_unreadable_file_in_the_rootfs(msb_bin):
    """As an unprivileged user, a file it cannot read makes the image invalid."""
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        unreadable_file_case(msb_bin, Path(tmp))


def unreadable_file_case(msb_bin, tmp_path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    secret = root / "etc" / "secret"
    secret.write_text("no")
    secret.chmod(0)
    home = tmp_path / "home"
    home.mkdir()
    for p in (tmp_path, root, root / "bin", root / "etc", home):
        p.chmod(0o777 if p == home else 0o755)
    os.chown(home, 65534, 65534)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        msb_bin, "run", str(root), "--", "true"],
                       env={**os.environ, "MSB_HOME": str(home)}, capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    assert r.returncode == 122, r.stderr
    assert_one_line(r.stderr)
    assert "etc/secret" in r.stderr and "ermission denied" in r.stderr
    assert list((home / "sandboxes").glob("*")) == []


def test_missing_kernel(msb, tmp_path):
    r = msb("run", "base", "--", "true", env={"MSB_KERNEL": str(tmp_path / "nope")}, text=True)
    assert r.returncode == 121
    assert_one_line(r.stderr)
    assert "kernel" in r.stderr


def test_missing_qemu(msb, tmp_path):
    r = msb("run", "base", "--", "true", env={"MSB_QEMU": str(tmp_path / "qemu")}, text=True)
    assert r.returncode == 121
    assert_one_line(r.stderr)
    assert "QEMU" in r.stderr


def test_unknown_accelerator_and_bad_values(msb):
    r = msb("run", "--accel", "warp", "base", text=True)
    assert r.returncode == 125
    assert_one_line(r.stderr)
    r = msb("run", "-m", "lots", "base", text=True)
    assert r.returncode == 125
    assert_one_line(r.stderr)


def test_guest_that_never_answers(msb, tmp_path):
    initramfs = build_init_fixture("init-silent", tmp_path)
    r = msb("run", "--boot-timeout", "5s", "base", "--", "true",
            env={"MSB_INITRAMFS": initramfs}, text=True)
    assert r.returncode == 119
    assert_one_line(r.stderr)
    assert "did not answer" in r.stderr
    assert qemu_processes_for(initramfs) == []


def test_malformed_frame_from_the_guest(msb, tmp_path):
    initramfs = build_init_fixture("init-garbage", tmp_path)
    r = msb("run", "base", "--", "true", env={"MSB_INITRAMFS": initramfs}, text=True)
    assert r.returncode == 117
    assert_one_line(r.stderr)
    assert "malformed" in r.stderr
    assert qemu_processes_for(initramfs) == []


def test_interrupt_during_boot_leaves_nothing(msb_bin, msb_home):
    p = subprocess.Popen([msb_bin, "run", "base", "--", "sleep", "100"],
                         env={**os.environ, "MSB_HOME": str(msb_home)},
                         stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(2)
    assert p.wait(timeout=RUN_TIMEOUT) == 130
    assert qemu_processes_for(str(msb_home)) == []


def test_ctrl_c_reaches_the_command(msb_bin, msb_home):
    p = subprocess.Popen([msb_bin, "run", "-q", "base", "--", "sh", "-c",
                          "trap 'echo got-int; exit 42' INT; echo ready; while :; do sleep 1; done"],
                         env={**os.environ, "MSB_HOME": str(msb_home)},
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline()
    assert line == b"ready\n"
    p.send_signal(2)
    out, _ = p.communicate(timeout=RUN_TIMEOUT)
    assert p.returncode == 42
    assert b"got-int" in out


def test_doctor_and_version(msb):
    r = msb("version", text=True)
    assert r.returncode == 0 and r.stdout.startswith("msb version ")
    r = msb("doctor", text=True)
    assert "accelerator" in r.stdout
    assert r.returncode == 0, r.stdout
