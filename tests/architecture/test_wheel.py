"""The product wheel (what the cooling_agent role installs on the agent host) carries no stand-in and no sample
data: the lab, its emulators, simulators and TEST DOUBLES stay in the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_has_no_lab_no_double_and_no_sample_data(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("bitten-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bitten/cooling/agent.py" in names and "bitten/core/redfish/connection.py" in names
    assert not [n for n in names if n.startswith("bitten/lab/")]
    stand_ins = [n for n in names if any(w in n.lower() for w in ("double", "simulat", "mockup", "emulat", "fake"))]
    assert not stand_ins
    data = [n for n in names if n.endswith((".json", ".xml")) and not n.startswith("bitten-")]
    assert not data
