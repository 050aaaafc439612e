"""The node base image: Debian from its own mirror (debootstrap), imported into podman, cached by recipe hash.

No registry is reachable here, so `podman pull` cannot work; the recipe below is the whole image.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bitten.lab.podman import containers_conf, image_exists, podman

REPOSITORY = "localhost/bitten-base"
MIRROR = os.environ.get("BITTEN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
RELEASES = ("trixie", "bookworm")

#: what every node container needs before Ansible can manage it
PACKAGES = (
    "python3", "python3-apt", "systemd", "systemd-sysv", "dbus", "sudo", "openssh-server", "iproute2",
    "ca-certificates", "procps", "gnupg", "curl", "less", "cron",
)

#: shell run inside the new root filesystem after debootstrap (part of the recipe hash)
CUSTOMISE = r"""
set -eu
# the full release, not only main: the GPU role takes nvidia-driver from non-free
cat > /etc/apt/sources.list <<SOURCES
deb {mirror} {release} main contrib non-free non-free-firmware
deb {mirror} {release}-updates main contrib non-free non-free-firmware
deb http://security.debian.org/debian-security {release}-security main contrib non-free non-free-firmware
SOURCES
# containers only: dpkg need not fsync, manual pages are not needed
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/bitten-unsafe-io
printf 'path-exclude=/usr/share/man/*\n' > /etc/dpkg/dpkg.cfg.d/bitten-noman
# what Debian's installer writes: debootstrap leaves /etc/hosts empty on bookworm, and a service that listens on
# "localhost" (PostgreSQL's default) then finds no address
cat > /etc/hosts <<HOSTS
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
HOSTS
# every container gets its own host keys and machine id at first boot
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
cat > /etc/systemd/system/bitten-ssh-hostkeys.service <<UNIT
[Unit]
Description=Generate this container's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/bitten-ssh-hostkeys.service /etc/systemd/system/multi-user.target.wants/
# consoles make no sense in a container
ln -sf /dev/null /etc/systemd/system/getty@tty1.service
ln -sf /dev/null /etc/systemd/system/console-getty.service
# package lists for the sources above stay in the image: roles refresh them when older than their cache time
apt-get update -qq
apt-get clean
"""


@dataclass(frozen=True)
class Recipe:
    release: str
    packages: tuple[str, ...] = PACKAGES
    mirror: str = MIRROR
    customise: str = field(default=CUSTOMISE, repr=False)

    @property
    def digest(self) -> str:
        text = "\n".join([self.release, self.mirror, *sorted(self.packages), self.customise])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def ref(self) -> str:
        """Tag unique to this recipe: a changed recipe builds a new image."""
        return f"{REPOSITORY}:{self.release}-{self.digest}"

    @property
    def stable_ref(self) -> str:
        """The tag Molecule scenarios and the lab use: always the image of the current recipe."""
        return f"{REPOSITORY}:{self.release}"


def ensure_image(recipe: Recipe, log: Callable[[str], None] = print) -> tuple[str, bool]:
    """Build the image unless one of this recipe exists; returns (ref, built)."""
    built = False
    if not image_exists(recipe.ref):
        build(recipe, log)
        built = True
    podman("tag", recipe.ref, recipe.stable_ref)
    return recipe.ref, built


def build(recipe: Recipe, log: Callable[[str], None] = print) -> None:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: run scripts/host-deps (make does)")
    containers_conf()
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    with tempfile.TemporaryDirectory(prefix="bitten-rootfs-", dir=os.environ.get("BITTEN_BUILD_DIR")) as tmp:
        root = Path(tmp) / "root"
        try:
            log(f"debootstrap {recipe.release} from {recipe.mirror}")
            _stream([*sudo, "debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
                     recipe.release, str(root), recipe.mirror], log)
            script = recipe.customise.format(mirror=recipe.mirror, release=recipe.release)
            _stream([*sudo, "chroot", str(root), "/bin/sh", "-c", script], log)
            log(f"podman import -> {recipe.ref}")
            tar = subprocess.Popen([*sudo, "tar", "-C", str(root), "--numeric-owner", "-c", "."],
                                   stdout=subprocess.PIPE)
            imp = subprocess.run(["podman", "import", "--change", "CMD=/sbin/init", "-", recipe.ref],
                                 stdin=tar.stdout, capture_output=True, text=True, check=False)
            tar.wait()
            if tar.returncode != 0 or imp.returncode != 0:
                raise RuntimeError(f"podman import failed: {imp.stderr.strip()}")
        finally:
            # debootstrap leaves root-owned files (and possibly mounts) behind
            subprocess.run([*sudo, "rm", "-rf", "--one-file-system", str(root)], check=False)


def _stream(cmd: list[str], log: Callable[[str], None]) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for raw in proc.stdout:
        line = raw.rstrip()
        tail = [*tail[-19:], line]
        if line.startswith(("I: Retrieving", "I: Extracting", "I: Installing", "I: Configuring", "I: Base")):
            log(line[3:])
    if proc.wait() != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n" + "\n".join(tail))


@dataclass(frozen=True)
class Derived:
    """The base image plus Debian packages (e.g. Slurm's daemons for a test cluster), cached by recipe hash: a
    scenario or a test that needs them installs them once per recipe, not on every run."""

    name: str
    release: str
    packages: tuple[str, ...]

    @property
    def ref(self) -> str:
        base = Recipe(self.release)
        text = "\n".join([base.digest, *sorted(self.packages)])
        return f"localhost/bitten-{self.name}:{self.release}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def ensure_derived(derived: Derived, log: Callable[[str], None] = print) -> str:
    """Build the derived image unless it exists (the base image must exist: `make images`); returns its ref."""
    if image_exists(derived.ref):
        return derived.ref
    base = Recipe(derived.release).stable_ref
    if not image_exists(base):
        raise RuntimeError(f"{base} is missing: run `make images` first")
    log(f"building {derived.ref}: {' '.join(derived.packages)}")
    _commit_after(base, derived.ref, f"bitten-build-{derived.name}-{os.getpid()}",
                  ["DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                   + " ".join(derived.packages) + " && apt-get clean"])
    return derived.ref


def _commit_after(base: str, ref: str, builder: str, scripts: list[str]) -> None:
    """Run each shell script in a container of ``base`` and commit the result as ``ref`` (the builder is removed)."""
    podman("run", "-d", "--name", builder, base, "sleep", "infinity")
    try:
        for script in scripts:
            podman("exec", builder, "sh", "-c", script)
        podman("commit", "-q", "--change", "CMD=/sbin/init", builder, ref)
    finally:
        podman("rm", "-f", builder, check=False)


#: roles whose packages come from elsewhere than Debian's mirror (the gpu role's from NVIDIA's repository, here the
#: stand-in repository its scenarios serve): they are installed by the scenarios, never pre-installed
NOT_PREINSTALLED_ROLES = ("gpu",)
#: variables naming packages from the site's NVIDIA repository, wherever they are defined
NOT_PREINSTALLED_VARIABLES = re.compile(r"pyxis|nvidia|nvlsm|fabricmanager|dcgm|enroot|container_toolkit")
_QUOTED = re.compile(r"""['"]([a-z0-9][a-z0-9+.-]+)['"]""")
_VARIABLE = re.compile(r"\b([a-z_][a-z0-9_]*_packages[a-z0-9_]*)\b")


def role_packages(roles: Path) -> tuple[str, ...]:
    """The Debian packages the roles' apt tasks install, read from the roles themselves (one home: a role's task or
    its defaults): literal names, and the literal lists of the `*_packages*` variables the names use."""
    found: set[str] = set()
    for role in sorted(p for p in roles.iterdir() if (p / "tasks").is_dir()):
        if role.name in NOT_PREINSTALLED_ROLES:
            continue
        defaults_file = role / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        for tasks_file in sorted((role / "tasks").glob("*.yml")):
            for task in _tasks(yaml.safe_load(tasks_file.read_text()) or []):
                apt = task.get("ansible.builtin.apt") or task.get("apt")
                if not isinstance(apt, dict) or "name" not in apt:
                    continue
                found.update(_names(apt["name"], defaults or {}))
    return tuple(sorted(found))


def _tasks(items: list[object]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
            for key in ("block", "rescue", "always"):
                if isinstance(item.get(key), list):
                    out.extend(_tasks(item[key]))
    return out


def _names(value: object, defaults: dict[str, object]) -> set[str]:
    if isinstance(value, list):
        return set().union(*(_names(v, defaults) for v in value)) if value else set()
    if not isinstance(value, str):
        return set()
    if "{{" not in value:
        return {value}
    names = set(_QUOTED.findall(value))
    for variable in _VARIABLE.findall(value):
        listed = defaults.get(variable)
        if NOT_PREINSTALLED_VARIABLES.search(variable) or not isinstance(listed, list):
            continue
        names.update(v for v in listed if isinstance(v, str) and "{{" not in v)
    return names


#: run in the builder after the packages are installed (part of the recipe hash): the image holds the files, the
#: roles do the rest as on a fresh node -- every service the packages enabled is disabled again (the roles enable
#: what a host runs; a container need not boot MariaDB, PostgreSQL, dnsmasq and slurmctld it never uses), and the
#: key munge's package generates at install is generated by each container at its first boot instead (as a fresh
#: install would), never shared by every container made from the image
ROLES_CUSTOMISE = r"""
set -eu
for link in $(find /etc/systemd/system -type l -path '*.wants/*' -newer /var/lib/bitten-roles-image.start); do
  rm -f "$link"
done
if [ -e /etc/munge/munge.key ]; then
  rm -f /etc/munge/munge.key
  cat > /etc/systemd/system/bitten-munge-key.service <<UNIT
[Unit]
Description=Generate this container's munge key (as munge's package does at install)
Before=munge.service
ConditionPathExists=!/etc/munge/munge.key
[Service]
Type=oneshot
ExecStart=/usr/sbin/mungekey --create
ExecStart=/bin/chown munge:munge /etc/munge/munge.key
[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/bitten-munge-key.service /etc/systemd/system/multi-user.target.wants/
fi
apt-get clean
"""


@dataclass(frozen=True)
class RolesImage:
    """The image Molecule scenarios start from: the base image with every Debian package the roles install
    pre-installed (built once per recipe, cached by its hash), so a scenario's converge does not spend minutes in
    apt; the roles' apt tasks still run (and install whatever is missing)."""

    release: str
    packages: tuple[str, ...]
    customise: str = field(default=ROLES_CUSTOMISE, repr=False)

    @property
    def digest(self) -> str:
        text = "\n".join([Recipe(self.release).digest, *sorted(self.packages), self.customise])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def ref(self) -> str:
        return f"localhost/bitten-roles:{self.release}-{self.digest}"

    @property
    def stable_ref(self) -> str:
        """The tag the scenarios name: always the image of the current recipe."""
        return f"localhost/bitten-roles:{self.release}"


def ensure_roles_image(image: RolesImage, log: Callable[[str], None] = print) -> tuple[str, bool]:
    """Build the roles image unless one of this recipe exists (the base image must exist); returns (ref, built)."""
    built = False
    if not image_exists(image.ref):
        base = Recipe(image.release).stable_ref
        if not image_exists(base):
            raise RuntimeError(f"{base} is missing: build the base image first")
        log(f"{len(image.packages)} packages")
        _commit_after(base, image.ref, f"bitten-build-roles-{image.release}-{os.getpid()}", [
            "mkdir -p /var/lib && touch /var/lib/bitten-roles-image.start && sleep 1 && "
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " + " ".join(image.packages),
            image.customise + "\nrm -f /var/lib/bitten-roles-image.start\n"])
        built = True
    podman("tag", image.ref, image.stable_ref)
    return image.ref, built
