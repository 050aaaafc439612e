"""The fast loader and Ansible's InventoryManager give the identical model (or the identical problems) on every
inventory of the repository and on generated ones: bitten sees what ansible-playbook sees, only sooner."""

from __future__ import annotations

import datetime
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitten.capabilities import build_site
from bitten.site import SiteError, fastload, load_inventory
from test_validate_broken import CASES, compose

from conftest import BROKEN, INVENTORIES


def outcome(inventory: Path, fast: bool) -> tuple[str, Any]:
    data = load_inventory([inventory], fast=fast)
    try:
        site = build_site(data)
    except SiteError as exc:
        return "invalid", [str(p) for p in exc.problems]
    return "valid", (data.groups, site.model_dump(mode="json"))


def assert_same(inventory: Path) -> None:
    try:
        fastload.load([str(inventory)])
    except fastload.NotPlain:
        pytest.skip("needs Ansible itself: both paths are Ansible's")
    assert outcome(inventory, fast=True) == outcome(inventory, fast=False)


@pytest.mark.parametrize("site", ["bitten", "lab"])
def test_shipped_inventories(site: str) -> None:
    assert_same(INVENTORIES / site)


@pytest.mark.parametrize("case", ["_none", *CASES])
def test_broken_inventories_give_the_same_problems(case: str, tmp_path: Path) -> None:
    assert_same(compose(case, tmp_path / "inv"))


def test_what_needs_ansible_is_left_to_ansible(tmp_path: Path) -> None:
    """Templates, vault, host ranges and hosts defined twice differently go the Ansible way."""
    for case in ("template-error", "vault-no-password", "host-defined-twice", "group-conflict", "yaml-error",
                 "yaml-duplicate-key", "yaml-misindented-host"):
        with pytest.raises(fastload.NotPlain):
            fastload.load([str(compose(case, tmp_path / case))])


# --- generated sites ----------------------------------------------------------------------------------------

names = st.sampled_from(["rack_a", "rack_b", "row1", "dlc"])
loops = st.sampled_from(["loop-a", "loop-b"])


@st.composite
def sites(draw: st.DrawFn) -> dict[str, Any]:
    """The base site with extra GPU nodes, extra groups (nested or not, with priorities) setting cooling loops and
    profiles in hosts.yml or group_vars, and host_vars overriding them."""
    count = draw(st.integers(min_value=0, max_value=12))
    hosts = [f"gpu{i:02d}" for i in range(3, 3 + count)]
    groups: dict[str, dict[str, Any]] = {}
    for name in draw(st.lists(names, max_size=3, unique=True)):
        members = draw(st.lists(st.sampled_from(["gpu01", "gpu02", *hosts]), max_size=4, unique=True))
        groups[name] = {
            "hosts": members,
            "nested": draw(st.booleans()),
            "vars": draw(st.dictionaries(st.just("bitten_cooling_loop"), loops, max_size=1)),
            "file": draw(st.dictionaries(st.sampled_from(["bitten_cooling_loop", "bitten_hardware_profile"]),
                                         st.sampled_from(["loop-a", "gpu", "cpu", "loop-b"]), max_size=1)),
            "priority": draw(st.sampled_from([None, 1, 5])),
        }
    host_vars = draw(st.dictionaries(st.sampled_from(["gpu01", "cpu01", *hosts]),
                                     st.dictionaries(st.just("bitten_cooling_loop"), loops, max_size=1), max_size=3))
    return {"hosts": hosts, "groups": groups, "host_vars": host_vars}


def write(spec: dict[str, Any], dest: Path) -> Path:
    shutil.copytree(BROKEN / "_base", dest)
    inventory = yaml.safe_load((dest / "hosts.yml").read_text())
    gpu = inventory["all"]["children"]["compute"]["children"]["gpu_nodes"]["hosts"]
    for index, host in enumerate(spec["hosts"], start=3):
        gpu[host] = {"bitten_ip": f"10.0.1.{index}", "bitten_bmc": {"address": f"10.1.1.{index}"},
                     "bitten_boot_mac": f"02:00:00:00:01:{index:02x}"}
    for name, group in spec["groups"].items():
        body: dict[str, Any] = {"hosts": {h: None for h in group["hosts"]}}
        group_vars = dict(group["vars"])
        if group["priority"] is not None:
            group_vars["ansible_group_priority"] = group["priority"]
        if group_vars:
            body["vars"] = group_vars
        parent = inventory["all"]["children"]["compute"]["children"] if group["nested"] else \
            inventory["all"]["children"]
        parent[name] = body
        if group["file"]:
            (dest / "group_vars" / f"{name}.yml").write_text(yaml.safe_dump(group["file"]))
    (dest / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    if spec["host_vars"]:
        (dest / "host_vars").mkdir()
        for host, values in spec["host_vars"].items():
            (dest / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
    return dest


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_generated_sites_give_the_same_model(spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="bitten-fastload-") as tmp:
        inventory = write(spec, Path(tmp) / "inv")
        try:
            fastload.load([str(inventory)])
        except fastload.NotPlain:
            return  # a group conflict: Ansible reads (and reports) it
        assert outcome(inventory, fast=True) == outcome(inventory, fast=False)


@pytest.mark.parametrize(("value", "plain"), [
    ({"a": [1, 2.5, True, None, "x{y}"]}, True),
    ({"a": [{"b": "{{ c }}"}]}, False),
    (["{% if x %}"], False),
    ("{# a comment #}", False),
    ({1: "one"}, False),  # a key Ansible would read otherwise
    ({"when": datetime.date(2026, 12, 3)}, False),  # a YAML timestamp, not one of the plain types
    (b"bytes", False),
])
def test_only_plain_values_take_the_fast_path(value: object, plain: bool) -> None:
    assert fastload._plain(value) is plain
