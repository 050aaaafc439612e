"""How a changed slurm.conf reaches running daemons (bitten.slurm.conf)."""

from __future__ import annotations

import pytest

from bitten.slurm.conf import change_plan, changed_keys, parse, parse_version

BASE = """\
# slurm.conf
ClusterName=lab
SlurmctldHost=ctl
SlurmctldPort=6817
AuthType=auth/munge
SelectType=select/cons_tres
NodeName=gpu[01-02] CPUs=2 Gres=gpu:b200:2 State=UNKNOWN
PartitionName=gpu Nodes=gpu[01-02] AllowQos=gpu State=UP
"""
CONF = "/etc/slurm/slurm.conf"


def test_parse_keeps_repeated_keys_in_order_and_ignores_comments() -> None:
    conf = parse(BASE + "NodeName=cpu01 CPUs=4   State=UNKNOWN # trailing comment\n")
    assert conf["nodename"] == ["gpu[01-02] CPUs=2 Gres=gpu:b200:2 State=UNKNOWN", "cpu01 CPUs=4 State=UNKNOWN"]
    assert conf["clustername"] == ["lab"]


def test_changed_keys_ignores_comments_and_spacing() -> None:
    assert changed_keys(BASE, "# reworded\n" + BASE.replace("AuthType=auth/munge", "AuthType = auth/munge")) == set()
    assert changed_keys(BASE, BASE.replace("AllowQos=gpu", "AllowQos=gpu,normal")) == {"partitionname"}


@pytest.mark.parametrize(("version", "expected"), [("24.11.5-4+deb13u1", (24, 11)), ("22.05.8-4", (22, 5)),
                                                   ("1:23.11.0", (23, 11))])
def test_parse_version(version: str, expected: tuple[int, int]) -> None:
    assert parse_version(version) == expected


def test_parse_version_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a Slurm version"):
        parse_version("unknown")


def test_nothing_changed_on_running_hosts_touches_nothing() -> None:
    assert change_plan(BASE, BASE, "24.11.5", []) == "none"
    # a brand-new node got its files: its daemon starts with them, the others need nothing
    assert change_plan(BASE, BASE, "24.11.5", ()) == "none"


def test_added_node_is_a_reconfigure_on_24_11_and_a_restart_on_22_05() -> None:
    grown = BASE.replace("gpu[01-02]", "gpu[01-03]")
    assert change_plan(BASE, grown, "24.11.5-4", [CONF]) == "reconfigure"
    assert change_plan(BASE, grown, "22.05.8-4", [CONF]) == "restart"


def test_partition_change_is_a_reconfigure_everywhere() -> None:
    changed = BASE.replace("AllowQos=gpu", "AllowQos=gpu,normal")
    assert change_plan(BASE, changed, "24.11", [CONF]) == "reconfigure"
    assert change_plan(BASE, changed, "22.05", [CONF]) == "reconfigure"


@pytest.mark.parametrize("edit", [("SlurmctldPort=6817", "SlurmctldPort=7817"),
                                  ("AuthType=auth/munge", "AuthType=auth/slurm"),
                                  ("SlurmctldHost=ctl", "SlurmctldHost=ctl2")])
def test_listening_and_auth_changes_need_restarts(edit: tuple[str, str]) -> None:
    assert change_plan(BASE, BASE.replace(*edit), "24.11", [CONF]) == "restart"


def test_gres_conf_change_alone() -> None:
    assert change_plan(BASE, BASE, "24.11", ["/etc/slurm/gres.conf"]) == "reconfigure"
    assert change_plan(BASE, BASE, "22.05", ["/etc/slurm/gres.conf"]) == "restart"


def test_comment_only_change_is_a_reconfigure() -> None:
    # harmless, and it keeps the daemons' config hash equal to the file's
    assert change_plan(BASE, "# new header\n" + BASE, "24.11", [CONF]) == "reconfigure"


def test_controller_without_previous_config() -> None:
    assert change_plan(None, BASE, "24.11", [CONF]) == "reconfigure"
    assert change_plan(None, BASE, "24.11", []) == "none"
