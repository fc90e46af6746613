# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the registry tests: a real registry (Debian's docker-registry)
on 127.0.0.1 and a free port, OCI layouts built with umoci or by hand and
pushed with skopeo, a token server for the Bearer flow, and the msb image
commands run with an isolated MSB_HOME. Every image the tests materialise is
checked with e2fsck -fn."""
import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MSB_BUILD", ROOT / "build"))
TOOLS = ["docker-registry", "skopeo", "umoci", "e2fsck", "debugfs", "zstd"]
RUN_TIMEOUT = 600


def _missing_tools():
    return [t for t in TOOLS if not shutil.which(t) and not Path("/sbin", t).exists()]


def pytest_collection_modifyitems(config, items):
    missing = _missing_tools()
    if missing:
        skip = pytest.mark.skip(reason="missing: " + ", ".join(missing) + " (make deps)")
        for item in items:
            item.add_marker(skip)


def msb_binary():
    """The msb under test: $MSB, else the build's."""
    return os.environ.get("MSB") or str(BUILD / "cmd" / "msb" / "msb")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- msb ---------------------------------------------------------------


class Msb:
    def __init__(self, exe, home):
        self.exe = exe
        self.home = home

    def env(self, extra=None):
        env = dict(os.environ)
        env["MSB_HOME"] = str(self.home)
        env["HOME"] = str(self.home.parent)  # no ~/.docker of the user running the tests
        env.pop("DOCKER_CONFIG", None)
        env.update(extra or {})
        return env

    def run(self, *args, input=None, env=None, timeout=RUN_TIMEOUT, check=None):
        r = subprocess.run([self.exe, *map(str, args)], input=input, capture_output=True,
                           env=self.env(env), timeout=timeout)
        r.out = r.stdout.decode(errors="replace")
        r.err = r.stderr.decode(errors="replace")
        if check is True and r.returncode != 0:
            raise AssertionError(f"msb {' '.join(map(str, args))} failed ({r.returncode}):\n"
                                 f"{r.err}{r.out}")
        if check is False and r.returncode == 0:
            raise AssertionError(f"msb {' '.join(map(str, args))} succeeded:\n{r.out}")
        return r

    def popen(self, *args, env=None):
        return subprocess.Popen([self.exe, *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env(env))

    def inspect(self, ref):
        return json.loads(self.run("image", "inspect", ref, check=True).out)[0]

    def rootfs(self, ref):
        """The root disk of ref, after checking it with e2fsck -fn."""
        disk = self.inspect(ref)["RootDisk"]
        assert disk and Path(disk).exists(), f"{ref} has no root disk"
        fsck = subprocess.run([tool("e2fsck"), "-fn", disk], capture_output=True, text=True)
        assert fsck.returncode == 0, f"e2fsck -fn {disk}:\n{fsck.stdout}{fsck.stderr}"
        return disk

    def cache_files(self, sub):
        d = self.home / "cache" / sub
        return sorted(p.name for p in d.iterdir()) if d.exists() else []


def tool(name):
    return shutil.which(name) or str(Path("/sbin", name))


def debugfs(disk, request):
    return subprocess.run([tool("debugfs"), "-R", request, disk], capture_output=True,
                          text=True, errors="replace").stdout


def cat(disk, path):
    return debugfs(disk, f'cat "{path}"')


def exists(disk, path):
    return "Inode:" in debugfs(disk, f'stat "{path}"')


def ls(disk, path):
    out = debugfs(disk, f'ls "{path}"')
    names = []
    for tok in out.split():
        if tok.startswith("(") or tok.isdigit():
            continue
        if tok not in (".", ".."):
            names.append(tok)
    return sorted(names)


@pytest.fixture
def msb(tmp_path):
    home = tmp_path / "msb-home"
    home.mkdir()
    yield Msb(msb_binary(), home)


# ---- the registry --------------------------------------------------------


class Registry:
    def __init__(self, workdir):
        self.dir = workdir
        self.data = workdir / "data"
        self.port = free_port()
        self.proc = None
        self.log = workdir / "registry.log"

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self, auth=None):
        cfg = ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
               f"    rootdirectory: {self.data}", "  delete:", "    enabled: true",
               "http:", f"  addr: 127.0.0.1:{self.port}"]
        if auth and auth[0] == "htpasswd":
            cfg += ["auth:", "  htpasswd:", "    realm: test", f"    path: {auth[1]}"]
        elif auth and auth[0] == "token":
            _, realm, service, issuer, bundle = auth
            cfg += ["auth:", "  token:", f"    realm: {realm}", f"    service: {service}",
                    f"    issuer: {issuer}", f"    rootcertbundle: {bundle}"]
        path = self.dir / "config.yml"
        path.write_text("\n".join(cfg) + "\n")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(path)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("docker-registry did not start:\n" + self.log.read_text())
                time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def restart(self, auth=None):
        self.stop()
        self.start(auth)

    def blob_file(self, digest):
        hexd = digest.split(":", 1)[1]
        return (self.data / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data")

    def push(self, layout, tag, repo, all_platforms=False, creds=None):
        args = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if all_platforms:
            args.append("--all")
        if creds:
            args += ["--dest-creds", creds]
        args += [f"oci:{layout}:{tag}", f"docker://{self.host}/{repo}:{tag}"]
        subprocess.run(args, check=True, capture_output=True, timeout=RUN_TIMEOUT)
        return f"{self.host}/{repo}:{tag}"


@pytest.fixture
def registry(tmp_path):
    workdir = tmp_path / "registry"
    workdir.mkdir()
    reg = Registry(workdir)
    reg.start()
    yield reg
    reg.stop()


# ---- images ----------------------------------------------------------------


class Umoci:
    """An OCI layout built layer by layer: change rootfs, then commit()."""

    def __init__(self, path, tag="latest"):
        self.layout = path
        self.tag = tag
        self.bundle = path.with_name(path.name + "-bundle")
        subprocess.run(["umoci", "init", "--layout", str(path)], check=True)
        subprocess.run(["umoci", "new", "--image", f"{path}:{tag}"], check=True)
        subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{path}:{tag}",
                        str(self.bundle)], check=True, capture_output=True)
        self.rootfs = self.bundle / "rootfs"

    def commit(self):
        subprocess.run(["umoci", "repack", "--refresh-bundle", "--image",
                        f"{self.layout}:{self.tag}", str(self.bundle)], check=True,
                       capture_output=True)

    def config(self, *args):
        subprocess.run(["umoci", "config", "--image", f"{self.layout}:{self.tag}", *args],
                       check=True, capture_output=True)


class TarLayer:
    """A layer written entry by entry with tarfile (hostile entries allowed)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name, data=b"", type=tarfile.REGTYPE, linkname="", mode=0o644, uid=0,
            gid=0, devmajor=0, devminor=0, pax=None):
        ti = tarfile.TarInfo(name)
        ti.type = type
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = 1700000000
        ti.linkname = linkname
        ti.devmajor, ti.devminor = devmajor, devminor
        if pax:
            ti.pax_headers = pax
        if type == tarfile.REGTYPE:
            ti.size = len(data)
            self.tar.addfile(ti, io.BytesIO(data))
        else:
            self.tar.addfile(ti)
        return self

    def file(self, name, text, **kw):
        return self.add(name, text.encode() if isinstance(text, str) else text, **kw)

    def dir(self, name, **kw):
        kw.setdefault("mode", 0o755)
        return self.add(name, type=tarfile.DIRTYPE, **kw)

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                              check=True).stdout
    return data


LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


class RawLayout:
    """An OCI layout written by hand: arbitrary layers, configs and indexes."""

    def __init__(self, path):
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": []}

    def blob(self, data):
        d = sha256(data)
        (self.path / "blobs" / "sha256" / d.split(":")[1]).write_bytes(data)
        return {"digest": d, "size": len(data)}

    def manifest(self, layers, config=None, compression="gzip", arch="amd64", os_="linux"):
        """layers: raw tar bytes; returns the manifest descriptor."""
        descs, diff_ids = [], []
        for tar in layers:
            diff_ids.append(sha256(tar))
            d = self.blob(compress(tar, compression))
            d["mediaType"] = LAYER_TYPES[compression]
            descs.append(d)
        cfg = {"architecture": arch, "os": os_, "created": "2024-01-01T00:00:00Z",
               "config": config or {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        c = self.blob(json.dumps(cfg).encode())
        c["mediaType"] = "application/vnd.oci.image.config.v1+json"
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
             "config": c, "layers": descs}
        d = self.blob(json.dumps(m).encode())
        d["mediaType"] = m["mediaType"]
        d["platform"] = {"architecture": arch, "os": os_}
        return d

    def tag(self, tag, desc):
        entry = dict(desc)
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index["manifests"].append(entry)
        (self.path / "index.json").write_text(json.dumps(self.index))

    def tag_index(self, tag, manifests):
        """An image index of several platforms under tag."""
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": manifests}
        d = self.blob(json.dumps(idx).encode())
        d["mediaType"] = idx["mediaType"]
        self.tag(tag, d)


def push_layers(registry, tmp_path, repo, tag, layers, config=None, compression="gzip"):
    """Pushes an image of the given tar layers; returns its reference."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    lay = RawLayout(tmp_path / f"layout-{repo.replace('/', '-')}-{tag}")
    lay.tag(tag, lay.manifest(layers, config, compression))
    return registry.push(lay.path, tag, repo)


# ---- the token server ----------------------------------------------------


class TokenServer:
    """Issues registry tokens (RS256, with the certificate in x5c) to
    clients that authenticate with Basic users, and anonymous pull tokens
    when allowed."""

    def __init__(self, workdir, users=None, anonymous=False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = users or {}
        self.anonymous = anonymous
        self.requests = []
        self.service = "test-registry"
        self.issuer = "test-issuer"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .sign(self.key, hashes.SHA256()))
        self.bundle = workdir / "token-cert.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self):
        return f"http://127.0.0.1:{self.port}/token"

    def auth_config(self):
        return ("token", self.realm, self.service, self.issuer, str(self.bundle))

    def handle(self, h):
        import jwt

        url = urllib.parse.urlparse(h.path)
        q = urllib.parse.parse_qs(url.query)
        auth = h.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(u) != p:
                return self._reply(h, 401, {"details": "bad credentials"})
            user = u
        elif not self.anonymous:
            return self._reply(h, 401, {"details": "authentication required"})
        self.requests.append({"user": user, "scope": q.get("scope", [""])[0],
                              "service": q.get("service", [""])[0]})
        access = []
        for scope in q.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if a == "pull" or user]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        token = jwt.encode(claims, self.key, algorithm="RS256",
                           headers={"x5c": [base64.b64encode(self.der).decode()]})
        self._reply(h, 200, {"token": token, "expires_in": 300})

    @staticmethod
    def _reply(h, status, body):
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
