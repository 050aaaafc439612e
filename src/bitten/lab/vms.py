"""The lab's bare nodes: QEMU virtual machines under libvirt, on the lab network, powered through Redfish.

Measured on these machines (see ../shared/reference/bare-metal.md) and kept here:

- ``/dev/kvm`` is a paravirtual nested KVM (``kvm_pvm``) that cannot run a stock kernel: the domains are
  ``type='qemu'`` (TCG), one vCPU each. KVM only when the CPU shows vmx/svm and the module is not kvm_pvm.
- The host has no systemd as PID 1, so the lab starts ``virtlogd`` and ``libvirtd`` itself (and stops them at
  ``lab down`` when it started them).
- With ``/dev/kvm`` root-only (no udev here to give it to group kvm), libvirt probes QEMU with KVM and then finds
  KVM unusable for its qemu user ("KVM was enabled when probing ..., but it is not available now"), throws its
  capabilities away and probes again on every call: ~90 s per ``virsh define``. (Hiding /dev/kvm behind a bind
  mount fails too: libvirt moves /dev's submounts into each domain's namespace and cannot move that one.) The lab
  gives /dev/kvm to group kvm, 0660, as Debian's udev rule does, and puts the old owner and mode back at
  ``lab down``. The domains still run under TCG.
- libvirt starts QEMU in the host's network namespace: each VM's NIC is a tap on the lab network's bridge (the
  podman network's own bridge), so the VMs are on the same L2 as the containers and the provisioner container's
  dnsmasq answers their DHCP.
- The NIC's iPXE ROM (ipxe-qemu) does the PXE boot; UEFI through OVMF (firmware autoselection) when the profile
  boots UEFI. A virtio RNG: without one a guest waits ~40 s for entropy under TCG. No USB, video or balloon.
- The domains start powered off; sushy-tools' libvirt driver is their BMC, so the hardware stage powers them on
  through Redfish like any node.

Every domain carries the lab's metadata (site name), and ``remove`` takes exactly those, with their disks and
NVRAM (their console logs stay under .lab/vms/, as the lab's other logs do).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

URI = "qemu:///system"
#: libvirt metadata namespace of the lab's domains
METADATA_NS = "https://bitten.invalid/lab"
#: a uuid namespace: a domain's UUID follows from the site and host name
VM_NS = uuidlib.UUID("0b1773b1-7e00-4a57-9a4e-6a1c5d2e6f0b")
#: disk size of a node whose profile deploys to disk
DISK_GIB = 4
#: where the lab's VM disks live: libvirt's image directory, which its qemu user can reach (a .lab/ under a
#: private directory such as pytest's is not), one directory per lab
IMAGES = Path("/var/lib/libvirt/images")


def disk_dir(site: str) -> Path:
    return IMAGES / f"bitten-{site}"


class VmError(RuntimeError):
    pass


def virsh(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, check=False,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise VmError(f"virsh {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class VmSpec:
    site: str
    name: str
    mac: str
    bridge: str
    memory_mb: int
    uefi: bool
    #: the disk a disk deploy writes, or None (stateless: no disk at all)
    disk: Path | None
    console: Path

    @property
    def uuid(self) -> str:
        return str(uuidlib.uuid5(VM_NS, f"{self.site}/{self.name}"))


def accel() -> str:
    """libvirt domain type: kvm only where KVM can run a stock kernel here, else qemu (TCG)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
        pvm = Path("/sys/module/kvm_pvm").exists()
    except OSError:
        return "qemu"
    if Path("/dev/kvm").exists() and re.search(r"\b(vmx|svm)\b", flags) and not pvm:
        return "kvm"
    return "qemu"


def domain_xml(spec: VmSpec, domain_type: str = "qemu") -> str:
    firmware = " firmware='efi'" if spec.uefi else ""
    features = ("<firmware><feature enabled='no' name='secure-boot'/><feature enabled='no' name='enrolled-keys'/>"
                "</firmware>") if spec.uefi else ""
    disk = ""
    if spec.disk is not None:
        disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='unsafe'/>"
                f"<source file='{escape(str(spec.disk))}'/><target dev='vda' bus='virtio'/></disk>")
    cpu = "<cpu mode='host-passthrough'/>" if domain_type == "kvm" else "<cpu mode='custom'><model>qemu64</model></cpu>"
    return f"""<domain type='{domain_type}'>
  <name>{escape(spec.name)}</name>
  <uuid>{spec.uuid}</uuid>
  <metadata><bitten:lab xmlns:bitten='{METADATA_NS}' site='{escape(spec.site)}'/></metadata>
  <memory unit='MiB'>{spec.memory_mb}</memory>
  <vcpu>1</vcpu>
  <os{firmware}>
    <type arch='x86_64' machine='q35'>hvm</type>
    {features}
    <boot dev='network'/>
  </os>
  <features><acpi/><apic/></features>
  {cpu}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <controller type='usb' model='none'/>
    {disk}
    <interface type='bridge'>
      <source bridge='{escape(spec.bridge)}'/>
      <mac address='{spec.mac}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'><source path='{escape(str(spec.console))}'/><target port='0'/></serial>
    <console type='file'><source path='{escape(str(spec.console))}'/><target type='serial' port='0'/></console>
    <video><model type='none'/></video>
    <memballoon model='none'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>
"""


# --- daemons ----------------------------------------------------------------------------------------------------
def ensure_daemons(run_dir: Path) -> list[str]:
    """virtlogd and libvirtd running (started here when they are not); returns the ones this call started."""
    if shutil.which("libvirtd") is None or shutil.which("virsh") is None:
        raise VmError("libvirt is not installed: run scripts/host-deps (make does)")
    started: list[str] = []
    run_dir.mkdir(parents=True, exist_ok=True)
    for daemon in ("virtlogd", "libvirtd"):
        if _daemon_pid(daemon) is None:
            if daemon == "libvirtd":
                _kvm_for_libvirt(run_dir)
            subprocess.run([daemon, "-d"], check=True)
            (run_dir / f"{daemon}.started-by-lab").write_text(str(time.time()))
            started.append(daemon)
    # the first call after a start probes QEMU's capabilities (a minute on a loaded machine)
    deadline = time.monotonic() + 300
    while True:
        try:
            if virsh("version", check=False, timeout=60).returncode == 0:
                return started
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            raise VmError("libvirtd did not answer within 300 s (see /var/log/libvirt/libvirtd.log)")
        time.sleep(0.5)


KVM = Path("/dev/kvm")
KVM_SAVED = "kvm-owner-mode"


def _kvm_for_libvirt(run_dir: Path) -> None:
    """/dev/kvm to group kvm, 0660 (what udev does on a Debian host), remembering how it was."""
    import grp

    if not KVM.exists():
        return
    try:
        kvm_gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return
    info = KVM.stat()
    if info.st_gid == kvm_gid and info.st_mode & 0o060 == 0o060:
        return
    saved = run_dir / KVM_SAVED
    if not saved.exists():
        saved.write_text(f"{info.st_uid} {info.st_gid} {info.st_mode & 0o7777:o}\n")
    os.chown(KVM, info.st_uid, kvm_gid)
    KVM.chmod(0o660)


def _kvm_restore(run_dir: Path) -> None:
    saved = run_dir / KVM_SAVED
    if not saved.exists():
        return
    uid, gid, mode = saved.read_text().split()
    if KVM.exists():
        os.chown(KVM, int(uid), int(gid))
        KVM.chmod(int(mode, 8))
    saved.unlink()


def stop_daemons(run_dir: Path) -> list[str]:
    """Stop the daemons the lab started (only those), once no domain of anyone runs under them."""
    stopped: list[str] = []
    if virsh("list", "--name", check=False, timeout=10).stdout.strip():
        return stopped  # someone else's domains still run: leave libvirt alone
    for daemon in ("libvirtd", "virtlogd"):
        marker = run_dir / f"{daemon}.started-by-lab"
        if not marker.exists():
            continue
        pid = _daemon_pid(daemon)
        if pid is not None:
            os.kill(pid, 15)
            stopped.append(daemon)
        marker.unlink()
    _kvm_restore(run_dir)
    return stopped


def _daemon_pid(daemon: str) -> int | None:
    try:
        pid = int(Path(f"/run/{daemon}.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


# --- domains ----------------------------------------------------------------------------------------------------
def lab_domains(site: str) -> list[str]:
    """Names of the domains carrying this lab's metadata."""
    names = [n.strip() for n in virsh("list", "--all", "--name").stdout.splitlines() if n.strip()]
    out = []
    for name in names:
        meta = virsh("metadata", name, METADATA_NS, check=False).stdout
        if f"site=\"{site}\"" in meta or f"site='{site}'" in meta:
            out.append(name)
    return sorted(out)


def state(name: str) -> str:
    proc = virsh("domstate", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "missing"


def bridge_of(name: str) -> str | None:
    """The bridge the domain's first bridged NIC is on (``virsh domiflist``), None when it has none."""
    for line in virsh("domiflist", name, check=False).stdout.splitlines():
        cols = line.split()
        if len(cols) >= 3 and cols[1] == "bridge":
            return cols[2]
    return None


def define(spec: VmSpec) -> bool:
    """Define the domain (powered off) unless it exists; returns whether it was defined (or redefined) now.

    A domain of this lab's on another bridge than the lab network's (the network was made anew and its bridge has
    another name) is redefined on the new bridge, the rest of its definition kept (NVRAM, the boot order its BMC
    set), when it is shut off; a running one is refused."""
    if virsh("dominfo", spec.name, check=False).returncode == 0:
        if spec.name not in lab_domains(spec.site):
            raise VmError(f"a libvirt domain {spec.name} exists that the lab did not create: remove or rename it")
        current = bridge_of(spec.name)
        if current is None or current == spec.bridge:
            return False
        if state(spec.name) != "shut off":
            raise VmError(f"{spec.name} runs on bridge {current}, not the lab network's {spec.bridge} (the network "
                          "was made anew): run make lab-down, then make lab")
        root = ElementTree.fromstring(virsh("dumpxml", "--inactive", spec.name).stdout)  # noqa: S314 - libvirtd's own XML
        for source in root.findall("devices/interface[@type='bridge']/source"):
            if source.get("bridge") == current:
                source.set("bridge", spec.bridge)
        _define_xml(spec, ElementTree.tostring(root, encoding="unicode"))
        return True
    if spec.disk is not None and not spec.disk.exists():
        spec.disk.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(spec.disk), f"{DISK_GIB}G"], check=True)
    _define_xml(spec, domain_xml(spec, accel()))
    return True


def _define_xml(spec: VmSpec, text: str) -> None:
    """Keep the definition beside the console log (make lab-down removes it) and give it to libvirt."""
    spec.console.parent.mkdir(parents=True, exist_ok=True)
    xml = spec.console.parent / f"{spec.name}.xml"
    xml.write_text(text)
    virsh("define", str(xml))


def remove(site: str, vm_dir: Path) -> list[str]:
    """Destroy and undefine the lab's domains, with their NVRAM, disks and console logs."""
    removed = []
    for name in lab_domains(site):
        if state(name) not in ("shut off", "missing"):
            virsh("destroy", name, check=False)
        virsh("undefine", name, "--nvram", check=False)
        removed.append(name)
        # the console log stays (a log, like .lab/log/): it tells what the node did last
        for leftover in (disk_dir(site) / f"{name}.qcow2", vm_dir / f"{name}.xml"):
            leftover.unlink(missing_ok=True)
    if disk_dir(site).is_dir() and not any(disk_dir(site).iterdir()):
        disk_dir(site).rmdir()
    return removed
