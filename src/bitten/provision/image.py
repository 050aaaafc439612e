"""Build a provisioning image from its recipe: debootstrap, the kernel, bitten's boot tools, one zstd cpio.

The same mechanism as the lab's container base image (debootstrap from Debian's mirror, cached by a hash of the
recipe), made into what a node boots:

- ``vmlinuz``: the kernel;
- ``rootfs.cpio.zst``: the whole root file system as a zstd-compressed cpio. Given to the kernel as its initrd
  with ``rdinit=/sbin/init``, it *is* the root file system, in RAM (stateless, as Warewulf does); a disk deploy
  unpacks the same archive onto the node's disk;
- ``initrd-disk.img``: the kernel's own initramfs, which boots a node from its disk after a disk deploy;
- ``manifest.json``: the recipe, the kernel version, each file's sha256 and size.

A build goes into ``<cache>/.<id>.building-<pid>/`` and is renamed to ``<cache>/<id>/`` only when complete, so a
failed build never replaces (or looks like) a finished one; a lock serialises builds of the same recipe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bitten.provision.recipe import CUSTOMISE, KERNEL_PACKAGES, Recipe, image_files

#: files of a finished image, in the order nodes load them
ARTIFACTS = ("vmlinuz", "rootfs.cpio.zst", "initrd-disk.img", "manifest.json")


class ImageError(RuntimeError):
    pass


def cache_dir() -> Path:
    """Where built images are kept: BITTEN_IMAGE_CACHE, else /var/cache/bitten/images (root) or ~/.cache."""
    override = os.environ.get("BITTEN_IMAGE_CACHE")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/cache/bitten/images")
    return Path.home() / ".cache" / "bitten" / "images"


@dataclass(frozen=True)
class BuiltImage:
    recipe: Recipe
    path: Path

    @property
    def manifest(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.path / "manifest.json").read_text())
        return data


def find(recipe: Recipe, cache: Path | None = None) -> BuiltImage | None:
    """The finished build of ``recipe`` in the cache, or None."""
    path = (cache or cache_dir()) / recipe.id
    if all((path / name).is_file() for name in ARTIFACTS):
        return BuiltImage(recipe, path)
    return None


def ensure(recipe: Recipe, cache: Path | None = None, log: Callable[[str], None] = print) -> tuple[BuiltImage, bool]:
    """The build of ``recipe``, built now unless the cache has it; returns (image, built)."""
    root = cache or cache_dir()
    found = find(recipe, root)
    if found is not None:
        return found, False
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f".{recipe.id}.lock"):
        found = find(recipe, root)  # another process may have built it while we waited
        if found is not None:
            return found, False
        return build(recipe, root, log), True


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(recipe: Recipe, cache: Path, log: Callable[[str], None] = print) -> BuiltImage:
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed: run scripts/host-deps (make does)")
    if os.geteuid() != 0:
        raise ImageError("building an image needs root (debootstrap, chroot)")
    started = time.monotonic()
    work = cache / f".{recipe.id}.building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    rootfs, out = work / "root", work / "out"
    out.mkdir(parents=True)
    try:
        log(f"debootstrap {recipe.image.release} ({len(recipe.packages)} packages)")
        _stream(["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
                 recipe.image.release, str(rootfs), recipe.mirror], log)
        for relative, content in image_files().items():
            target = rootfs / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(0o755 if "/sbin/" in f"/{relative}" else 0o644)
        log("kernel, packages and bitten's boot tools")
        env = {"RELEASE": recipe.image.release, "MIRROR": recipe.mirror, "PACKAGES": " ".join(recipe.image.packages),
               "KERNEL_PACKAGES": " ".join(KERNEL_PACKAGES), "MODULES": " ".join(recipe.image.kernel_modules)}
        assignments = [shlex.quote(f"{k}={v}") for k, v in env.items()]
        # proc and dev for the packages' scripts, in a mount namespace of their own: they vanish with it
        _stream(["unshare", "--mount", "--fork", "sh", "-c",
                 f"mount -t proc proc {rootfs}/proc && mount --rbind /dev {rootfs}/dev && "
                 f"exec chroot {rootfs} env {' '.join(assignments)} /bin/sh -s"], log,
                stdin=CUSTOMISE.read_bytes(), verbose=True)
        kernel = _kernel(rootfs)
        shutil.copyfile(rootfs / "boot" / f"vmlinuz-{kernel}", out / "vmlinuz")
        shutil.copyfile(rootfs / "boot" / f"initrd.img-{kernel}", out / "initrd-disk.img")
        for leftover in (rootfs / "boot").iterdir():
            leftover.unlink()
        (rootfs / "etc" / "bitten").mkdir(parents=True, exist_ok=True)
        (rootfs / "etc" / "bitten" / "image.json").write_text(json.dumps(
            {"id": recipe.id, "name": recipe.name, "hash": recipe.digest, "release": recipe.image.release,
             "kernel": kernel}, indent=1, sort_keys=True) + "\n")
        log("packing the root file system (zstd cpio)")
        _pack(rootfs, out / "rootfs.cpio.zst")
        files = {name: {"sha256": _sha256(out / name), "bytes": (out / name).stat().st_size}
                 for name in ARTIFACTS if name != "manifest.json"}
        manifest = {"id": recipe.id, "name": recipe.name, "hash": recipe.digest, "release": recipe.image.release,
                    "kernel": kernel, "packages": list(recipe.packages), "extra_packages": list(recipe.image.packages),
                    "kernel_modules": list(recipe.image.kernel_modules), "files": files,
                    "built_at": int(time.time()), "build_seconds": round(time.monotonic() - started, 1)}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        final = cache / recipe.id
        shutil.rmtree(final, ignore_errors=True)
        out.rename(final)
        log(f"built {recipe.id} in {manifest['build_seconds']} s")
        return BuiltImage(recipe, final)
    finally:
        # root-owned files (and, should unshare have failed, mounts) stay behind otherwise
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


def _kernel(rootfs: Path) -> str:
    versions = sorted(p.name for p in (rootfs / "usr" / "lib" / "modules").iterdir())
    if len(versions) != 1:
        raise ImageError(f"expected one kernel in the image, found {versions or 'none'}")
    return versions[0]


def _pack(rootfs: Path, dest: Path) -> None:
    """The tree as a newc cpio (the kernel's initramfs format), sorted, with zeroed inode numbers, zstd; padded
    with NUL bytes to a multiple of 4.

    A node loads the identity overlay right after this archive, in the same initrd (iPXE and the EFI stub put them
    back to back). The kernel skips NUL bytes between archives but takes the next one only at a 4-byte aligned
    offset: without the padding it reads the overlay as a compressed archive with invalid magic, and drops it.
    ``zstd -dcf`` (the disk deploy) passes the padding on as NULs after cpio's trailer."""
    script = (f"cd {rootfs} && find . -xdev | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet "
              f"| zstd -q -T0 -9 -o {dest}")
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageError(f"packing {rootfs} failed: {proc.stderr.strip()}")
    with dest.open("ab") as out:
        out.write(b"\0" * (-dest.stat().st_size % 4))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stream(cmd: list[str], log: Callable[[str], None], stdin: bytes | None = None, verbose: bool = False) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdin.write(stdin or b"")
    proc.stdin.close()
    tail: list[str] = []
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        tail = [*tail[-29:], line]
        if line.startswith(("I: Retrieving", "I: Extracting", "I: Installing", "I: Configuring", "I: Base")):
            log(line[3:])
        elif verbose and line.strip():
            log(line)
    if proc.wait() != 0:
        raise ImageError(f"{cmd[0]} failed (exit {proc.returncode}):\n" + "\n".join(tail))
