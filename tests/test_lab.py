"""The lab's pieces: image recipe caching, device mapping, playbook recap parsing, and a down() that removes only
what the lab labelled."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bitten.capabilities import load_site
from bitten.cli import app
from bitten.core.recap import failures
from bitten.core.recap import parse as parse_recap
from bitten.lab import podman as pm
from bitten.lab.image import Recipe, RolesImage, role_packages
from bitten.lab.lab import Lab

from conftest import INVENTORIES, ROOT

os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf"))
needs_podman = pytest.mark.skipif(shutil.which("podman") is None or not pm.image_exists(Recipe("trixie").stable_ref),
                                  reason="podman and the base image are installed by make test")


def test_recipe_tag_follows_the_recipe() -> None:
    a, b = Recipe("trixie"), Recipe("trixie", packages=(*Recipe("trixie").packages, "vim"))
    assert a.ref.startswith("localhost/bitten-base:trixie-") and a.ref != b.ref
    assert a.ref == Recipe("trixie").ref
    assert a.stable_ref == "localhost/bitten-base:trixie"
    assert Recipe("bookworm").ref != a.ref


def test_the_roles_image_carries_what_the_roles_install_from_debian() -> None:
    packages = role_packages(ROOT / "roles")
    # from the roles' defaults (slurm, mariadb, munge, fabric, provisioner) and their tasks' literal lists
    for name in ("slurmctld", "slurmdbd", "slurmd", "mariadb-server", "munge", "opensm", "dnsmasq", "nginx",
                 "postgresql", "python3-venv", "chrony"):
        assert name in packages
    # never what comes from the site's NVIDIA repository (the scenarios install the stand-ins for real)
    assert not [p for p in packages if p.startswith(("nvidia", "nvslurm", "datacenter-gpu", "enroot", "cuda"))]
    image = RolesImage("trixie", packages)
    assert image.stable_ref == "localhost/bitten-roles:trixie"
    assert image.ref != RolesImage("trixie", (*packages, "vim")).ref, "a role's new package builds a new image"
    assert image.ref != RolesImage("bookworm", packages).ref


def test_gpu_nodes_get_device_stand_ins() -> None:
    lab = Lab(INVENTORIES / "lab", load_site(INVENTORIES / "lab"))
    assert lab._devices("lab-gpu01") == ["--device", "/dev/null:/dev/nvidia0", "--device", "/dev/null:/dev/nvidia1"]
    assert lab._devices("lab-cpu01") == []
    assert lab.state == ROOT / ".lab"


def test_recap_lines_are_parsed() -> None:
    text = ("PLAY RECAP ****\n"
            "lab-ctl                    : ok=19   changed=3    unreachable=0    failed=1    skipped=0\n"
            "\x1b[0;31mlab-vm01\x1b[0m                   : \x1b[0;32mok=2\x1b[0m    changed=0    "
            "\x1b[1;31munreachable=1\x1b[0m    failed=0    skipped=0\n")
    recap = parse_recap(text)
    assert (recap["lab-ctl"].changed, recap["lab-ctl"].bad) == (3, 1)
    assert (recap["lab-vm01"].ok, recap["lab-vm01"].bad) == (2, 1)


def test_the_task_that_stopped_a_host_is_found_in_either_result_format() -> None:
    text = ('fatal: [a]: FAILED! => {"changed": false, "msg": "first, ignored"}\n'
            "...ignoring\n"
            'fatal: [a]: FAILED! => {"changed": false, "msg": "No package matching \\"slurmd\\""}\n'
            "\x1b[0;31mfatal: [b]: UNREACHABLE! => changed=false\x1b[0m\n"
            "  msg: 'Failed to connect to the host via ssh: timeout'\n"
            "  unreachable: true\n"
            "fatal: [c]: FAILED! => changed=false\n"
            "  rc: 1\n"
            "ok: [d]\n")
    found = failures(text, limit=30)
    assert found["a"] == 'No package matching \\"slurmd\\"'
    assert found["b"] == "Failed to connect to the host…"
    assert found["c"] == "changed=false"
    assert "d" not in found


def test_a_non_lab_inventory_is_refused() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["lab", "down", str(INVENTORIES / "bitten")])
    assert result.exit_code == 2
    assert "is not a lab inventory: it sets no bitten_lab" in result.output


def test_unknown_release_is_refused() -> None:
    result = CliRunner().invoke(app, ["lab", "image", "--release", "sid"])
    assert result.exit_code == 2
    assert "expected one of trixie, bookworm" in result.output


@needs_podman
def test_down_removes_only_what_the_lab_labelled(tmp_path: Path) -> None:
    """A lab named after this test: its labelled container and network go, an unlabelled container stays."""
    name = f"t{uuid.uuid4().hex[:8]}"
    inventory = tmp_path / "inventory" / "lab"
    shutil.copytree(INVENTORIES / "lab", inventory)
    (inventory / "group_vars/all/site.yml").write_text(
        (inventory / "group_vars/all/site.yml").read_text().replace("name: lab", f"name: {name}"))
    lab = Lab(inventory, load_site(inventory))
    label = f"{pm.LAB_LABEL}={name}"
    image = Recipe("trixie").stable_ref
    pm.podman("network", "create", "--label", label, f"{name}-net")
    pm.podman("run", "-d", "--name", f"{name}-node", "--label", label, "--network", f"{name}-net", image,
              "sleep", "600")
    pm.podman("run", "-d", "--name", f"{name}-other", image, "sleep", "600")
    try:
        removed = lab.down()
        assert removed["containers"] == [f"{name}-node"]
        assert removed["networks"] == [f"{name}-net"]
        assert pm.inspect_container(f"{name}-node") is None
        assert pm.inspect_container(f"{name}-other") is not None
    finally:
        subprocess.run(["podman", "rm", "-f", "--ignore", "-t", "0", f"{name}-node", f"{name}-other"],
                       capture_output=True, check=False)
        subprocess.run(["podman", "network", "rm", f"{name}-net"], capture_output=True, check=False)


def test_the_labs_services_listen_on_distinct_ports(tmp_path: Path) -> None:
    """Two lab services on one port of the gateway: the second fails to bind while the port answers (the first),
    so the lab refuses that before starting anything. The lab inventory had the bare nodes' BMC (sushy-tools) and
    the Energi Data Service double both on 10.77.0.1:8446."""
    from bitten.lab.lab import LabError
    from bitten.lab.layers import load as load_layers

    load_layers()
    lab = Lab(INVENTORIES / "lab", load_site(INVENTORIES / "lab"))
    names = [s.name for s in lab.services()]
    assert {"redfish", "cooling-plant", "ucloud-core", "bare-bmc", "energinet-double"} <= set(names)
    inv = tmp_path / "lab"
    shutil.copytree(INVENTORIES / "lab", inv)
    energy = inv / "group_vars" / "all" / "energy.yml"
    energy.write_text(re.sub(r"http://10\.77\.0\.1:\d+", "http://10.77.0.1:8446", energy.read_text()))
    with pytest.raises(LabError, match=r"lab services (bare-bmc|energinet-double) and (bare-bmc|energinet-double) "
                       r"both listen on 10\.77\.0\.1:8446"):
        Lab(inv, load_site(inv)).services()
