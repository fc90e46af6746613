# SPDX-License-Identifier: Apache-2.0
"""End to end: a registry image whose Entrypoint, Cmd, Env, WorkingDir and
User are all set, run in a real VM; each setting checked inside the guest,
and each override."""
import tarfile

import pytest

from conftest import TarLayer, push_layers


def busybox_layer():
    layer = TarLayer()
    for d in ("bin", "etc", "srv", "srv/app", "tmp", "root", "proc", "sys", "dev"):
        layer.dir(d, mode=0o1777 if d == "tmp" else 0o755)
    with open("/bin/busybox", "rb") as f:
        layer.add("bin/busybox", f.read(), mode=0o755)
    for applet in ("sh", "echo", "id", "pwd", "cat", "env"):
        layer.add(f"bin/{applet}", type=tarfile.SYMTYPE, linkname="busybox", mode=0o777)
    layer.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:app:/srv/app:/bin/sh\n")
    layer.file("etc/group", "root:x:0:\napp:x:1234:\n")
    layer.dir("srv/app", uid=1234, gid=1234)
    return layer.bytes()


@pytest.fixture
def app_image(registry, tmp_path):
    config = {
        "Env": ["GREETING=hi", "PATH=/bin"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ['echo "$GREETING from $(pwd) as $(id -u):$(id -g)"'],
        "WorkingDir": "/srv/app",
        "User": "app",
    }
    return push_layers(registry, tmp_path / "img", "team/app", "v1", [busybox_layer()], config)


def test_image_config_applies_in_the_guest(msb, app_image):
    r = msb.run("run", "-q", app_image, check=True)
    assert r.out == "hi from /srv/app as 1234:1234\n"


def test_command_replaces_cmd_and_keeps_entrypoint(msb, app_image):
    r = msb.run("run", "-q", app_image, "--", "echo args $GREETING", check=True)
    assert r.out == "args hi\n"


def test_entrypoint_override_drops_cmd(msb, app_image):
    r = msb.run("run", "-q", "--entrypoint", "/bin/echo", app_image, "--", "plain", check=True)
    assert r.out == "plain\n"


def test_env_workdir_user_overrides(msb, app_image):
    r = msb.run("run", "-q", "-e", "GREETING=yo", "-w", "/tmp", "-u", "root", app_image,
                check=True)
    assert r.out == "yo from /tmp as 0:0\n"


def test_exec_in_a_created_sandbox_uses_the_image_defaults(msb, app_image):
    msb.run("create", "-q", "--name", "app", app_image, check=True)
    try:
        r = msb.run("exec", "app", "--", "sh", "-c", 'echo "$GREETING $(pwd) $(id -u)"',
                    check=True)
        assert r.out == "hi /srv/app 1234\n"
        info = msb.run("inspect", "app", check=True).out
        assert "team/app@sha256:" in info
    finally:
        msb.run("rm", "-f", "app")


def test_pull_policies(msb, app_image):
    r = msb.run("run", "-q", "--pull", "never", app_image, "--", "true")
    assert r.returncode == 123, r.err
    msb.run("pull", "-q", app_image, check=True)
    msb.run("run", "-q", "--pull", "never", app_image, "--", "true", check=True)
    msb.run("run", "-q", "--pull", "always", app_image, "--", "true", check=True)
