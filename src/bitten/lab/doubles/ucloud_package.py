"""Package the IM TEST DOUBLE like a UCloud IM release, so the ucloud_im role installs it by its real path.

The payload is the /opt/ucloud tree of UCloud's RPM: ``ucloud`` (the IM) and ``envoy/envoy``, here two Python
zipapps (bitten.lab.doubles.ucloud_im and bitten.lab.doubles.envoy with the IM parser they need), plus a TEST-DOUBLE.txt
that says what they are. Formats:

- ``tar``: a .tar.gz of that tree (members relative to /opt/ucloud), the role's tarball source;
- ``deb``: a Debian package ``ucloud-im-test-double`` installing it under /opt/ucloud and depending on the Python
  modules the double needs, so the role's package source resolves them with apt.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipapp
import zipfile
from pathlib import Path

import bitten

FORMATS = ("deb", "tar")
PACKAGE = "ucloud-im-test-double"
DEPENDS = "python3 (>= 3.11), python3-yaml, python3-jwt, python3-cryptography, python3-psycopg2"
_FIXED_TIME = 1_700_000_000  # reproducible archives: same bytes for the same sources

README = """This is the UCloud Integration Module TEST DOUBLE built by bitten, not the UCloud IM.
ucloud       parses /etc/ucloud with the IM's rules, connects to its database, authenticates at UCloud/Core,
             registers its products and serves :42000 (server), :7867 (metrics), ipc/ucloud.sock
envoy/envoy  forwards the gateway port (8889) to the IM server
Replace it with the real IM (ucloud-im RPM, /opt/ucloud/ucloud) on a real site.
"""


def _zipapp(target: Path, main: str, modules: list[str]) -> None:
    src = Path(bitten.__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "app"
        for relative in ["__init__.py", "ucloud/__init__.py", "lab/__init__.py", "lab/doubles/__init__.py", *modules]:
            dest = root / "bitten" / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / relative, dest)
        zipapp.create_archive(root, target, interpreter="/usr/bin/python3", main=main)
        # zipapp writes a __main__.py: fix every timestamp so the same sources give the same bytes
        _reproducible_zip(target)
    target.chmod(0o755)


def _reproducible_zip(path: Path) -> None:
    raw = path.read_bytes()
    shebang, _, _ = raw.partition(b"\n")
    with zipfile.ZipFile(io.BytesIO(raw)) as source:
        entries = sorted((info.filename, source.read(info)) for info in source.infolist())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, data)
    path.write_bytes(shebang + b"\n" + buffer.getvalue())


def _fix_times(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        os.utime(path, (_FIXED_TIME, _FIXED_TIME), follow_symlinks=False)


def payload(root: Path) -> None:
    """Write the /opt/ucloud tree into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    _zipapp(root / "ucloud", "bitten.lab.doubles.ucloud_im:run",
            ["ucloud/im/__init__.py", "ucloud/im/parser.py", "ucloud/im/products.py", "lab/doubles/ucloud_im.py"])
    (root / "envoy").mkdir(exist_ok=True)
    _zipapp(root / "envoy" / "envoy", "bitten.lab.doubles.envoy:run", ["lab/doubles/envoy.py"])
    (root / "TEST-DOUBLE.txt").write_text(README)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = _FIXED_TIME
    return info


def build(fmt: str, out_dir: Path) -> Path:
    """Build the double in ``fmt`` into ``out_dir``; returns the package's path."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    version = f"{bitten.__version__}+double"
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        if fmt == "tar":
            payload(stage / "opt-ucloud")
            target = out_dir / f"{PACKAGE}-{version}.tar.gz"
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted((stage / "opt-ucloud").rglob("*")):
                    tar.add(path, arcname=str(path.relative_to(stage / "opt-ucloud")), recursive=False,
                            filter=_normalise)
            target.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
            return target
        payload(stage / "pkg" / "opt" / "ucloud")
        control = stage / "pkg" / "DEBIAN" / "control"
        control.parent.mkdir(parents=True)
        control.write_text(
            f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\nMaintainer: bitten <bitten@localhost>\n"
            f"Depends: {DEPENDS}\nSection: misc\nPriority: optional\n"
            "Description: UCloud Integration Module TEST DOUBLE (bitten)\n"
            " Stands in for the UCloud IM where it cannot be obtained: parses /etc/ucloud with the IM's rules,\n"
            " registers the provider's products on UCloud/Core and serves the IM's ports.\n")
        _fix_times(stage / "pkg")
        target = out_dir / f"{PACKAGE}_{version}_all.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(stage / "pkg"), str(target)],
                       check=True, stdout=subprocess.DEVNULL, env={"SOURCE_DATE_EPOCH": str(_FIXED_TIME),
                                                                  "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
        return target


def build_core_double(out_dir: Path) -> Path:
    """The UCloud/Core TEST DOUBLE as one zipapp (needs python3-jwt and python3-cryptography where it runs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "ucloud-core-double"
    _zipapp(target, "bitten.lab.doubles.ucloud_core:run", ["lab/doubles/ucloud_core.py"])
    return target
