#!/usr/bin/env python3
"""Checks the image scripts/image wrote, the way a container runtime would
use it but without one: verifies the OCI layout (index -> manifest -> config
and layers, every blob against its digest), reads the config (entrypoint,
user, platform, version label), unpacks the layers in order into a scratch
root filesystem, and runs the entrypoint through that filesystem's own
dynamic loader with only its libraries, as the nonroot user when we are root,
with --version and --help.

    check.py OCI_LAYOUT_DIR EXPECTED_VERSION
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ENTRYPOINT = ["/usr/local/bin/iam-operator"]
USER = "65532:65532"
PLATFORM = ("linux", "amd64")


def fail(msg: str) -> None:
    raise SystemExit(f"image check: {msg}")


def blob(oci: Path, digest: str) -> Path:
    algo, hexd = digest.split(":", 1)
    path = oci / "blobs" / algo / hexd
    if algo != "sha256":
        fail(f"unexpected digest algorithm {digest}")
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != hexd:
        fail(f"blob {digest} does not match its digest")
    return path


def resolve_in_root(root: Path, path: str) -> Path:
    """Follows symlinks as they would resolve inside the container: an
    absolute target is relative to the image's root, not the host's (the
    loader symlink /lib64/ld-linux-x86-64.so.2 is absolute)."""
    parts = [p for p in path.split("/") if p]
    current = Path("/")
    for _ in range(40):
        if not parts:
            return root / current.relative_to("/")
        part = parts.pop(0)
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        host = root / candidate.relative_to("/")
        if host.is_symlink():
            target = os.readlink(host)
            parts = [p for p in target.split("/") if p] + parts
            current = Path("/") if target.startswith("/") else current
        else:
            current = candidate
    fail(f"too many symlinks resolving {path}")
    raise AssertionError


def main() -> None:
    oci, version = Path(sys.argv[1]), sys.argv[2]

    index = json.loads((oci / "index.json").read_text())
    if len(index["manifests"]) != 1:
        fail(f"expected one manifest in index.json, found {len(index['manifests'])}")
    manifest = json.loads(blob(oci, index["manifests"][0]["digest"]).read_text())
    if manifest.get("mediaType") != "application/vnd.oci.image.manifest.v1+json":
        fail(f"manifest media type {manifest.get('mediaType')}, expected OCI")
    config = json.loads(blob(oci, manifest["config"]["digest"]).read_text())

    got = (config.get("os"), config.get("architecture"))
    if got != PLATFORM:
        fail(f"platform {got}, expected {PLATFORM}")
    cfg = config.get("config", {})
    if cfg.get("Entrypoint") != ENTRYPOINT:
        fail(f"entrypoint {cfg.get('Entrypoint')}, expected {ENTRYPOINT}")
    if cfg.get("Cmd"):
        fail(f"unexpected Cmd {cfg['Cmd']}: the operator's flags come from the Deployment")
    if cfg.get("User") != USER:
        fail(f"user {cfg.get('User')!r}, expected {USER}")
    label = cfg.get("Labels", {}).get("org.opencontainers.image.version")
    if label != version:
        fail(f"version label {label!r}, expected {version}")
    print(f"image check: config ok (entrypoint {ENTRYPOINT[0]}, user {USER}, {'/'.join(PLATFORM)})")

    scratch = Path(tempfile.mkdtemp(prefix="iam-operator-image-"))
    try:
        # Traversable by the nonroot user the entrypoint runs as below.
        scratch.chmod(0o755)
        root = scratch / "rootfs"
        root.mkdir()
        for layer in manifest["layers"]:
            if not layer["mediaType"].endswith("tar+gzip"):
                fail(f"unexpected layer media type {layer['mediaType']}")
            path = blob(oci, layer["digest"])
            # Applying layers by plain extraction is right only without
            # whiteouts; these layers add files and never delete any.
            with tarfile.open(path) as t:
                names = t.getnames()
            if any(Path(n).name.startswith(".wh.") for n in names):
                fail(f"layer {layer['digest']} has whiteouts; unpack it with a real OCI tool")
            subprocess.run(["tar", "-xzf", str(path), "-C", str(root)], check=True)

        binary = root / ENTRYPOINT[0].lstrip("/")
        if not os.access(binary, os.X_OK):
            fail(f"{ENTRYPOINT[0]} is missing or not executable in the image")
        out = subprocess.run(["readelf", "-l", str(binary)], check=True, capture_output=True, text=True).stdout
        m = re.search(r"Requesting program interpreter: (\S+)\]", out)
        if not m:
            fail("the entrypoint has no ELF interpreter")
        loader = resolve_in_root(root, m.group(1))
        if not loader.is_file():
            fail(f"the image lacks the entrypoint's loader {m.group(1)}")
        lib_path = ":".join(
            str(d) for d in sorted(root.glob("lib/*-linux-gnu")) + sorted(root.glob("usr/lib/*-linux-gnu"))
        )
        # Only the image's libraries: no host cache, no host library path.
        base = [str(loader), "--inhibit-cache", "--library-path", lib_path]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}

        def as_nonroot() -> None:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65532)
                os.setuid(65532)

        def run(*args: str) -> str:
            r = subprocess.run(
                [*base, *args], capture_output=True, text=True, env=env, preexec_fn=as_nonroot, timeout=60
            )
            if r.returncode != 0:
                fail(f"{' '.join(args[1:]) or args[0]} exited {r.returncode}: {r.stderr.strip()}")
            return r.stdout

        listed = run("--list", str(binary))
        for line in listed.splitlines():
            if "not found" in line:
                fail(f"the image lacks a library: {line.strip()}")
            for p in re.findall(r"(/\S+) \(0x", line):
                if not Path(p).resolve().is_relative_to(root.resolve()):
                    fail(f"a library resolved outside the image: {line.strip()}")
        print("image check: the entrypoint loads only the image's libraries:")
        for line in listed.splitlines():
            print("    " + line.strip().replace(str(root), "<image>"))

        got_version = run(str(binary), "--version").strip()
        if got_version != f"iam-operator {version}":
            fail(f"--version printed {got_version!r}, expected 'iam-operator {version}'")
        help_text = run(str(binary), "--help")
        if "Usage: iam-operator" not in help_text or "--cluster-name" not in help_text:
            fail(f"--help printed no usage:\n{help_text}")
        who = "uid 65532" if os.geteuid() == 0 else f"uid {os.geteuid()}"
        print(f"image check: entrypoint ran as {who}: --version printed {got_version!r}; --help printed the usage")

        certs = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
        count = certs.count("-----BEGIN CERTIFICATE-----")
        if count < 100:
            fail(f"CA bundle has {count} certificates")
        passwd = (root / "etc/passwd").read_text()
        if not re.search(r"^nonroot:x:65532:65532:", passwd, re.M):
            fail("/etc/passwd lacks the nonroot user 65532")
        print(f"image check: CA bundle with {count} roots; /etc/passwd names uid 65532")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
