"""The lab: the whole site on one machine — node containers, emulators, and the real playbooks over SSH."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import hostlist
from rich.console import Console
from rich.table import Table

from bitten.core.recap import parse_line as parse_recap_line
from bitten.lab import layers
from bitten.lab import podman as pm
from bitten.lab.image import Recipe, ensure_image
from bitten.lab.service import SERVICES, SETUPS, SUMMARIES, TEARDOWNS, Checked, LabService
from bitten.site.model import LabSettings, Site


class LabError(RuntimeError):
    pass


__all__ = ["SERVICES", "SUMMARIES", "Lab", "LabError", "LabService", "Recap"]


@dataclass
class Recap:
    changed: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    returncode: int = 0

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())


class Lab:
    def __init__(self, inventory: Path, site: Site, console: Console | None = None) -> None:
        if site.lab is None:
            raise LabError(f"{inventory} is not a lab inventory: it sets no bitten_lab")
        self.inventory = inventory.resolve()
        self.site = site
        self.settings: LabSettings = site.lab
        self.console = console or Console(highlight=False)
        # .lab/ sits at the repository root, where the lab inventory's connection settings expect it
        self.root = self.inventory.parent.parent
        self.state = self.root / ".lab"
        self.ssh_dir = self.state / "ssh"
        self.run_dir = self.state / "run"
        self.log_dir = self.state / "log"
        self.recipe = Recipe(self.settings.release)

    # --- identity ---------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{pm.LAB_LABEL}={self.site.info.name}"

    @property
    def gateway(self) -> str:
        return self.settings.gateway

    def container_name(self, host: str) -> str:
        return host

    @property
    def vm_hosts(self) -> list[str]:
        """Hosts that are virtual machines booted over PXE (the provisioned nodes), not containers."""
        from bitten.provision.nodes import boot_node_names

        return boot_node_names(self.site)

    @property
    def container_hosts(self) -> list[str]:
        vms = set(self.vm_hosts)
        return [host for host in sorted(self.site.nodes) if host not in vms]

    # --- up -----------------------------------------------------------------------------------------------
    def up(self, playbook: Path | None = None, extra_args: Sequence[str] = ()) -> Recap:
        layers.load()
        with self.console.status("base image") as status:
            ref, built = ensure_image(self.recipe, log=lambda line: status.update(f"base image: {line}"))
        self.console.print(f"[green]✓[/] base image {ref} ({'built' if built else 'cached'})")
        self._ssh_key()
        self._network()
        self._containers()
        for setup in SETUPS:
            setup(self)
        self._services()
        recap = Recap()
        if playbook is not None:
            recap = self.run_playbook(playbook, extra_args)
        failed = self.summary(recap)
        if recap.returncode != 0:
            raise LabError(f"ansible-playbook {playbook} failed (exit {recap.returncode}); see the output above")
        # without playbooks nothing is converged yet: the summary shows the state, its checks cannot pass
        if failed and playbook is not None:
            raise LabError(f"{failed} summary check(s) failed; see the summary above")
        return recap

    def _ssh_key(self) -> None:
        self.ssh_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.ssh_dir, 0o700)
        key = self.ssh_dir / "id_ed25519"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"bitten-lab-{self.site.info.name}",
                            "-f", str(key)], check=True)
        os.chmod(key, 0o600)

    def _network(self) -> None:
        name = self.settings.network
        if pm.network_exists(name):
            return
        ipv6 = self._ipv6_subnet()
        extra = ["--ipv6", "--subnet", ipv6] if ipv6 else []
        pm.podman("network", "create", "--label", self.label, "--subnet", str(self.settings.subnet),
                  "--gateway", self.gateway, *extra, name)
        self.console.print(f"[green]✓[/] network {name} {self.settings.subnet}{' ' + ipv6 if ipv6 else ''}")

    def _ipv6_subnet(self) -> str | None:
        """The provisioning network's IPv6 prefix when it is this network (its provisioner sends RAs there)."""
        provision = self.site.provision
        if provision is None or provision.network.subnet != self.settings.subnet:
            return None
        prefix = provision.network.ipv6_ra_prefix
        return str(prefix) if prefix is not None else None

    def _capabilities(self, host: str) -> list[str]:
        """A provisioner answers DHCP: dnsmasq needs raw sockets and to set ARP entries for clients without IPs."""
        from bitten.provision.nodes import provisioners

        return ["--cap-add", "NET_ADMIN,NET_RAW"] if host in provisioners(self.site) else []

    def _devices(self, host: str) -> list[str]:
        """GPU nodes get /dev/null mapped to each GPU device path, so slurmd accepts their GRES."""
        profile = self.site.profile_of(host)
        if profile is None or profile.gpu is None:
            return []
        paths = hostlist.expand_hostlist(profile.gpu.devices)
        return [arg for path in paths for arg in ("--device", f"/dev/null:{path}")]

    def _containers(self) -> None:
        pubkey = (self.ssh_dir / "id_ed25519.pub").read_text()
        hosts = self.container_hosts
        with self.console.status("node containers") as status:
            for host in hosts:
                name = self.container_name(host)
                info = pm.inspect_container(name)
                if info is None:
                    status.update(f"creating {name}")
                    node = self.site.nodes[host]
                    pm.podman("run", "-d", "--name", name, "--hostname", host, "--label", self.label,
                              "--network", self.settings.network, "--ip", str(node.ip), "--no-hosts",
                              "--systemd=always", *self._devices(host), *self._capabilities(host),
                              self.recipe.stable_ref, "/sbin/init")
                elif not info["State"]["Running"]:
                    status.update(f"starting {name}")
                    pm.podman("start", name)
            known: list[str] = []
            for host in hosts:
                status.update(f"waiting for {host}")
                known.append(self._prepare_access(host, pubkey))
        self._known_hosts(known, hosts)
        self.console.print(f"[green]✓[/] {len(hosts)} node containers running: {', '.join(hosts)}")

    def _known_hosts(self, lines: list[str], hosts: list[str]) -> None:
        """Write the containers' host keys; lines of other hosts (the VMs' keys, which the provisioner role
        records) stay."""
        path = self.ssh_dir / "known_hosts"
        ours = {str(self.site.nodes[h].ip) for h in hosts} | set(hosts)
        kept = []
        if path.exists():
            for line in path.read_text().splitlines(keepends=True):
                names = set(line.split(" ", 1)[0].split(",")) if line.strip() else set()
                if names and not names & ours:
                    kept.append(line if line.endswith("\n") else line + "\n")
        path.write_text("".join(lines) + "".join(kept))

    def _prepare_access(self, host: str, pubkey: str) -> str:
        """Authorise the lab key for root and return the host's known_hosts line (read through podman)."""
        name = self.container_name(host)
        deadline = time.monotonic() + 120
        hostkey = ""
        while time.monotonic() < deadline:
            proc = pm.exec_in(name, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"], check=False)
            if proc.returncode == 0 and proc.stdout.strip():
                hostkey = proc.stdout.strip()
                break
            time.sleep(0.5)
        if not hostkey:
            raise LabError(f"{host}: no SSH host key after 120 s (is systemd running in the container?)")
        pm.exec_in(name, ["sh", "-c", "install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && "
                          "chmod 600 /root/.ssh/authorized_keys"], input=pubkey)
        ip = str(self.site.nodes[host].ip)
        _wait_port(ip, 22, 60, f"{host}: sshd")
        keytype, keydata = hostkey.split()[:2]
        return f"{ip},{host} {keytype} {keydata}\n"

    # --- services -----------------------------------------------------------------------------------------
    def services(self) -> list[LabService]:
        """The services this lab runs, checked to listen on distinct ports of the gateway: a second process on a
        port fails to bind, and the port answering (the first one) would hide that it never started."""
        enabled = [s for s in SERVICES if s.enabled is None or s.enabled(self)]
        seen: dict[int, str] = {}
        for service in enabled:
            if service.port is None:
                continue
            port = service.port(self)
            if port in seen:
                raise LabError(f"lab services {seen[port]} and {service.name} both listen on {self.gateway}:{port}; "
                               "give one of them another port in the lab inventory")
            seen[port] = service.name
        return enabled

    def _services(self) -> None:
        for service in self.services():
            if service.prepare is not None:
                service.prepare(self)
            self.spawn(service)

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def running(self, name: str) -> int | None:
        try:
            pid = int(self.pidfile(name).read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def spawn(self, service: LabService) -> None:
        if self.running(service.name):
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{service.name}.log").open("ab")
        proc = subprocess.Popen(service.argv(self), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root)
        self.pidfile(service.name).write_text(str(proc.pid))
        if service.port is not None:
            _wait_port(self.gateway, service.port(self), 30, f"lab service {service.name}")
        self.console.print(f"[green]✓[/] {service.name} started (log {self.log_dir / service.name}.log)")

    # --- playbooks ----------------------------------------------------------------------------------------
    def run_playbook(self, playbook: Path, extra_args: Sequence[str] = ()) -> Recap:
        env = dict(os.environ)
        env.setdefault("ANSIBLE_CONFIG", str(self.root / "ansible.cfg"))
        env["ANSIBLE_FORCE_COLOR"] = "1" if self.console.is_terminal else "0"
        bindir = Path(sys.executable).parent
        cmd = [str(bindir / "ansible-playbook"), "-i", str(self.inventory), str(playbook), *extra_args]
        self.console.print(f"[bold]$ {' '.join(cmd)}[/]")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=self.root)
        assert proc.stdout is not None
        recap = Recap()
        for line in proc.stdout:
            sys.stdout.write(line)
            host = parse_recap_line(line)
            if host is not None:
                recap.changed[host.host] = host.changed
                recap.failed[host.host] = host.bad
        sys.stdout.flush()
        recap.returncode = proc.wait()
        return recap

    # --- summary ------------------------------------------------------------------------------------------
    def summary(self, recap: Recap) -> int:
        """Print the summary; the number of its checks that failed."""
        table = Table(title=f"{self.site.info.name}: {len(self.site.nodes)} nodes on {self.settings.network}")
        for column in ("host", "address", "groups", "container", "changed"):
            table.add_column(column)
        vms = set(self.vm_hosts)
        for host, node in sorted(self.site.nodes.items()):
            if host in vms:
                from bitten.lab.vms import state as vm_state

                state = f"virtual machine: {vm_state(host)}"
            else:
                info = pm.inspect_container(self.container_name(host))
                state = info["State"]["Status"] if info else "missing"
            table.add_row(host, str(node.ip), ",".join(g for g in node.groups), state,
                          str(recap.changed.get(host, "-")))
        self.console.print(table)
        failed = 0
        for service in SERVICES:
            if service.summary is not None and (service.enabled is None or service.enabled(self)):
                failed += self._print(service.summary(self))
        for section in SUMMARIES:
            failed += self._print(section(self))
        if recap.changed:
            self.console.print(f"playbook: {recap.total_changed} change(s) across {len(recap.changed)} hosts")
        return failed

    def _print(self, item: object) -> int:
        if item is not None:
            self.console.print(item)
        return item.failed if isinstance(item, Checked) else 0

    # --- down ---------------------------------------------------------------------------------------------
    def down(self) -> dict[str, list[str]]:
        """Remove what this lab created (by label) and stop its services; nothing else is touched."""
        layers.load()
        removed: dict[str, list[str]] = {"services": [], "containers": [], "networks": [], "volumes": []}
        if self.run_dir.exists():
            for pidfile in sorted(self.run_dir.glob("*.pid")):
                pid = self.running(pidfile.stem)
                if pid:
                    _terminate(pid)
                    removed["services"].append(pidfile.stem)
                pidfile.unlink()
        value = self.site.info.name
        # the layers' own first (virtual machines with their disks): their NICs are ports of the network's bridge,
        # and netavark deletes the bridge with the last container only when nothing else is plugged into it
        for teardown in TEARDOWNS:
            for kind, names in teardown(self).items():
                removed.setdefault(kind, []).extend(names)
        containers = pm.labelled("container", pm.LAB_LABEL, value)
        if containers:
            pm.podman("rm", "-f", "-t", "5", *containers)
        removed["containers"] = containers
        for kind, key in (("network", "networks"), ("volume", "volumes")):
            names = pm.labelled(kind, pm.LAB_LABEL, value)
            for name in names:
                bridge = pm.network_interface(name) if kind == "network" else None
                pm.podman(kind, "rm", name)
                if bridge and Path(f"/sys/class/net/{bridge}").exists():
                    # a bridge the network made and netavark left (a VM's port was on it): it goes with the network
                    subprocess.run(["ip", "link", "delete", bridge], check=False, capture_output=True)
            removed[key] = names
        for leftover in (self.ssh_dir / "known_hosts",):
            leftover.unlink(missing_ok=True)
        return removed


def _wait_port(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise LabError(f"{what} did not answer on {host}:{port} within {timeout:.0f} s")


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
