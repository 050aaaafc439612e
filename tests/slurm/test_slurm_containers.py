"""Container jobs: plugstack.conf with pyxis, per-user enroot directories, the container prolog and epilog."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bitten.capabilities import build_site, facts, render_file
from bitten.site import InventoryData, SiteError, load_inventory

from conftest import BROKEN


def _data(**containers: Any) -> InventoryData:
    out = copy.deepcopy(load_inventory([BROKEN / "_base"]))
    for hv in out.hostvars.values():
        hv["bitten_slurm"] = {**hv["bitten_slurm"], "containers": containers,
                              "prolog": "/usr/local/sbin/bitten-gpu-prolog"}
    return out


def test_container_jobs_render_plugstack_enroot_and_the_prolog_epilog() -> None:
    site = build_site(_data(enabled=True))
    plugstack = render_file(site, "/etc/slurm/plugstack.conf", "login1")
    assert ("required /usr/lib/x86_64-linux-gnu/slurm/spank_pyxis.so runtime_path=/run/pyxis container_scope=job "
            "sbatch_support=1 execute_entrypoint=0\n") in plugstack
    slurm = render_file(site, "/etc/slurm/slurm.conf", "gpu01")
    assert "Prolog=/usr/local/sbin/bitten-gpu-prolog,/usr/local/sbin/bitten-container-prolog\n" in slurm
    assert "Epilog=/usr/local/sbin/bitten-container-epilog\n" in slurm
    enroot = render_file(site, "/etc/enroot/enroot.conf", "cpu01")
    for line in ("ENROOT_RUNTIME_PATH /run/enroot/user-$(id -u)", "ENROOT_DATA_PATH /var/lib/enroot/data/user-$(id -u)",
                 "ENROOT_CACHE_PATH /var/lib/enroot/cache/user-$(id -u)"):
        assert line + "\n" in enroot
    paths = json.loads(render_file(site, "/etc/bitten/containers.json", "gpu02"))
    assert paths["data_path"] == "/var/lib/enroot/data"
    assert "/etc/slurm/plugstack.conf" in facts(site, "ctl")["slurm"]["config_files"]
    assert facts(site, "gpu01")["gpu"]["containers"]["enabled"] is True
    assert facts(site, "login1")["gpu"]["containers"]["enabled"] is False


def test_without_containers_nothing_changes() -> None:
    site = build_site(_data())
    slurm = render_file(site, "/etc/slurm/slurm.conf", "gpu01")
    assert "Prolog=/usr/local/sbin/bitten-gpu-prolog\n" in slurm and "Epilog" not in slurm
    with pytest.raises(KeyError):
        render_file(site, "/etc/slurm/plugstack.conf", "login1")
    assert facts(site, "ctl")["slurm"]["config_files"] == [
        "/etc/slurm/slurm.conf", "/etc/slurm/gres.conf", "/etc/slurm/cgroup.conf"]


def test_container_paths_are_absolute() -> None:
    with pytest.raises(SiteError, match="data_path"):
        build_site(_data(enabled=True, data_path="enroot/data"))
