"""What the site model checks about BMCs and the one-time boot, with the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bitten.capabilities import load_site
from bitten.site import SiteError

from .conftest import REPO


def _copy(tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", root)
    return root


def test_plain_http_to_a_bmc_is_refused(tmp_path: Path) -> None:
    inv = _copy(tmp_path)
    (inv / "host_vars").mkdir()
    (inv / "host_vars" / "lab-gpu01.yml").write_text(yaml.safe_dump(
        {"bitten_bmc": {"address": "10.77.0.1:8000", "scheme": "http", "system_id": "lab-gpu01"}}))
    (inv / "host_vars" / "lab-gpu02.yml").write_text(yaml.safe_dump(
        {"bitten_bmc": {"address": "127.0.0.1:8000", "scheme": "http", "system_id": "lab-gpu02"}}))
    with pytest.raises(SiteError) as failure:
        load_site(inv)
    problems = [p for p in failure.value.problems if p.field == "bitten_bmc.scheme"]
    assert [p.host for p in problems] == ["lab-gpu01"], "loopback (an emulator on this machine) is allowed"
    assert "clear text" in str(problems[0]) and "lab-gpu01.yml" in problems[0].file


@pytest.mark.parametrize(("boot", "message"), [
    ({"target": "Cd"}, "boot target Cd needs image_url"),
    ({"target": "Pxe", "image_url": "http://10.0.0.1/os.iso"}, "image_url is used only with target Cd"),
    ({"target": "Cd", "image_url": "ftp://10.0.0.1/os.iso"}, "is not an http(s) URL"),
])
def test_one_time_boot_needs_a_consistent_image(tmp_path: Path, boot: dict[str, str], message: str) -> None:
    inv = _copy(tmp_path)
    site_file = inv / "group_vars" / "all" / "site.yml"
    site = yaml.safe_load(site_file.read_text())
    site["bitten_hardware_profiles"]["lab_gpu"]["boot"] = boot
    site_file.write_text(yaml.safe_dump(site))
    with pytest.raises(SiteError) as failure:
        load_site(inv)
    text = str(failure.value)
    assert message in text and "bitten_hardware_profiles.lab_gpu.boot" in text
