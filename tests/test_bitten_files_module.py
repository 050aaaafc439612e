"""The bitten_files module through real ansible-playbook on this machine: check mode writes nothing and says what
would change, a run writes each file atomically with its owner, group and mode, a second run changes nothing, a
mode-only change counts as a change but not as a content change, --diff shows the content, bad input fails whole;
a file may name its own mode and a validation command (a failed validation keeps the old file), and the directories
the files go in are created first."""

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


def _run(tmp: Path, files: dict[str, Any], *flags: str,
         directories: list[str] | None = None) -> tuple[int, dict[str, Any], str]:
    args: dict[str, Any] = {"files": files, **({"directories": directories} if directories is not None else {})}
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "tasks": [{"name": "files", "bitten_files": args, "register": "out"},
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


def test_directories_per_file_mode_and_validation(tmp_path: Path) -> None:
    conf_d = str(tmp_path / "conf.d" / "deep")
    drop_in, sudoers = f"{conf_d}/90-site.conf", str(tmp_path / "sudoers")
    files: dict[str, Any] = {drop_in: "x=1\n",
                             sudoers: {"content": "good\n", "mode": "0440", "validate": "grep -q good %s"}}
    rc, out, log = _run(tmp_path, files, "--check", directories=[conf_d])
    assert rc == 0, log
    assert out["created_directories"] == [conf_d] and out["changed_files"] == [drop_in, sudoers]
    assert not Path(conf_d).exists() and not Path(sudoers).exists()

    rc, out, log = _run(tmp_path, files, directories=[conf_d])
    assert rc == 0, log
    assert out["created_directories"] == [conf_d] and Path(conf_d).stat().st_mode & 0o7777 == 0o755
    assert Path(drop_in).read_text() == "x=1\n" and Path(sudoers).stat().st_mode & 0o7777 == 0o440
    rc, out, log = _run(tmp_path, files, directories=[conf_d])
    assert rc == 0 and not out["changed"] and out["created_directories"] == [], log

    # content its validator rejects never replaces the file, and no temporary file is left behind
    rc, _, log = _run(tmp_path, {sudoers: {"content": "bad\n", "mode": "0440", "validate": "grep -q good %s"}})
    assert rc != 0 and "failed validation" in log and "was not replaced" in log
    assert Path(sudoers).read_text() == "good\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"

    # nor does any other file of the same run get written: every validation runs before the first write
    other = str(tmp_path / "other.conf")
    rc, _, log = _run(tmp_path, {other: "x\n",
                                 sudoers: {"content": "bad\n", "mode": "0440", "validate": "grep -q good %s"}})
    assert rc != 0 and "failed validation" in log and not Path(other).exists()


def test_bad_file_specs_write_nothing(tmp_path: Path) -> None:
    a = str(tmp_path / "a.conf")
    for bad, message in (({"content": "x\n", "colour": "red"}, "unknown keys colour"),
                         ({"mode": "0644"}, "content is missing or not text"),
                         ({"content": "x\n", "validate": "visudo -c"}, "validate must name the new file as %s"),
                         (["x"], "neither text nor a dict")):
        rc, _, log = _run(tmp_path, {a: "one\n", str(tmp_path / "b.conf"): bad})
        assert rc != 0 and message in log, log
        assert not Path(a).exists()
