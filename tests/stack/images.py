"""Test images, made without Docker Hub and pushed to the stack's registries.

Seeded through the sandboxed daemon (``seed``):

* ``busybox``   ``docker import`` of a tiny rootfs: /bin/busybox (busybox-static)
                with sh, echo, sleep, cat and env links; ``CMD ["/bin/sh"]``.
* ``layers``    ``FROM`` busybox plus three ``COPY`` layers of 8 MiB random bytes
                (legacy builder, as ``DOCKER_BUILDKIT=0 docker build``).
* ``arm64_only`` a ``FROM scratch`` image built with ``platform=linux/arm64``.
* ``multiarch`` a manifest list (amd64 + arm64) made with ``docker manifest
                create/annotate/push --insecure`` from ``<repo>:1.0-amd64`` and
                ``<repo>:1.0-arm64``, which stay in the registry too.

``push_random_image`` (random_images.py) talks the registry HTTP API instead.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker

from .procs import StackError, run

BUSYBOX_APPLETS = ("sh", "echo", "sleep", "cat", "env")
BUSYBOX_BINARY = Path("/bin/busybox")
LAYER_FILES = 3
LAYER_MB = 8


# ---------------------------------------------------------------- tar helpers


def _tar_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _tar_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def busybox_rootfs_tar() -> bytes:
    """A reproducible tar of a minimal rootfs around busybox-static."""
    if not BUSYBOX_BINARY.exists():
        raise StackError(f"{BUSYBOX_BINARY} missing: run `bash tests/stack/install.sh` (busybox-static)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_dir(tar, "bin")
        _tar_dir(tar, "tmp", 0o1777)
        _tar_bytes(tar, "bin/busybox", BUSYBOX_BINARY.read_bytes(), 0o755)
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mode = 0o777
            tar.addfile(link)
    return buf.getvalue()


def _context_tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            _tar_bytes(tar, name, data)
    buf.seek(0)
    return buf


# ------------------------------------------------------------- daemon helpers


def _check_stream(chunks: Iterable[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """Consume a decoded Docker progress stream; raise on any error chunk."""
    seen = []
    for chunk in chunks:
        seen.append(chunk)
        if "errorDetail" in chunk or "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
            raise StackError(f"{what}: {detail}")
    return seen


def _build(
    api: docker.APIClient, tag: str, dockerfile: str, files: dict[str, bytes], platform: str | None = None
) -> None:
    context = _context_tar({"Dockerfile": dockerfile.encode(), **files})
    stream = api.build(
        fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, decode=True, platform=platform, pull=False
    )
    _check_stream(stream, f"build {tag}")


def _push(api: docker.APIClient, ref: str, auth_config: dict[str, str] | None = None) -> str:
    repo, tag = ref.rsplit(":", 1)
    stream = api.push(repo, tag, stream=True, decode=True, auth_config=auth_config)
    chunks = _check_stream(stream, f"push {ref}")
    for chunk in chunks:
        digest = (chunk.get("aux") or {}).get("Digest")
        if digest:
            return str(digest)
    raise StackError(f"push {ref}: no digest in the daemon's answer")


def _docker_cli_env(docker_host: str, config_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(config_dir), DOCKER_CLI_EXPERIMENTAL="enabled")
    return env


def _manifest_list(
    docker_host: str, config_dir: Path, registry: str, username: str, password: str, target: str, parts: dict[str, str]
) -> None:
    """``docker manifest create/annotate/push --insecure`` with a private DOCKER_CONFIG."""
    cli = shutil.which("docker")
    if cli is None:
        raise StackError("docker CLI not found: run `bash tests/stack/install.sh` (docker.io)")
    config_dir.mkdir(parents=True, exist_ok=True)
    env = _docker_cli_env(docker_host, config_dir)
    run([cli, "login", "--username", username, "--password-stdin", registry], env=env, input_text=password)
    try:
        run([cli, "manifest", "create", "--insecure", "--amend", target, *parts.values()], env=env)
        for arch, ref in parts.items():
            run([cli, "manifest", "annotate", "--arch", arch, "--os", "linux", target, ref], env=env)
        run([cli, "manifest", "push", "--insecure", "--purge", target], env=env)
    finally:
        run([cli, "logout", registry], env=env)
        shutil.rmtree(config_dir, ignore_errors=True)


def clear_images(api: docker.APIClient, *, rounds: int = 5) -> None:
    """Remove every image from the daemon (tests start from one that has none).

    Children before parents: each round removes what it can; a parent whose
    child is still there answers 409 and goes in a later round.
    """
    for _round in range(rounds):
        left = api.images(all=True)
        if not left:
            return
        for image in left:
            try:
                api.remove_image(image["Id"], force=True)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
    left = api.images(all=True)
    if left:
        raise StackError(f"images left in the sandboxed daemon: {[i['RepoTags'] for i in left]}")


def seed(
    docker_host: str,
    registry: str,
    username: str,
    password: str,
    work_dir: Path,
    *,
    ecr: tuple[str, str, str] | None = None,
) -> dict[str, str]:
    """Build the test images, push them, then remove them from the daemon.

    ``ecr`` is ``(host, username, password)`` of the ECR-like registry; when
    given, busybox is pushed there too as ``<host>/team/app:1.0``.
    Returns the logical name -> reference map.
    """
    client = docker.DockerClient(base_url=docker_host, timeout=120)
    api = client.api
    images = {
        "busybox": f"{registry}/team/busybox:1.0",
        "layers": f"{registry}/team/layers:1.0",
        "arm64_only": f"{registry}/team/arm64-only:1.0",
        "multiarch": f"{registry}/team/multiarch:1.0",
    }
    amd64_part = f"{registry}/team/multiarch:1.0-amd64"
    arm64_part = f"{registry}/team/multiarch:1.0-arm64"
    try:
        # The daemon checks the credentials; pushes below use the stored login.
        client.login(username=username, password=password, registry=registry)

        busybox_repo, busybox_tag = images["busybox"].rsplit(":", 1)
        api.import_image_from_data(
            busybox_rootfs_tar(), repository=busybox_repo, tag=busybox_tag, changes=['CMD ["/bin/sh"]']
        )
        random_files = {f"r{i}": os.urandom(LAYER_MB << 20) for i in range(1, LAYER_FILES + 1)}
        copies = "".join(f"COPY {name} /data/{name}\n" for name in random_files)
        _build(api, images["layers"], f"FROM {images['busybox']}\n{copies}", random_files)
        tiny = {"hello.txt": b"hello from the arm64 test image\n"}
        _build(
            api,
            images["arm64_only"],
            'FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/bin/sh"]\n',
            tiny,
            platform="linux/arm64",
        )
        api.tag(images["arm64_only"], *arm64_part.rsplit(":", 1))
        _build(api, amd64_part, f"FROM {images['busybox']}\nLABEL variant=amd64\n", {}, platform="linux/amd64")
        arch = api.inspect_image(images["arm64_only"])["Architecture"]
        if arch != "arm64":
            raise StackError(f"arm64 build produced architecture {arch!r}")

        for ref in (images["busybox"], images["layers"], images["arm64_only"], amd64_part, arm64_part):
            _push(api, ref)
        _manifest_list(
            docker_host,
            work_dir / "docker-config",
            registry,
            username,
            password,
            images["multiarch"],
            {"amd64": amd64_part, "arm64": arm64_part},
        )

        if ecr is not None:
            host, ecr_user, ecr_password = ecr
            images["ecr"] = f"{host}/team/app:1.0"
            client.login(username=ecr_user, password=ecr_password, registry=host)
            api.tag(images["busybox"], *images["ecr"].rsplit(":", 1))
            _push(api, images["ecr"])
        clear_images(api)
    finally:
        client.close()  # the SDK keeps logins in the client object only: this drops them
    return images
