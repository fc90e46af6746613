# SPDX-License-Identifier: Apache-2.0
"""Authentication: Basic (htpasswd) and the Bearer token flow against a
token server, credentials from `msb registry login`, from Docker's
config.json and from the credential helper it names, and the errors without
them."""
import base64
import json
import os
import stat
import subprocess

import pytest

from conftest import TarLayer, TokenServer, cat, push_layers

EXIT_USAGE = 125
EXIT_NOT_FOUND = 115
EXIT_REGISTRY = 112  # the registry refused us (401) or could not be reached


def private_image(registry, tmp_path):
    """Pushes an image, then restarts the registry with auth."""
    return push_layers(registry, tmp_path, "test/private", "p",
                       [TarLayer().file("secret", "classified").bytes()])


@pytest.fixture
def htpasswd(tmp_path):
    path = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(path), "alice", "s3cret"], check=True,
                   capture_output=True)
    return path


def test_basic_auth_and_login(msb, registry, tmp_path, htpasswd):
    ref = private_image(registry, tmp_path)
    registry.restart(("htpasswd", str(htpasswd)))

    r = msb.run("pull", ref, check=False)
    assert r.returncode == EXIT_REGISTRY
    assert f"msb registry login {registry.host}" in r.err

    r = msb.run("registry", "login", registry.host, "-u", "alice", input=b"wrong\n", check=False)
    assert r.returncode == EXIT_USAGE and "wrong user name or password" in r.err
    assert not (msb.home / "auth.json").exists()

    msb.run("registry", "login", registry.host, "-u", "alice", input=b"s3cret\n", check=True)
    mode = stat.S_IMODE(os.stat(msb.home / "auth.json").st_mode)
    assert mode == 0o600
    assert "s3cret" not in (msb.home / "auth.json").read_text()  # base64, as Docker does
    assert "alice" in msb.run("registry", "ls", check=True).out

    msb.run("pull", ref, check=True)
    assert cat(msb.rootfs(ref), "/secret") == "classified"

    msb.run("registry", "logout", registry.host, check=True)
    assert msb.run("registry", "logout", registry.host,
                   check=False).returncode == EXIT_NOT_FOUND
    msb.run("image", "rm", ref, check=True)
    assert msb.run("pull", ref, check=False).returncode == EXIT_REGISTRY


def test_docker_config_credentials(msb, registry, tmp_path, htpasswd):
    ref = private_image(registry, tmp_path)
    registry.restart(("htpasswd", str(htpasswd)))
    docker = msb.home.parent / ".docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps(
        {"auths": {f"http://{registry.host}/v2/": {
            "auth": base64.b64encode(b"alice:s3cret").decode()}}}))
    msb.run("pull", ref, check=True)
    msb.rootfs(ref)


def test_docker_credential_helper(msb, registry, tmp_path, htpasswd):
    """config.json's credsStore names a helper that keeps the password."""
    ref = private_image(registry, tmp_path)
    registry.restart(("htpasswd", str(htpasswd)))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-msbtest"
    helper.write_text(f"""#!/bin/sh
read -r server
echo "$server" >> {asked}
if [ "$server" = "{registry.host}" ] && [ "$1" = get ]; then
    printf '{{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}}' "$server"
else
    echo "credentials not found in native keychain"; exit 1
fi
""")
    helper.chmod(0o755)
    docker = msb.home.parent / ".docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps(
        {"credsStore": "msbtest", "auths": {registry.host: {}}}))
    path = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}

    msb.run("pull", ref, check=True, env=path)
    assert cat(msb.rootfs(ref), "/secret") == "classified"
    assert asked.read_text().splitlines()[0] == registry.host

    # A helper that is not installed: the 401's error names it.
    (docker / "config.json").write_text(json.dumps({"credsStore": "nosuchhelper"}))
    msb.run("image", "rm", ref, check=True)
    r = msb.run("pull", ref, check=False, env=path)
    assert r.returncode == EXIT_REGISTRY
    assert "docker-credential-nosuchhelper: not found on PATH" in r.err


def test_token_flow(msb, registry, tmp_path):
    ref = private_image(registry, tmp_path)
    tokens = TokenServer(tmp_path, users={"bob": "hunter2"}, anonymous=False)
    try:
        registry.restart(tokens.auth_config())
        r = msb.run("pull", ref, check=False)
        assert r.returncode == EXIT_REGISTRY
        assert "token server refused anonymous access" in r.err

        msb.run("registry", "login", registry.host, "-u", "bob", input=b"hunter2\n", check=True)
        msb.run("pull", ref, check=True)
        assert cat(msb.rootfs(ref), "/secret") == "classified"
        assert any(q["user"] == "bob" and q["scope"] == "repository:test/private:pull"
                   and q["service"] == tokens.service for q in tokens.requests)
    finally:
        registry.stop()
        tokens.close()


def test_token_flow_anonymous(msb, registry, tmp_path):
    ref = private_image(registry, tmp_path)
    tokens = TokenServer(tmp_path, anonymous=True)
    try:
        registry.restart(tokens.auth_config())
        msb.run("pull", ref, check=True)
        msb.rootfs(ref)
        assert tokens.requests and tokens.requests[0]["user"] is None
    finally:
        registry.stop()
        tokens.close()


def test_login_refuses_bad_input(msb):
    assert msb.run("registry", "login", "not a host", "-u", "x", input=b"p\n",
                   check=False).returncode == EXIT_USAGE
    assert msb.run("registry", "login", "localhost:5000", "-u", "a:b", input=b"p\n",
                   check=False).returncode == EXIT_USAGE
    assert msb.run("registry", "login", "localhost:5000", "-u", "x", input=b"",
                   check=False).returncode == EXIT_USAGE
