"""The ucloud_im role's firewall ruleset, rendered by Ansible and checked by nft itself (in a throwaway user and
network namespace, as the role's nft-check does where it may not load rules)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

ROLE = ROOT / "roles" / "ucloud_im"
needs_nft = pytest.mark.skipif(shutil.which("nft") is None or shutil.which("unshare") is None,
                               reason="nft and unshare are needed (Debian: nftables, util-linux)")


def render_ruleset(tmp_path: Path, trusted: list[str], ports: list[str]) -> str:
    variables = {"ucloud_im_trusted_sources": trusted, "ucloud_im_internal_ports": ports,
                 "ucloud_im__config": {"provider": {"hosts": {"selfPublic": {"port": 443}}}}}
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    dest = tmp_path / "ucloud-im.nft"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "ansible.builtin.template",
         "-a", f"src={ROLE / 'templates' / 'ucloud-im.nft.j2'} dest={dest}", "-e", f"@{tmp_path / 'vars.json'}",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                                             "ANSIBLE_INVENTORY": "localhost,"}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest.read_text()


@needs_nft
@pytest.mark.parametrize("trusted", [["10.20.0.11", "10.20.1.0/24", "fd00::5"], []])
def test_ruleset_is_valid_nft(tmp_path: Path, trusted: list[str]) -> None:
    text = render_ruleset(tmp_path, trusted, ["7867", "8889", "42000-65535"])
    assert "delete table inet ucloud_im" in text and "flush ruleset" not in text
    assert ("trusted_v6" in text) == bool(trusted)
    check = subprocess.run([str(ROLE / "files" / "nft-check"), str(tmp_path / "ucloud-im.nft")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


@needs_nft
def test_nft_check_refuses_a_broken_ruleset(tmp_path: Path) -> None:
    text = render_ruleset(tmp_path, ["10.0.0.1"], ["7867"])
    broken = tmp_path / "broken.nft"
    broken.write_text(text.replace("tcp dport @internal_ports counter drop", "tcp dport @internal_ports counter dorp"))
    check = subprocess.run([str(ROLE / "files" / "nft-check"), str(broken)], capture_output=True, text=True,
                           check=False)
    assert check.returncode != 0 and "dorp" in check.stderr
