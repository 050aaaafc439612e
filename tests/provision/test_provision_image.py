"""The image's root file system as the kernel reads it: followed by the node's identity overlay in one initrd."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bitten.provision import image

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None or shutil.which("cpio") is None,
                                reason="needs zstd and cpio (scripts/host-deps installs them)")


def test_the_root_file_system_ends_on_a_4_byte_boundary(tmp_path: Path) -> None:
    """iPXE and the EFI stub hand the kernel rootfs.cpio.zst and identity.cpio back to back; the kernel takes the
    next archive only at a 4-byte aligned offset (NUL bytes between archives are skipped), so an unaligned root
    file system made it drop the overlay: no host name, no host key, no node.json, no boot report."""
    for size in range(4):
        tree = tmp_path / f"tree{size}"
        (tree / "etc").mkdir(parents=True)
        (tree / "etc" / "hostname").write_text("x" * size)
        dest = tmp_path / f"rootfs{size}.cpio.zst"
        image._pack(tree, dest)
        assert dest.stat().st_size % 4 == 0
        # the disk deploy unpacks it with zstd -dcf | cpio: the padding passes as NULs after cpio's trailer
        listing = subprocess.run(f"zstd -dcf {dest} | cpio -t --quiet", shell=True, capture_output=True, text=True,
                                 check=True)
        assert "etc/hostname" in listing.stdout.split()
