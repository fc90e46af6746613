# SPDX-License-Identifier: Apache-2.0
"""Pulling from a real registry: multi-layer images with whiteouts and
opaque directories, the image config, indexes of several platforms,
digests, cached layers, removal and two pulls at once."""
import json
import os
import tarfile

from conftest import RawLayout, TarLayer, Umoci, cat, exists, ls, push_layers

EXIT_IMAGE_NOT_FOUND = 123


def build_umoci_image(tmp_path, tag="v1"):
    img = Umoci(tmp_path / "layout", tag)
    root = img.rootfs
    (root / "etc").mkdir()
    (root / "etc/hello").write_text("hello\n")
    (root / "etc/gone").write_text("soon removed\n")
    (root / "var/cache/apt").mkdir(parents=True)
    for name in "ab":
        (root / "var/cache/apt" / name).write_text(name)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"\x7fELF tool")
    os.chmod(root / "usr/bin/tool", 0o4755)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-link")
    os.symlink("usr/bin", root / "bin")
    deep = root / "/".join(f"d{i:02d}" + "x" * 40 for i in range(12))
    deep.mkdir(parents=True)
    (deep / "leaf").write_text("deep")
    img.commit()
    # layer 2: a whiteout, a directory emptied and refilled, a changed file
    (root / "etc/gone").unlink()
    for name in "ab":
        (root / "var/cache/apt" / name).unlink()
    (root / "var/cache/apt/c").write_text("c")
    (root / "etc/hello").write_text("hello again\n")
    img.commit()
    img.config("--config.entrypoint", "/usr/bin/tool", "--config.cmd", "--flag",
               "--config.cmd", "arg", "--config.env", "FOO=bar", "--config.env",
               "PATH=/usr/bin:/bin", "--config.workingdir", "/srv", "--config.user", "1000:100")
    return img, str(deep.relative_to(root))


def test_multilayer_pull(msb, registry, tmp_path):
    img, deep = build_umoci_image(tmp_path)
    ref = registry.push(img.layout, "v1", "test/app")
    r = msb.run("pull", ref, check=True)
    assert "Digest: sha256:" in r.out

    disk = msb.rootfs(ref)
    assert cat(disk, "/etc/hello") == "hello again\n"
    assert not exists(disk, "/etc/gone")
    assert ls(disk, "/var/cache/apt") == ["c"]
    stat = debugfs_stat(disk, "/usr/bin/tool")
    assert "Mode:  04755" in stat
    assert "Links: 2" in stat
    assert "Fast link dest: \"usr/bin\"" in debugfs_stat(disk, "/bin")
    assert cat(disk, f"/{deep}/leaf") == "deep"

    info = msb.inspect(ref)
    assert info["RepoTags"] == [ref]
    assert len(info["Layers"]) == 2
    cfg = info["Config"]
    assert cfg["Entrypoint"] == ["/usr/bin/tool"]
    assert cfg["Cmd"] == ["--flag", "arg"]
    assert "FOO=bar" in cfg["Env"]
    assert cfg["WorkingDir"] == "/srv"
    assert cfg["User"] == "1000:100"
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"

    listing = json.loads(msb.run("image", "ls", "--format", "json", check=True).out)
    assert [(i["repository"], i["tag"]) for i in listing] == [(f"{registry.host}/test/app", "v1")]


def debugfs_stat(disk, path):
    from conftest import debugfs

    return debugfs(disk, f'stat "{path}"')


def test_compressions(msb, registry, tmp_path):
    for how in ("none", "gzip", "zstd"):
        layer = TarLayer().file(f"made-with-{how}", how).bytes()
        ref = push_layers(registry, tmp_path, "test/comp", how, [layer], compression=how)
        msb.run("pull", ref, check=True)
        assert cat(msb.rootfs(ref), f"/made-with-{how}") == how


def test_index_picks_linux_amd64(msb, registry, tmp_path):
    lay = RawLayout(tmp_path / "multi")
    arm = lay.manifest([TarLayer().file("arch", "arm64").bytes()], arch="arm64")
    arm["platform"]["variant"] = "v8"
    amd = lay.manifest([TarLayer().file("arch", "amd64").bytes()], arch="amd64")
    lay.tag_index("multi", [arm, amd])
    ref = registry.push(lay.path, "multi", "test/multi", all_platforms=True)
    msb.run("pull", ref, check=True)
    assert cat(msb.rootfs(ref), "/arch") == "amd64"


def test_other_platform_only(msb, registry, tmp_path):
    lay = RawLayout(tmp_path / "armonly")
    lay.tag_index("arm", [lay.manifest([TarLayer().file("x", "y").bytes()], arch="arm64")])
    ref = registry.push(lay.path, "arm", "test/arm", all_platforms=True)
    r = msb.run("pull", ref, check=False)
    assert r.returncode == EXIT_IMAGE_NOT_FOUND
    assert "linux/amd64" in r.err and "linux/arm64" in r.err
    assert msb.cache_files("rootfs") == []

    # a plain manifest whose config says arm64
    lay2 = RawLayout(tmp_path / "armplain")
    lay2.tag("arm", lay2.manifest([TarLayer().file("x", "y").bytes()], arch="arm64"))
    ref2 = registry.push(lay2.path, "arm", "test/armplain")
    r = msb.run("pull", ref2, check=False)
    assert r.returncode == EXIT_IMAGE_NOT_FOUND
    assert "linux/arm64, not linux/amd64" in r.err


def test_not_found(msb, registry):
    r = msb.run("pull", f"{registry.host}/test/nothing:here", check=False)
    assert r.returncode == EXIT_IMAGE_NOT_FOUND
    assert "not found" in r.err and "test/nothing" in r.err


def test_pull_by_digest_and_cached_layers(msb, registry, tmp_path):
    base = TarLayer().file("base", "shared").bytes()
    ref1 = push_layers(registry, tmp_path, "test/one", "a", [base])
    ref2 = push_layers(registry, tmp_path, "test/two", "b",
                       [base, TarLayer().file("top", "two").bytes()])
    msb.run("pull", ref1, check=True)
    digest = msb.inspect(ref1)["Digest"]
    disk = msb.rootfs(ref1)
    inode = os.stat(disk).st_ino

    # the shared layer is not downloaded again
    r = msb.run("pull", ref2, check=True)
    assert "already exists" in r.out
    assert cat(msb.rootfs(ref2), "/base") == "shared"

    # by digest: the same image, nothing rebuilt
    by_digest = f"{registry.host}/test/one@{digest}"
    msb.run("pull", by_digest, check=True)
    assert msb.inspect(by_digest)["Digest"] == digest
    assert os.stat(disk).st_ino == inode
    rows = json.loads(msb.run("image", "ls", "--format", "json", check=True).out)
    assert {r["ref"] for r in rows} == {ref1, ref2, by_digest}


def test_remove_and_prune(msb, registry, tmp_path):
    base = TarLayer().file("base", "shared").bytes()
    ref1 = push_layers(registry, tmp_path, "test/one", "a", [base])
    ref2 = push_layers(registry, tmp_path, "test/two", "b",
                       [base, TarLayer().file("top", "two").bytes()])
    msb.run("pull", ref1, check=True)
    msb.run("pull", ref2, check=True)
    blobs_before = len(msb.cache_files("blobs/sha256"))

    msb.run("image", "rm", ref1, check=True)
    assert msb.run("image", "inspect", ref1, check=False).returncode == EXIT_IMAGE_NOT_FOUND
    msb.rootfs(ref2)  # the other image is intact
    assert cat(msb.rootfs(ref2), "/base") == "shared"
    assert len(msb.cache_files("blobs/sha256")) == blobs_before - 2  # manifest and config
    assert len(msb.cache_files("rootfs")) == 1

    assert "Freed" in msb.run("image", "prune", check=True).out
    msb.rootfs(ref2)
    msb.run("image", "rm", ref2, check=True)
    assert msb.cache_files("blobs/sha256") == []
    assert msb.cache_files("rootfs") == []
    assert msb.cache_files("layers") == []
    assert msb.run("image", "rm", ref2, check=False).returncode == EXIT_IMAGE_NOT_FOUND


def test_two_pulls_at_once(msb, registry, tmp_path):
    layers = [TarLayer().file(f"f{i}", os.urandom(300000)).bytes() for i in range(4)]
    ref = push_layers(registry, tmp_path, "test/race", "r", layers)
    procs = [msb.popen("pull", "-q", ref) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    assert len(msb.cache_files("rootfs")) == 1
    assert msb.cache_files("tmp") == []
    msb.rootfs(ref)


def add_sandbox(msb, name, image):
    """Records a sandbox the way the sandbox code does (no VM needed)."""
    import sqlite3

    db = sqlite3.connect(msb.home / "db" / "msb.db")
    db.execute("INSERT INTO sandboxes (name, image, config, status, created_at, updated_at)"
               " VALUES (?, ?, '{}', 'stopped', 0, 0)", (name, image))
    db.commit()
    db.close()


def test_in_use(msb, registry, tmp_path):
    EXIT_CONFLICT = 114
    ref = push_layers(registry, tmp_path, "test/used", "u", [TarLayer().file("a", "1").bytes()])
    msb.run("pull", ref, check=True)
    digest = msb.inspect(ref)["Digest"]
    add_sandbox(msb, "by-tag", ref)
    r = msb.run("image", "rm", ref, check=False)
    assert r.returncode == EXIT_CONFLICT and "by-tag" in r.err, r.err
    msb.run("image", "rm", "-f", ref, check=True)

    # a sandbox pinned to the digest keeps the image through a prune, untagged
    msb.run("pull", ref, check=True)
    add_sandbox(msb, "pinned", f"{registry.host}/test/used@{digest}")
    push_layers(registry, tmp_path / "v2", "test/used", "u",
                [TarLayer().file("a", "2").bytes()])
    msb.run("pull", ref, check=True)  # the tag moves to a new manifest
    assert msb.inspect(ref)["Digest"] != digest
    msb.run("image", "prune", check=True)
    disk = msb.rootfs(digest)  # still here, and whole
    assert cat(disk, "/a") == "1"
    r = msb.run("image", "rm", digest, check=False)
    assert r.returncode == EXIT_CONFLICT and "pinned" in r.err, r.err
