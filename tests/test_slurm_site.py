"""The site model's Slurm accounting parts: dbd checks, GPU TRES, and the generated slurmdbd.conf."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bitten.capabilities import build_site, load_site, render_file, render_tree
from bitten.core.files import rendered
from bitten.site import InventoryData, SiteError, load_inventory

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "inventory" / "lab"


def _lab_data() -> InventoryData:
    return load_inventory([LAB])


def _with(data: InventoryData, groups: dict[str, list[str]] | None = None, **site_vars: Any) -> InventoryData:
    out = copy.deepcopy(data)
    for name, hosts in (groups or {}).items():
        out.groups[name] = hosts
    for hv in out.hostvars.values():
        hv.update(copy.deepcopy(site_vars))
    return out


def test_slurmdbd_conf_renders_the_password_as_a_placeholder_for_review(tmp_path: Path) -> None:
    site = load_site([LAB])
    text = render_file(site, "/etc/slurm/slurmdbd.conf", "lab-dbd")
    assert "StoragePass=<secret:slurmdbd_storage_pass>" in text
    assert "DbdHost=lab-dbd" in text and "StorageLoc=slurm_acct_db" in text
    render_tree(site, tmp_path)
    assert rendered(tmp_path, "lab-dbd", "/etc/slurm/slurmdbd.conf").read_text() == text
    with pytest.raises(KeyError):
        rendered(tmp_path, "lab-ctl", "/etc/slurm/slurmdbd.conf")


def test_slurmdbd_conf_with_the_secret_and_site_settings() -> None:
    data = _lab_data()
    slurm = dict(data.hostvars["lab-ctl"]["bitten_slurm"])
    slurm["database"] = {"host": "db.example", "port": 3307, "name": "acct", "user": "slurmdbd"}
    slurm["dbd_extra"] = {"PurgeJobAfter": "12months"}
    site = build_site(_with(data, bitten_slurm=slurm))
    text = render_file(site, "/etc/slurm/slurmdbd.conf", "lab-dbd", {"slurmdbd_storage_pass": "s3cret"})
    for line in ("StorageHost=db.example", "StoragePort=3307", "StorageLoc=acct", "StorageUser=slurmdbd",
                 "StoragePass=s3cret", "PurgeJobAfter=12months"):
        assert line + "\n" in text


def test_slurm_conf_accounts_gpus_by_type_and_rejects_disallowed_qos_at_submission() -> None:
    text = render_file(load_site([LAB]), "/etc/slurm/slurm.conf", "lab-ctl")
    assert "AccountingStorageTRES=gres/gpu,gres/gpu:b200\n" in text
    assert "EnforcePartLimits=ALL\n" in text
    assert "AccountingStorageHost=lab-dbd\n" in text and "AccountingStorageBackupHost" not in text


def test_a_second_dbd_host_becomes_the_backup_with_a_shared_database() -> None:
    data = _lab_data()
    slurm = dict(data.hostvars["lab-ctl"]["bitten_slurm"], database={"host": "db.example"})
    site = build_site(_with(data, {"slurm_dbd": ["lab-dbd", "lab-login"]}, bitten_slurm=slurm))
    assert "AccountingStorageBackupHost=lab-login\n" in render_file(site, "/etc/slurm/slurm.conf", "lab-ctl")
    assert "DbdBackupHost=lab-login\n" in render_file(site, "/etc/slurm/slurmdbd.conf", "lab-dbd")


@pytest.mark.parametrize(("dbd", "message"), [
    (["lab-dbd", "lab-login"], "two slurmdbd hosts with a database on localhost"),
    (["lab-dbd", "lab-login", "lab-ctl"], "3 slurmdbd hosts"),
])
def test_dbd_host_problems_name_the_fix(dbd: list[str], message: str) -> None:
    with pytest.raises(SiteError) as info:
        build_site(_with(_lab_data(), {"slurm_dbd": dbd}))
    text = str(info.value)
    assert message in text
    assert "slurm_dbd" in text or "database.host" in text


def test_unknown_database_key_is_an_error() -> None:
    data = _lab_data()
    slurm = dict(data.hostvars["lab-ctl"]["bitten_slurm"], database={"hots": "x"})
    with pytest.raises(SiteError, match=r"bitten_slurm\.database\.hots"):
        build_site(_with(data, bitten_slurm=slurm))
