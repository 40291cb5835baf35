"""Random multi-layer images pushed straight to a registry over its HTTP API v2.

Benchmarks need big images; with vfs storage every build step through the
daemon copies the whole filesystem, so a many-layer image built there costs
O(layers^2) disk and time. Here each layer is a gzip'd tar (stored, not
compressed: random bytes do not compress) holding one file of random bytes,
written once to a temp file and uploaded monolithically; then the config and a
schema-2 manifest. The first layer is the busybox rootfs, so the image runs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import requests

from .images import busybox_rootfs_tar
from .procs import StackError

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: IO[bytes] | None) -> None:
        super().__init__()
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        if self.sink is not None:
            self.sink.write(view)
        return len(view)


class _RandomReader(io.RawIOBase):
    """``size`` random bytes, read in chunks."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left, 1 << 20)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


def _write_layer(path: Path, members: Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]) -> tuple[str, str, int]:
    """Write a gzip'd layer tar to ``path``; return (blob digest, diff id, blob size)."""
    with path.open("wb") as raw:
        blob = _HashingWriter(raw)
        # compresslevel 0: random bytes do not compress, and zlib would be the bottleneck
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=0, mtime=0) as gz:
            diff = _HashingWriter(gz)
            with tarfile.open(fileobj=diff, mode="w|", format=tarfile.PAX_FORMAT, bufsize=1 << 20) as tar:
                for info, fileobj in members:
                    tar.addfile(info, fileobj)
    return f"sha256:{blob.sha.hexdigest()}", f"sha256:{diff.sha.hexdigest()}", blob.size


def _random_members(index: int, size: int) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    folder = tarfile.TarInfo("data")
    folder.type = tarfile.DIRTYPE
    folder.mode = 0o755
    yield folder, None
    info = tarfile.TarInfo(f"data/layer-{index:03d}.bin")
    info.size = size
    yield info, io.BufferedReader(_RandomReader(size), buffer_size=1 << 20)


def _busybox_members() -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        for member in tar.getmembers():
            yield member, tar.extractfile(member) if member.isfile() else None


def _upload_blob(session: requests.Session, base: str, repo: str, digest: str, data: Path | bytes) -> None:
    if session.head(f"{base}/v2/{repo}/blobs/{digest}", timeout=30).status_code == 200:
        return
    start = session.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=30)
    if start.status_code != 202:
        raise StackError(f"blob upload to {repo} refused: {start.status_code} {start.text}")
    location = requests.compat.urljoin(f"{base}/", start.headers["Location"])
    sep = "&" if "?" in location else "?"
    headers = {"Content-Type": "application/octet-stream"}
    if isinstance(data, Path):
        with data.open("rb") as body:
            headers["Content-Length"] = str(data.stat().st_size)
            done = session.put(f"{location}{sep}digest={digest}", data=body, headers=headers, timeout=600)
    else:
        done = session.put(f"{location}{sep}digest={digest}", data=data, headers=headers, timeout=600)
    if done.status_code != 201:
        raise StackError(f"blob {digest} upload to {repo} failed: {done.status_code} {done.text}")


def push_layers_via_api(
    registry: str,
    username: str,
    password: str,
    repo: str,
    tag: str,
    layers: int,
    layer_mb: int,
    work_dir: Path,
    *,
    scheme: str = "http",
    verify: bool | str = True,
) -> str:
    """Push ``<registry>/<repo>:<tag>``: busybox base plus ``layers`` random layers of ``layer_mb`` MiB."""
    if layers < 1 or layer_mb < 0:
        raise ValueError("need layers >= 1 and layer_mb >= 0")
    base = f"{scheme}://{registry}"
    work_dir.mkdir(parents=True, exist_ok=True)
    session = requests.Session()
    session.auth = (username, password)
    session.verify = verify
    descriptors, diff_ids, history = [], [], []
    try:
        sources: list[Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]] = [_busybox_members()]
        sources += [_random_members(i, layer_mb << 20) for i in range(layers)]
        for number, members in enumerate(sources):
            path = work_dir / f"layer-{os.getpid()}-{number}.tar.gz"
            try:
                digest, diff_id, size = _write_layer(path, members)
                _upload_blob(session, base, repo, digest, path)
            finally:
                path.unlink(missing_ok=True)
            descriptors.append({"mediaType": LAYER_TYPE, "size": size, "digest": digest})
            diff_ids.append(diff_id)
            history.append(
                {
                    "created": "2024-01-01T00:00:00Z",
                    "created_by": "busybox rootfs" if number == 0 else f"random layer {number}",
                }
            )
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "config": {"Env": [PATH_ENV], "Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": history,
            },
            sort_keys=True,
        ).encode()
        config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
        _upload_blob(session, base, repo, config_digest, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_V2,
                "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
                "layers": descriptors,
            }
        ).encode()
        put = session.put(
            f"{base}/v2/{repo}/manifests/{tag}", data=manifest, headers={"Content-Type": MANIFEST_V2}, timeout=60
        )
        if put.status_code != 201:
            raise StackError(f"manifest push {repo}:{tag} failed: {put.status_code} {put.text}")
    finally:
        session.close()
    return f"{registry}/{repo}:{tag}"
