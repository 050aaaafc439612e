"""The lab's hardware stage, without the lab: the redfish lab service (emulator process, TLS from the lab CA,
generated credentials under .lab/) started on loopback, and playbooks/hardware.yml run against it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from bitten.capabilities import load_site
from bitten.lab.lab import SERVICES, Lab

from .conftest import LAB_HOSTS, REPO, lab_inventory


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """inventory/lab with its gateway moved to 127.0.0.1 and the redfish service running there."""
    from bitten.lab.layers import load as load_layers

    load_layers()
    root = tmp_path_factory.mktemp("labroot")
    inv = lab_inventory(root, f"127.0.0.1:{_free_port()}")
    lab_vars = inv / "group_vars" / "all" / "lab.yml"
    lab_vars.write_text(yaml.safe_dump({"bitten_lab": {"network": "bitten-lab-test", "subnet": "127.0.0.0/24",
                                                       "release": "trixie"}}))
    # the nodes move with their network (a lab's nodes sit inside its subnet)
    hosts = inv / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("bitten_ip: 10.77.0.", "bitten_ip: 127.0.0."))
    provision = inv / "group_vars" / "all" / "provision.yml"
    provision.write_text(provision.read_text().replace("10.77.0.", "127.0.0."))
    lab = Lab(inv, load_site(inv), Console(file=open(os.devnull, "w"), highlight=False))  # noqa: SIM115
    service = next(s for s in SERVICES if s.name == "redfish")
    lab.spawn(service)
    yield lab
    pid = lab.running("redfish")
    if pid:
        os.killpg(pid, signal.SIGTERM)
        os.waitpid(pid, 0)  # the emulator is this process's child: reap it


def playbook(lab: Lab, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BITTEN_BMC_")}
    environ.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"})
    environ.update(env or {})
    bindir = Path(sys.executable).parent
    return subprocess.run([str(bindir / "ansible-playbook"), "-i", str(lab.inventory),
                           str(REPO / "playbooks" / "hardware.yml"), *args],
                          capture_output=True, text=True, cwd=REPO, env=environ, timeout=600)


def recap(output: str) -> dict[str, tuple[int, int]]:
    """host -> (changed, failed) from the PLAY RECAP."""
    found = re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", output, re.M)
    return {host: (int(changed), int(failed)) for host, changed, failed in found}


def test_service_prepares_tls_credentials_and_one_system_per_node(lab: Lab) -> None:
    bmc = lab.state / "bmc"
    for name in ("password", "username", "credentials.yml", "tls.key", "htpasswd"):
        assert (bmc / name).stat().st_mode & 0o077 == 0, f"{name} must be private"
    assert (lab.state / "ca" / "ca.key").stat().st_mode & 0o077 == 0
    config = yaml.safe_load((bmc / "emulator.json").read_text())
    assert config["host"] == "127.0.0.1"
    assert {s["name"]: s["macs"] for s in config["systems"]} == {h: [m] for h, m in LAB_HOSTS.items()}
    password = (bmc / "password").read_text()
    assert len(password) >= 24
    assert password not in (REPO / "inventory" / "lab" / "group_vars" / "all" / "hardware.yml").read_text()


def test_check_mode_shows_the_plan_and_writes_nothing(lab: Lab) -> None:
    result = playbook(lab, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "bios ProcSMT: Enabled -> Disabled (applies at the next reboot)" in out
    assert "power state: Off -> On" in out
    assert "lab-gpu01: would change (4 change(s))" in out
    assert all(changed > 0 for changed, _ in recap(out).values())
    summary = Console(record=True, width=200)
    summary.print(next(s for s in SERVICES if s.name == "redfish").summary(lab))  # type: ignore[misc]
    assert "power state: Off -> On" in summary.export_text(), "check mode wrote nothing"


def test_apply_then_second_run_changes_nothing(lab: Lab) -> None:
    first = playbook(lab)
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first.stdout) == {host: (1, 0) for host in LAB_HOSTS}
    assert "lab-gpu01: changed (4 change(s)), power On" in first.stdout

    second = playbook(lab)
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second.stdout) == {host: (0, 0) for host in LAB_HOSTS}
    assert "lab-cpu01: in the desired state, power On" in second.stdout
    assert "in the desired state" in second.stdout

    summary = Console(record=True, width=200)
    summary.print(next(s for s in SERVICES if s.name == "redfish").summary(lab))  # type: ignore[misc]
    text = summary.export_text()
    assert "6 node(s): 0 to change, 6 unchanged, 0 failed" in text


def test_a_failing_bmc_fails_its_host_only(lab: Lab) -> None:
    host_vars = lab.inventory / "host_vars" / "lab-dbd.yml"
    original = host_vars.read_text()
    host_vars.write_text(original + "hardware_bmc_password: not-the-password\n")
    try:
        result = playbook(lab, "--limit", "lab-dbd,lab-ctl")
    finally:
        host_vars.write_text(original)
    assert result.returncode != 0
    assert recap(result.stdout) == {"lab-ctl": (0, 0), "lab-dbd": (0, 1)}
    assert "lab-dbd: FAILED" in result.stdout and "authentication failed as user 'bitten-lab'" in result.stdout
    assert "not-the-password" not in result.stdout + result.stderr
