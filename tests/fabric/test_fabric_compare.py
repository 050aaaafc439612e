"""`bitten fabric check`'s core: the tools' formats parsed, and every planted fault found (and nothing else)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fabric_site import site_with

from bitten.fabric.compare import compare
from bitten.fabric.discovery import Discovery, parse_iblinkinfo, parse_ibnetdiscover

from conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "fabric"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_ibnetdiscover_is_parsed_into_nodes_links_and_port_guids() -> None:
    found = parse_ibnetdiscover(read("tiny.ibnetdiscover"))
    assert not found.unparsed
    assert {n.description for n in found.nodes.values() if n.type == "switch"} == {
        "MF0;leaf1:MQM9700/U1", "MF0;leaf2:MQM9700/U1", "MF0;spine1:MQM9700/U1"}
    link = found.links[("0xb83fd20300000001", 1)]
    assert (link.peer.type, link.peer.description, link.peer.port_guid) == ("ca", "gpu01 mlx5_0", "0x946dae0300000101")
    assert (link.width, link.speed) == ("4X", "NDR")
    trunk = found.links[("0xb83fd20300000002", 34)]
    assert (trunk.peer.guid, trunk.peer.port) == ("0xb83fd20300000003", 4)
    # the CA's side of the same cable
    ca = found.links[("0x946dae0300000501", 1)]
    assert (ca.peer.guid, ca.peer.port) == ("0xb83fd20300000002", 3)


@pytest.mark.parametrize("name", ["tiny.iblinkinfo", "tiny-line.iblinkinfo"])
def test_iblinkinfo_default_and_line_mode(name: str) -> None:
    found = parse_iblinkinfo(read(name))
    assert not found.unparsed
    link = found.links[("0xb83fd20300000001", 4)]
    assert (link.peer.description, link.peer.port, link.width, link.speed, link.state, link.physical_state) == (
        "gpu02 mlx5_1", 1, "4X", "NDR", "Active", "LinkUp")
    assert found.down[("0xb83fd20300000001", 5)] == ("Down", "Polling")
    assert len([k for k in found.links if k[0] == "0xb83fd20300000003"]) == 4


def test_unknown_lines_are_reported_not_ignored() -> None:
    found = parse_iblinkinfo(read("tiny.iblinkinfo") + "this is not iblinkinfo\n")
    assert found.unparsed == ["iblinkinfo:210: this is not iblinkinfo"]


@pytest.mark.parametrize("sources", [("ibnetdiscover",), ("iblinkinfo",), ("ibnetdiscover", "iblinkinfo")])
def test_the_fabric_as_cabled_has_no_findings(sources: tuple[str, ...]) -> None:
    assert compare(site_with().fabric, _discover("tiny", sources)) == []  # type: ignore[arg-type]


def test_line_mode_alone_has_no_findings() -> None:
    assert compare(site_with().fabric, parse_iblinkinfo(read("tiny-line.iblinkinfo"))) == []  # type: ignore[arg-type]


PLANTED = [
    ("miscabled", "leaf1 port 2", "gpu01 mlx5_0 is cabled here; the inventory says leaf1 port 1"),
    ("miscabled", "leaf1 port 1", "gpu01 mlx5_1 is cabled here; the inventory says leaf1 port 2"),
    ("missing", "leaf2 port 1", "no link to cpu01 mlx5_0"),
    ("speed", "leaf1 port 4", "the link to gpu02 mlx5_1 runs at HDR, the fabric at NDR"),
    ("width", "leaf2 port 33", "the trunk to spine1 port 3 runs at 2X, the fabric at 4X"),
    ("misplaced", "leaf1 port 7", "dbd mlx5_0 is cabled here; the inventory says leaf2 port 3"),
    ("unexpected", "leaf2 port 10", '"spare01 mlx5_0" port 1'),
    ("missing", "leaf2 port 34", "no link to the trunk to spine1 port 4"),
    ("unknown-switch", "MF0;leaf9:MQM9700/U1", "switch 0xb83fd20300000009 is in the fabric but not in"),
    ("unexpected", "spine1 port 20", 'switch "MF0;leaf9:MQM9700/U1" port 33'),
]


@pytest.mark.parametrize("sources", [("ibnetdiscover",), ("ibnetdiscover", "iblinkinfo"), ("iblinkinfo",)])
def test_every_planted_fault_is_found_and_nothing_else(sources: tuple[str, ...]) -> None:
    findings = compare(site_with().fabric, _discover("tiny-faults", sources))  # type: ignore[arg-type]
    for kind, where, text in PLANTED:
        assert any(f.kind == kind and f.where == where and text in f.message for f in findings), (kind, where, findings)
    assert len(findings) == len(PLANTED), findings


def test_iblinkinfo_tells_why_a_link_is_missing() -> None:
    findings = compare(site_with().fabric, _discover("tiny-faults", ("ibnetdiscover", "iblinkinfo")))  # type: ignore[arg-type]
    missing = next(f for f in findings if f.where == "leaf2 port 1")
    assert "the port is Down/Polling" in missing.message and missing.host == "cpu01"


def test_an_absent_switch_is_one_finding_not_one_per_port() -> None:
    blocks = read("tiny.ibnetdiscover").split("\n\n")
    kept = "\n\n".join(b for b in blocks if 'Switch\t65 "S-b83fd20300000002"' not in b)
    findings = compare(site_with().fabric, parse_ibnetdiscover(kept))  # type: ignore[arg-type]
    assert [f.kind for f in findings] == ["absent-switch"]
    assert findings[0].where == "leaf2"


def test_a_port_guid_beats_a_node_description() -> None:
    # an HCA that calls itself "gpu01 mlx5_0" but has another port's GUID is not gpu01's mlx5_0
    text = read("tiny.ibnetdiscover").replace('"H-946dae0300000101"[1](946dae0300000101)',
                                                '"H-946dae0300000999"[1](946dae0300000999)')
    findings = compare(site_with().fabric, parse_ibnetdiscover(text))  # type: ignore[arg-type]
    assert [(f.kind, f.where) for f in findings] == [("miscabled", "leaf1 port 1")]
    assert "(0x946dae0300000999)" in findings[0].message


def _discover(name: str, sources: tuple[str, ...]) -> Discovery:
    parsed = [parse_ibnetdiscover(read(f"{name}.ibnetdiscover")) if s == "ibnetdiscover"
              else parse_iblinkinfo(read(f"{name}.iblinkinfo")) for s in sources]
    out = parsed[0]
    for other in parsed[1:]:
        out = out.merge(other)
    return out


def test_fixture_readme_lists_the_planted_faults() -> None:
    readme = (FIXTURES / "README.md").read_text()
    assert "written by hand for" in readme and len([ln for ln in readme.splitlines() if ln[:2] in {
        f"{i}." for i in range(1, 10)}]) == 8
    assert Path(FIXTURES / "tiny-faults.ibnetdiscover").exists()


# --- the command line -----------------------------------------------------------------------------------------


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    import shutil

    import yaml
    from fabric_site import FABRIC

    from conftest import BROKEN

    dest = tmp_path / "inv"
    shutil.copytree(BROKEN / "_base", dest)
    (dest / "group_vars/all/fabric.yml").write_text(yaml.safe_dump({"bitten_fabric": FABRIC}))
    return dest


def _run(*args: str) -> Any:
    from typer.testing import CliRunner

    from bitten.cli import app

    return CliRunner().invoke(app, ["fabric", "check", *args])


def test_cli_reports_each_fault_and_exits_1(inventory: Path) -> None:
    result = _run(str(inventory), "--ibnetdiscover", str(FIXTURES / "tiny-faults.ibnetdiscover"),
                  "--iblinkinfo", str(FIXTURES / "tiny-faults.iblinkinfo"))
    assert result.exit_code == 1, result.output
    assert "misplaced: leaf1 port 7: dbd mlx5_0 is cabled here; the inventory says leaf2 port 3" in result.stdout
    assert "tiny-ib: 4 switches" in result.stdout and "10 finding(s)" in result.stdout


def test_cli_clean_fabric_exits_0_and_json(inventory: Path) -> None:
    result = _run(str(inventory), "--ibnetdiscover", str(FIXTURES / "tiny.ibnetdiscover"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"fabric": "tiny-ib", "findings": [], "unparsed": []}


def test_cli_refuses_what_is_not_tool_output(inventory: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    result = _run(str(inventory), "--iblinkinfo", str(junk))
    assert result.exit_code == 3
    assert "the iblinkinfo output has no links" in result.stderr and "hello" in result.stderr


def test_cli_without_a_fabric_or_without_the_tools(inventory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import BROKEN

    result = _run(str(BROKEN / "_base"), "--ibnetdiscover", str(FIXTURES / "tiny.ibnetdiscover"))
    assert result.exit_code == 2 and "has no bitten_fabric" in result.stderr
    monkeypatch.setattr("shutil.which", lambda *a, **k: None)
    result = _run(str(inventory))
    assert result.exit_code == 3 and "ibnetdiscover is not installed here" in result.stderr
