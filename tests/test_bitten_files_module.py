"""The bitten_files module through real ansible-playbook on this machine: check mode writes nothing and says what
would change, a run writes each file atomically with its owner, group and mode, a second run changes nothing, a
mode-only change counts as a change but not as a content change, --diff shows the content, bad input fails whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from conftest import ROOT

BIN = Path(sys.executable).parent


def _run(tmp: Path, files: dict[str, str], *flags: str) -> tuple[int, dict[str, Any], str]:
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "tasks": [{"name": "files", "bitten_files": {"files": files}, "register": "out"},
                       {"name": "show", "ansible.builtin.copy": {"content": "{{ out | to_json }}",
                                                                 "dest": str(tmp / "result.json")},
                        "check_mode": False, "diff": False}]}]
    (tmp / "play.yml").write_text(yaml.safe_dump(play))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(tmp / "play.yml"),
                           "-e", f"ansible_python_interpreter={sys.executable}", *flags],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    result = json.loads((tmp / "result.json").read_text()) if (tmp / "result.json").exists() else {}
    (tmp / "result.json").unlink(missing_ok=True)
    return proc.returncode, result, proc.stdout + proc.stderr


def test_check_mode_write_and_no_op(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a.conf"), str(tmp_path / "b.conf")
    files = {a: "one\n", b: "two\n"}
    rc, out, log = _run(tmp_path, files, "--check")
    assert rc == 0, log
    assert out["changed"] and out["content_changed"] == [a, b] and out["changed_files"] == [a, b]
    assert not Path(a).exists() and not Path(b).exists()

    rc, out, log = _run(tmp_path, files)
    assert rc == 0, log
    assert out["changed_files"] == [a, b]
    assert Path(a).read_text() == "one\n" and Path(b).read_text() == "two\n"
    assert Path(a).stat().st_mode & 0o7777 == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"

    rc, out, log = _run(tmp_path, files)
    assert rc == 0, log
    assert not out["changed"] and out["changed_files"] == [] and out["content_changed"] == []


def test_mode_only_change_and_diff(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a.conf"), str(tmp_path / "b.conf")
    assert _run(tmp_path, {a: "one\n", b: "two\n"})[0] == 0
    Path(b).chmod(0o600)
    rc, out, log = _run(tmp_path, {a: "ONE\n", b: "two\n"}, "--diff")
    assert rc == 0, log
    assert out["changed_files"] == [a, b] and out["content_changed"] == [a]
    assert "-one" in log and "+ONE" in log
    assert Path(b).stat().st_mode & 0o7777 == 0o644 and Path(a).read_text() == "ONE\n"


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    a = str(tmp_path / "a.conf")
    rc, _, log = _run(tmp_path, {a: "one\n", "relative.conf": "x\n"})
    assert rc != 0 and "relative.conf: not an absolute path; nothing was written" in log
    assert not Path(a).exists()
    rc, _, log = _run(tmp_path, {a: "one\n", str(tmp_path / "missing" / "b.conf"): "x\n"})
    assert rc != 0 and "does not exist" in log
