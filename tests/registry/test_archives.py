# SPDX-License-Identifier: Apache-2.0
"""Archives and imports: load what `skopeo copy docker-archive:` and
`oci-archive:` write, save and load back in both formats (plain, gzip,
zstd, from a file or stdin), check our archives with skopeo, import
directories and tars, refuse broken archives without leaving blobs."""
import json
import os
import subprocess
import tarfile

import pytest

from conftest import Msb, TarLayer, cat, exists, ls, push_layers

EXIT_IMAGE_INVALID = 122


@pytest.fixture
def image(registry, tmp_path):
    l1 = TarLayer().dir("etc").file("etc/os", "one\n").file("etc/gone", "x").dir("var/cache")
    l1.file("var/cache/old", "o")
    l2 = TarLayer().file("etc/.wh.gone", "").file("var/cache/.wh..wh..opq", "")
    l2.file("var/cache/new", "n").file("etc/os", "two\n")
    return push_layers(registry, tmp_path, "test/arch", "v1", [l1.bytes(), l2.bytes()],
                       config={"Env": ["A=1"], "Cmd": ["/bin/sh"]})


def check_content(msb, ref):
    disk = msb.rootfs(ref)
    assert cat(disk, "/etc/os") == "two\n"
    assert not exists(disk, "/etc/gone")
    assert ls(disk, "/var/cache") == ["new"]
    return disk


def skopeo(*args):
    return subprocess.run(["skopeo", *args], capture_output=True, check=True, timeout=600)


def test_load_skopeo_archives(msb, registry, image, tmp_path):
    docker_tar = tmp_path / "docker.tar"
    oci_tar = tmp_path / "oci.tar"
    skopeo("copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
           f"docker-archive:{docker_tar}:example.com/arch/docker:1")
    skopeo("copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
           f"oci-archive:{oci_tar}:example.com/arch/oci:2")

    r = msb.run("load", "-i", docker_tar, check=True)
    assert "Loaded image: example.com/arch/docker:1" in r.out
    check_content(msb, "example.com/arch/docker:1")
    assert msb.inspect("example.com/arch/docker:1")["Config"]["Env"] == ["A=1"]

    r = msb.run("load", input=oci_tar.read_bytes(), check=True)  # from stdin
    assert "Loaded image: example.com/arch/oci:2" in r.out
    check_content(msb, "example.com/arch/oci:2")


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_save_load_round_trip(msb, registry, image, tmp_path, fmt):
    msb.run("pull", image, check=True)
    cfg_digest = msb.inspect(image)["ImageConfig"]
    out = tmp_path / f"saved-{fmt}.tar"
    msb.run("save", "--format", fmt, "-o", out, image, check=True)
    assert not list(tmp_path.glob("*.tmp-*"))

    # skopeo reads what we wrote
    src = f"docker-archive:{out}" if fmt == "docker" else f"oci-archive:{out}"
    info = json.loads(skopeo("inspect", src).stdout)
    assert len(info["Layers"]) == 2

    fresh = Msb(msb.exe, tmp_path / "fresh-home")
    fresh.home.mkdir()
    r = fresh.run("load", "-i", out, check=True)
    assert f"Loaded image: {image}" in r.out
    check_content(fresh, image)
    assert fresh.inspect(image)["ImageConfig"] == cfg_digest
    if fmt == "oci":  # the same manifest, byte for byte
        assert fresh.inspect(image)["Digest"] == msb.inspect(image)["Digest"]


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_load_compressed_from_stdin(msb, registry, image, tmp_path, how):
    msb.run("pull", image, check=True)
    fresh = Msb(msb.exe, tmp_path / "fresh-home")
    fresh.home.mkdir()
    save = msb.popen("save", image)
    squeeze = subprocess.Popen([how, "-c"], stdin=save.stdout, stdout=subprocess.PIPE)
    save.stdout.close()
    r = subprocess.run([fresh.exe, "load"], stdin=squeeze.stdout, capture_output=True,
                       text=True, env=fresh.env(), timeout=600)
    squeeze.stdout.close()
    assert save.wait(timeout=600) == 0 and squeeze.wait(timeout=600) == 0
    assert r.returncode == 0, r.stderr
    assert image in r.stdout
    check_content(fresh, image)


def test_save_several_and_digest(msb, registry, image, tmp_path):
    other = push_layers(registry, tmp_path, "test/other", "o",
                        [TarLayer().file("other", "yes").bytes()])
    msb.run("pull", image, check=True)
    msb.run("pull", other, check=True)
    out = tmp_path / "two.tar"
    msb.run("save", "-o", out, image, other, check=True)
    fresh = Msb(msb.exe, tmp_path / "fresh-home")
    fresh.home.mkdir()
    r = fresh.run("load", "-i", out, check=True)
    assert image in r.out and other in r.out
    check_content(fresh, image)
    assert cat(fresh.rootfs(other), "/other") == "yes"


def test_import_directory_and_tar(msb, tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/motd").write_text("imported\n")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(b"\x7fELF")
    os.chmod(root / "bin/tool", 0o4755)
    os.link(root / "bin/tool", root / "bin/tool2")
    os.symlink("bin", root / "sbin")
    with open(root / "sparse", "wb") as f:
        f.truncate(64 << 20)
        f.write(b"start")
    r = msb.run("image", "import", root, "--tag", "local/dir:1", check=True)
    assert "Imported sha256:" in r.out
    disk = msb.rootfs("local/dir:1")
    assert cat(disk, "/etc/motd") == "imported\n"
    st = subprocess.run(["debugfs", "-R", "stat /bin/tool", disk], capture_output=True,
                        text=True).stdout
    assert "Mode:  04755" in st and "Links: 2" in st and "User:     0" in st
    assert cat(disk, "/sparse").startswith("start")

    tgz = tmp_path / "root.tar.gz"
    subprocess.run(["tar", "-czf", str(tgz), "-C", str(root), "."], check=True)
    msb.run("image", "import", tgz, "-t", "local/tar:1", check=True)
    assert cat(msb.rootfs("local/tar:1"), "/etc/motd") == "imported\n"

    # an imported image saves and loads like any other
    out = tmp_path / "imported.tar"
    msb.run("save", "-o", out, "local/dir:1", check=True)
    fresh = Msb(msb.exe, tmp_path / "fresh-home")
    fresh.home.mkdir()
    fresh.run("load", "-i", out, check=True)
    assert cat(fresh.rootfs("local/dir:1"), "/etc/motd") == "imported\n"


def test_bad_archives(msb, registry, image, tmp_path):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(os.urandom(10000))
    r = msb.run("load", "-i", garbage, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID, r.err

    # an OCI layout whose blob does not match its name
    oci_tar = tmp_path / "oci.tar"
    skopeo("copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
           f"oci:{tmp_path / 'layout'}:t")
    blobs = sorted((tmp_path / "layout/blobs/sha256").iterdir(), key=lambda p: -p.stat().st_size)
    data = bytearray(blobs[0].read_bytes())
    data[100] ^= 0xFF
    blobs[0].write_bytes(bytes(data))
    subprocess.run(["tar", "-cf", str(oci_tar), "-C", str(tmp_path / "layout"), "."], check=True)
    r = msb.run("load", "-i", oci_tar, check=False)
    assert r.returncode == EXIT_IMAGE_INVALID and "digest mismatch" in r.err, r.err
    assert msb.cache_files("blobs/sha256") == []
    assert msb.cache_files("tmp") == []
    assert json.loads(msb.run("image", "ls", "--format", "json", check=True).out) == []
