"""``bitten hardware plan|apply|inventory`` against the emulator, with the lab inventory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from typer.testing import CliRunner

from bitten.cli import app
from bitten.lab.doubles.faults import Fault

from .conftest import BARE_HOSTS, LAB_HOSTS, PASSWORD, USER, Emulator, Pki, lab_inventory, lab_systems

ENV = {"BITTEN_BMC_USERNAME": USER, "BITTEN_BMC_PASSWORD": PASSWORD}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env if env is not None else ENV)
    return result.exit_code, result.output


def test_plan_apply_and_a_second_apply(start_emulator: Callable[..., Emulator], pki: Pki, tmp_path: Path) -> None:
    emu = start_emulator(lab_systems())
    inv = lab_inventory(tmp_path, emu.url.removeprefix("https://"))
    code, text = run("hardware", "plan", str(inv), "--ca", str(pki.ca), "--json")
    assert code == 0, text
    planned = json.loads(text)
    assert planned["ok"] and planned["failed"] == []
    assert {n["host"] for n in planned["nodes"]} == set(LAB_HOSTS)
    gpu = next(n for n in planned["nodes"] if n["host"] == "lab-gpu01")
    assert {(c["area"], c["item"]) for c in gpu["plan"]["changes"]} == {
        ("bios", "ProcSMT"), ("bios", "WorkloadProfile"), ("power", "state"), ("boot", "override")}

    code, text = run("hardware", "apply", str(inv), "--ca", str(pki.ca), "-j", "3")
    assert code == 0, text
    assert "6 node(s): 6 changed, 0 unchanged, 0 failed" in text

    code, text = run("hardware", "apply", str(inv), "--ca", str(pki.ca), "--json")
    assert code == 0, text
    assert json.loads(text)["changed"] == []

    code, text = run("hardware", "inventory", str(inv), "--ca", str(pki.ca), "--limit", "gpu_nodes", "--json")
    assert code == 0, text
    nodes = json.loads(text)["nodes"]
    assert [n["host"] for n in nodes] == ["lab-gpu01", "lab-gpu02"]
    assert nodes[0]["inventory"]["macs"] == [LAB_HOSTS["lab-gpu01"]]


def test_failures_exit_1_after_every_node(start_emulator: Callable[..., Emulator], pki: Pki, tmp_path: Path) -> None:
    emu = start_emulator(lab_systems())
    emu.faults.add(Fault("status", status=500, path=r"/Systems/lab-dbd$", times=None))
    inv = lab_inventory(tmp_path, emu.url.removeprefix("https://"))
    code, text = run("hardware", "apply", str(inv), "--ca", str(pki.ca), "--retries", "1", "--json")
    assert code == 1
    data = json.loads(text[:text.rindex("}") + 1])
    assert data["failed"] == ["lab-dbd"] and len(data["changed"]) == 5


def test_plan_with_blocking_problems_exits_1(start_emulator: Callable[..., Emulator], pki: Pki,
                                            tmp_path: Path) -> None:
    """A plan that apply would refuse (a BIOS attribute the node does not have) is not ok."""
    emu = start_emulator(lab_systems())
    inv = lab_inventory(tmp_path, emu.url.removeprefix("https://"))
    site_file = inv / "group_vars" / "all" / "site.yml"
    site = yaml.safe_load(site_file.read_text())
    site["bitten_hardware_profiles"]["lab_cpu"]["bios"]["NoSuchAttribute"] = "On"
    site_file.write_text(yaml.safe_dump(site))
    code, text = run("hardware", "plan", str(inv), "--ca", str(pki.ca), "--json")
    assert code == 1, text
    data = json.loads(text[:text.rindex("}") + 1])
    assert not data["ok"] and data["failed"] == ["lab-cpu01"]
    cpu = next(n for n in data["nodes"] if n["host"] == "lab-cpu01")
    assert cpu["plan"]["problems"] and not cpu["ok"]


def test_invalid_site_contacts_nothing(start_emulator: Callable[..., Emulator], pki: Pki, tmp_path: Path) -> None:
    emu = start_emulator(lab_systems())
    inv = lab_inventory(tmp_path, emu.url.removeprefix("https://"))
    site_file = inv / "group_vars" / "all" / "site.yml"
    site = yaml.safe_load(site_file.read_text())
    site["bitten_hardware_profiles"]["lab_cpu"]["boot"] = {"target": "Cd"}
    site_file.write_text(yaml.safe_dump(site))
    code, text = run("hardware", "apply", str(inv), "--ca", str(pki.ca))
    assert code == 2
    assert "bitten_hardware_profiles.lab_cpu.boot" in text and "needs image_url" in text
    assert "nothing was written or contacted" in text
    assert emu.faults.requests == 0


def test_missing_credentials_contact_nothing(start_emulator: Callable[..., Emulator], pki: Pki,
                                             tmp_path: Path) -> None:
    emu = start_emulator(lab_systems())
    inv = lab_inventory(tmp_path, emu.url.removeprefix("https://"))
    code, text = run("hardware", "plan", str(inv), "--ca", str(pki.ca), env={"BITTEN_BMC_USERNAME": ""})
    assert code == 2
    assert "no BMC credentials for host" in text and "nothing was contacted" in text
    assert emu.faults.requests == 0


def test_unknown_limit(start_emulator: Callable[..., Emulator], pki: Pki, tmp_path: Path) -> None:
    inv = lab_inventory(tmp_path, "127.0.0.1:1")
    code, text = run("hardware", "plan", str(inv), "--limit", "nosuchhost")
    assert code == 2 and "no host or group named nosuchhost" in text


def test_plan_shows_the_nodes_that_wait_for_a_reboot_and_rollout_their_waves(
        start_emulator: Callable[..., Emulator], pki: Pki, tmp_path: Path) -> None:
    from bitten.lab.doubles.bmc_emulator import SystemSpec

    emu = start_emulator([SystemSpec(h, macs=(mac,), power_state="On") for h, mac in LAB_HOSTS.items()])
    inv = lab_inventory(tmp_path, emu.url.removeprefix("https://"))
    wide = {**ENV, "COLUMNS": "300"}
    code, text = run("hardware", "plan", str(inv), "--ca", str(pki.ca), "--limit", "gpu_nodes", env=wide)
    assert code == 0, text
    assert "waits for a reboot (BIOS ProcSMT, WorkloadProfile to write): bitten hardware rollout" in text
    assert "2 waiting for a reboot (bitten hardware rollout)" in text

    code, text = run("hardware", "apply", str(inv), "--ca", str(pki.ca), "--limit", "gpu_nodes", "--json")
    assert code == 0, text
    assert [n["reboot"] for n in json.loads(text)["nodes"]] == [["BIOS ProcSMT, WorkloadProfile pending"]] * 2

    code, text = run("hardware", "rollout", str(inv), "--ca", str(pki.ca), "--limit", "gpu_nodes", "--dry-run",
                     "--wave-size", "1", "--reason", "GPU driver 580.95", env=wide)
    assert code == 0, text
    assert "wave 1: lab-gpu01 (BIOS ProcSMT, WorkloadProfile pending; GPU driver 580.95)" in text
    assert "wave 2: lab-gpu02" in text

    # --json: stdout is the JSON alone, the text goes to stderr
    result = CliRunner().invoke(app, ["hardware", "rollout", str(inv), "--ca", str(pki.ca), "--limit", "gpu_nodes",
                                      "--dry-run", "--wave-size", "1", "--json"], env=wide)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["waves"] == [["lab-gpu01"], ["lab-gpu02"]]
    assert "wave 1: lab-gpu01" in result.stderr


def test_a_node_on_an_older_image_waits_for_a_reboot_in_plan_and_rollout(
        start_emulator: Callable[..., Emulator], pki: Pki, tmp_path: Path) -> None:
    """The provisioner's record (its real report service) says lab-vm01 runs an older image than its profile."""
    import threading

    from bitten.capabilities import load_site
    from bitten.lab.doubles.bmc_emulator import SystemSpec
    from bitten.provision.nodes import boot_nodes
    from bitten.provision.service.reports import Store, serve

    emu = start_emulator([SystemSpec(h, macs=(mac,), power_state="On")
                          for h, mac in {**LAB_HOSTS, **BARE_HOSTS}.items()])
    inv = lab_inventory(tmp_path, emu.url.removeprefix("https://"), bare=True)
    node = boot_nodes(load_site(inv))["lab-vm01"]
    nodes_json = tmp_path / "nodes.json"
    nodes_json.write_text(json.dumps({"nodes": {node.name: {"mac": node.mac, "ip": str(node.ip),
                                                            "image_id": node.image_id, "deploy": node.deploy}}}))
    store = Store(tmp_path / "state", nodes_json, tmp_path / "dnsmasq.log")
    old = "lab-compute-000000000000"
    assert store.accept({"node": node.name, "state": "up", "image_id": old, "root": "rootfs"}, str(node.ip))[0] == 200
    server = serve(store, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    status = f"http://127.0.0.1:{server.server_address[1]}/status"
    wide = {**ENV, "COLUMNS": "300"}
    try:
        code, text = run("hardware", "plan", str(inv), "--ca", str(pki.ca), "--limit", "lab-vm01,lab-cpu01",
                         "--provisioner-status", status, env=wide)
        assert code == 0, text
        assert f"waits for a reboot (image {old} -> {node.image_id}): bitten hardware rollout" in text
        code, text = run("hardware", "plan", str(inv), "--ca", str(pki.ca), "--limit", "lab-vm01",
                         "--provisioner-status", status, "--json")
        assert code == 0, text
        # (the report service logs its requests to stderr, which the runner mixes in)
        assert json.loads(text[text.index("{\n"):])["nodes"][0]["reboot"] == [f"image {old} -> {node.image_id}"]

        code, text = run("hardware", "rollout", str(inv), "--ca", str(pki.ca), "--limit", "lab-vm01,lab-gpu01",
                         "--provisioner-status", status, "--dry-run", "--reason", "GPU driver 580.95", env=wide)
        assert code == 0, text
        # (the lab reboots one node per wave)
        assert "wave 1: lab-gpu01 (BIOS ProcSMT, WorkloadProfile to write; GPU driver 580.95)\nwave 2: lab-vm01 " \
               f"(image {old} -> {node.image_id}; GPU driver 580.95)" in text

        # a stateless node comes back from PXE with its identity only: without bitten_rollout.converge nothing is
        # rebooted (exit 2; the BMCs were only read)
        # (the same file rewritten: Ansible's vars plugin remembers, within a process, which files it found)
        hardware = inv / "group_vars" / "all" / "hardware.yml"
        kept = hardware.read_text()
        hardware.write_text("\n".join(line for line in kept.splitlines() if "converge:" not in line) + "\n")
        acts = [emu.faults.add(Fault("delay", method=m, path=p, times=None))
                for m, p in (("POST", r"/Actions/"), ("PATCH", r""))]
        code, text = run("hardware", "rollout", str(inv), "--ca", str(pki.ca), "--limit", "lab-vm01",
                         "--provisioner-status", status, env=wide)
        assert code == 2, text
        assert "lab-vm01 boot(s) stateless" in text and "bitten_rollout.converge is not set" in text, text
        assert "nothing was rebooted." in text
        assert [fault.fired for fault in acts] == [0, 0]  # no reset, no PATCH reached a BMC
        emu.faults.clear()
        hardware.write_text(kept)

        # a node that already runs its profile's image waits for nothing
        store.accept({"node": node.name, "state": "up", "image_id": node.image_id, "root": "rootfs"}, str(node.ip))
        code, text = run("hardware", "rollout", str(inv), "--ca", str(pki.ca), "--limit", "lab-vm01",
                         "--provisioner-status", status, "--dry-run")
        assert code == 0 and "no node waits for a reboot" in text, text
    finally:
        server.shutdown()
        server.server_close()

    # a record that cannot be read: the images are unknown, which is an error (the BMCs are still planned)
    code, text = run("hardware", "plan", str(inv), "--ca", str(pki.ca), "--limit", "lab-vm01",
                     "--provisioner-status", "http://127.0.0.1:1/status", env=wide)
    assert code == 1 and "the provisioner's status could not be read" in text and "lab-vm01 are unknown" in text
