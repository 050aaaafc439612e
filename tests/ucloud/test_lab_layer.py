"""The lab's UCloud layer, piece by piece (the lab itself is run by `make lab`): the Core double it starts, the
files it prepares, the provider module the playbook runs, and the summary it prints."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from rich.table import Table

from bitten.capabilities import load_site
from bitten.lab.lab import SERVICES, SUMMARIES, Lab
from bitten.lab.layers import LAYERS
from bitten.lab.layers import load as load_layers
from bitten.lab.layers import ucloud as ucloud_lab
from bitten.ucloud import imconfig
from bitten.ucloud.core import CoreClient

from .conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def loopback_lab(tmp_path: Path) -> Lab:
    """The lab inventory with its network on loopback, so the gateway services run on 127.0.0.1."""
    inventory = tmp_path / "inventory" / "lab"
    inventory.parent.mkdir()
    subprocess.run(["cp", "-r", str(ROOT / "inventory" / "lab"), str(inventory.parent)], check=True)
    lab_vars = inventory / "group_vars" / "all" / "lab.yml"
    lab_vars.write_text(lab_vars.read_text().replace("10.77.0.0/24", "127.0.0.0/24"))
    # the nodes move with their network (a lab's nodes sit inside its subnet)
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("bitten_ip: 10.77.0.", "bitten_ip: 127.0.0."))
    provision = inventory / "group_vars" / "all" / "provision.yml"
    provision.write_text(provision.read_text().replace("10.77.0.", "127.0.0."))
    ucloud_vars = inventory / "group_vars" / "all" / "ucloud.yml"
    port = free_port()
    ucloud_vars.write_text(ucloud_vars.read_text().replace("https://10.77.0.1:8445", f"https://127.0.0.1:{port}"))
    return Lab(inventory, load_site(inventory), Console(quiet=True))


@pytest.fixture
def core_process(loopback_lab: Lab) -> Iterator[subprocess.Popen[bytes]]:
    argv = ucloud_lab.core_argv(loopback_lab)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", ucloud_lab.core_port(loopback_lab)), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield proc
    proc.terminate()
    proc.wait(10)


def test_layer_is_registered() -> None:
    assert "bitten.lab.layers.ucloud" in LAYERS
    load_layers()
    assert any(s.name == "ucloud-core" for s in SERVICES)
    assert ucloud_lab.slurm_summary in SUMMARIES


def test_prepare_makes_secrets_0600_and_keeps_them(loopback_lab: Lab) -> None:
    directory = ucloud_lab.prepare(loopback_lab)
    for name in ("admin-token", "db-password", "server.key", "ca.key"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    token = (directory / "admin-token").read_text()
    ucloud_lab.prepare(loopback_lab)
    assert (directory / "admin-token").read_text() == token
    assert (directory / "pkg" / "ucloud-im.deb").exists()


def test_core_double_service_module_and_summary(loopback_lab: Lab, core_process: subprocess.Popen[bytes]) -> None:
    directory = ucloud_lab.state_dir(loopback_lab)
    assert ucloud_lab.core_summary(loopback_lab).startswith("UCloud: no provider credentials yet")  # type: ignore[union-attr]
    uc = loopback_lab.site.ucloud
    assert uc is not None
    args = {"core_url": uc.core_url, "ca_file": str(directory / "ca.pem"),
            "admin_token": (directory / "admin-token").read_text().strip(), "project": "lab", "name": uc.provider_id,
            "domain": uc.public_host, "credentials_dir": str(directory / "provider")}
    env = {**os.environ, "ANSIBLE_LIBRARY": str(ROOT / "plugins" / "modules"),
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}

    def module(*extra: str) -> dict[str, object]:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "bitten_ucloud_provider",
             "-a", json.dumps(args), "-e", f"ansible_python_interpreter={sys.executable}",
             "-e", "ansible_connection=local", "-e", "ansible_host=localhost",
             "-e", "ansible_ssh_private_key_file=''", "-o", *extra],
            capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout.split("=>", 1)[1])  # type: ignore[no-any-return]

    planned = module("--check")
    assert planned["changed"] and planned["action"] == "created" and not (directory / "provider").exists()
    created = module()
    assert created["changed"] and created["action"] == "created"
    adopted = module()
    assert not adopted["changed"] and adopted["action"] == "adopted"
    token = (directory / "provider" / "refresh-token").read_text().strip()
    assert stat.S_IMODE((directory / "provider" / "refresh-token").stat().st_mode) == 0o600
    assert token == created["refresh_token"]

    client = CoreClient(uc.core_url, ca_file=str(directory / "ca.pem"))
    products = imconfig.expected_products(loopback_lab.site)
    client.register_products(products[1:], client.refresh(token))
    summary = ucloud_lab.core_summary(loopback_lab)
    assert isinstance(summary, Table)
    states = list(summary.columns[-1].cells)
    assert states == ["missing"] + ["registered"] * (len(products) - 1)


def test_lab_inventory_points_the_role_at_the_layers_files() -> None:
    frontend = yaml.safe_load((ROOT / "inventory" / "lab" / "group_vars" / "ucloud_frontend.yml").read_text())
    assert frontend["ucloud_im_source"].endswith(f".lab/ucloud/pkg/{ucloud_lab.PACKAGE}")
    assert ucloud_lab.DB_PASSWORD in frontend["ucloud_im_db_password"]
    site = load_site(ROOT / "inventory" / "lab")
    assert site.ucloud is not None and site.ucloud.core_url == "https://10.77.0.1:8445"


def test_ucloud_playbook_creates_the_provider_from_the_lab_inventory(
        loopback_lab: Lab, core_process: subprocess.Popen[bytes]) -> None:
    """The playbook's first play, on the lab inventory as `make lab` runs it (the frontend plays need the lab)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
           "ANSIBLE_LIBRARY": str(ROOT / "plugins" / "modules"),
           "ANSIBLE_LOOKUP_PLUGINS": str(ROOT / "plugins" / "lookup")}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(loopback_lab.inventory),
                           str(ROOT / "playbooks" / "ucloud-provider.yml")],
                          capture_output=True, text=True, env=env, cwd=loopback_lab.root, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    token = ucloud_lab.state_dir(loopback_lab) / "provider" / "refresh-token"
    assert token.exists()
    assert token.read_text().strip() not in proc.stdout  # no_log
    uc = loopback_lab.site.ucloud
    assert uc is not None
    client = CoreClient(uc.core_url, ca_file=str(ucloud_lab.state_dir(loopback_lab) / "ca.pem"))
    assert client.refresh(token.read_text().strip())
