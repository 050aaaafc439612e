"""An OS image's full recipe: the inventory's ``bitten_provision.images`` entry plus what every image gets.

The hash of the recipe names the build (``<image>-<hash>``): the same recipe gives the same name on every machine,
so a build is cached and shared by that name, and a node's boot report says which recipe it runs. The hash covers
everything that goes into the image: the release, the mirror, the packages, the kept kernel modules, the script run
inside the new root and every file bitten puts into it (``bitten/provision/image_files``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bitten.site.model import ImageRecipe

#: bump when the builder changes what it makes from the same recipe
BUILDER_VERSION = "2"

MIRROR = os.environ.get("BITTEN_DEBIAN_MIRROR", "http://deb.debian.org/debian")

#: what every image has: systemd, SSH for Ansible (python3, python3-apt), networkd, the phone-home and the
#: disk-deploy tools (sfdisk, mkfs, curl, zstd, cpio)
BASE_PACKAGES: tuple[str, ...] = (
    "systemd", "systemd-sysv", "udev", "kmod", "dbus", "openssh-server", "python3", "python3-apt", "iproute2",
    "curl", "ca-certificates", "procps", "zstd", "cpio", "sudo", "less", "fdisk", "e2fsprogs", "dosfstools",
    "systemd-resolved",
)
#: installed after the initramfs settings are in place, so the kernel's own initramfs (for disk boots) is small
KERNEL_PACKAGES: tuple[str, ...] = ("linux-image-amd64", "initramfs-tools", "systemd-boot-efi")

#: files bitten puts into every image (the boot report, the disk deploy, their units), part of the hash
IMAGE_FILES = Path(__file__).resolve().parent / "image_files"
#: the script the builder runs inside the new root (part of the hash)
CUSTOMISE = Path(__file__).resolve().parent / "build" / "customise.sh"


@cache
def image_files() -> dict[str, bytes]:
    """Relative path inside the image -> content, for every file under image_files/ (sorted)."""
    out: dict[str, bytes] = {}
    for path in sorted(IMAGE_FILES.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            out[str(path.relative_to(IMAGE_FILES))] = path.read_bytes()
    return out


@dataclass(frozen=True)
class Recipe:
    """One image, as the builder makes it."""

    name: str
    image: ImageRecipe
    mirror: str = MIRROR

    @property
    def packages(self) -> tuple[str, ...]:
        """Packages debootstrap installs (the kernel comes later, see KERNEL_PACKAGES)."""
        return tuple(sorted({*BASE_PACKAGES, *self.image.packages}))

    @property
    def digest(self) -> str:
        return recipe_digest(self.name, self.image, self.mirror)

    @property
    def id(self) -> str:
        """``<name>-<hash>``: the build's name in the cache, on the provisioner and in boot reports."""
        return f"{self.name}-{self.digest}"


@cache
def recipe_digest(name: str, image: ImageRecipe, mirror: str = MIRROR) -> str:
    files = {path: hashlib.sha256(content).hexdigest() for path, content in image_files().items()}
    files["<customise>"] = hashlib.sha256(CUSTOMISE.read_bytes()).hexdigest()
    text = json.dumps({
        "builder": BUILDER_VERSION, "name": name, "release": image.release, "mirror": mirror,
        "packages": sorted({*BASE_PACKAGES, *image.packages}), "kernel": list(KERNEL_PACKAGES),
        "kernel_modules": sorted(image.kernel_modules), "files": files,
    }, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
