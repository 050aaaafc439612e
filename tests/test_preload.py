"""The callback bitten_preload imports bitten in ansible-playbook's own process, so the workers it forks for each
task and host find it imported (a lookup that builds the site model then costs the build, not the import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = '''
import sys
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        with open(terms[0], "w") as out:
            out.write("true" if "bitten.capabilities" in sys.modules else "false")
        return [True]
'''


def imported_in_worker(tmp_path: Path, callbacks: str) -> bool:
    (tmp_path / "lookup").mkdir()
    (tmp_path / "lookup" / "bitten_probe.py").write_text(PROBE)
    out = tmp_path / "out.json"
    play = tmp_path / "play.yml"
    # no filter in the task: loading the filter plugins (bitten's among them) would import bitten in the worker
    play.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.set_fact:\n"
                    f"        probed: \"{{{{ lookup('bitten_probe', '{out}') }}}}\"\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_CALLBACK_PLUGINS": callbacks,
           "ANSIBLE_LOOKUP_PLUGINS": str(tmp_path / "lookup")}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(play)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return bool(json.loads(out.read_text()))


def test_workers_inherit_bitten_from_the_controller_process(tmp_path: Path) -> None:
    assert imported_in_worker(tmp_path, str(ROOT / "plugins" / "callback"))


def test_without_the_callback_every_worker_imports_it_afresh(tmp_path: Path) -> None:
    assert not imported_in_worker(tmp_path, "/nonexistent")
