"""Planning sacctmgr commands from the inventory (bitten.slurm.accounting), against real sacctmgr 24.11 output."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitten.capabilities import load_site
from bitten.site.model import Account, Qos
from bitten.slurm.accounting import (
    AccountingError,
    DesiredAccounting,
    UserSpec,
    desired_from_site,
    parse_state,
    plan,
    queries,
    tres,
    unknown_tres,
    wall_seconds,
)

S = ["sacctmgr", "--immediate"]
ROOT = Path(__file__).resolve().parents[1]

#: what `sacctmgr --noheader --parsable2 show ...` (queries()) printed on a fresh Slurm 24.11 cluster
FRESH = {
    "clusters": "",
    "qos": "normal|Normal QOS default|0|||||\n",
    "accounts": "root|default root account|root\n",
    "associations": "",
    "users": "root|root|Administrator\n",
    "tres": "cpu|\nmem|\nenergy|\nnode|\nbilling|\nfs|disk\nvmem|\npages|\n",
}
#: ... and after the inventory below had been applied
APPLIED = {
    "clusters": "molecule\n",
    "qos": "normal|default qos for cpu jobs|0|00:30:00||||\n"
           "gpu|gpu jobs|10||gres/gpu=4|||DenyOnLimit\n",
    "accounts": "research|molecule researchers|molecule\nroot|default root account|root\n",
    "associations": "root|||normal|\nroot|root||normal|\nresearch||root|gpu,normal|normal\n"
                    "research|alice||gpu,normal|normal\n",
    "users": "alice|research|None\nroot|root|Administrator\n",
    "tres": FRESH["tres"] + "gres|gpu\ngres|gpu:b200\n",
}
DESIRED = DesiredAccounting(
    cluster="molecule",
    qos=(Qos(name="normal", description="default QoS for CPU jobs", max_wall="30"),
         Qos(name="gpu", description="GPU jobs", priority=10, max_tres_per_user="gres/gpu=4",
             flags=("DenyOnLimit",))),
    accounts=(Account(name="research", description="molecule researchers", organization="molecule",
                      qos=("normal", "gpu"), default_qos="normal", users=("alice",)),),
    users=(UserSpec("alice", ("research",)),),
)


def test_queries_are_read_only_and_scoped_to_the_cluster() -> None:
    q = queries("molecule")
    assert all(argv[:4] == ["sacctmgr", "--noheader", "--parsable2", "show"] for argv in q.values())
    assert "cluster=molecule" in q["associations"]


def test_fresh_cluster_gets_everything_in_order() -> None:
    commands = plan(DESIRED, parse_state(FRESH))
    assert commands == [
        [*S, "add", "cluster", "molecule"],
        [*S, "modify", "qos", "where", "name=normal", "set", "Description=default QoS for CPU jobs", "MaxWall=30"],
        [*S, "add", "qos", "gpu", "Description=GPU jobs", "Priority=10", "MaxTRESPerUser=gres/gpu=4",
         "Flags=DenyOnLimit"],
        [*S, "add", "account", "research", "Cluster=molecule", "Parent=root", "Description=molecule researchers",
         "Organization=molecule", "QOS=normal,gpu", "DefaultQOS=normal"],
        [*S, "add", "user", "alice", "Account=research", "Cluster=molecule", "DefaultAccount=research"],
    ]


def test_applied_state_needs_nothing() -> None:
    # descriptions come back lower-cased and 30 minutes as 00:30:00: neither is a difference
    assert plan(DESIRED, parse_state(APPLIED)) == []


def test_removed_limits_are_cleared_and_changed_ones_merged() -> None:
    qos = Qos(name="gpu", description="GPU jobs", priority=5, max_tres_per_user="cpu=8")
    commands = plan(DesiredAccounting("molecule", qos=(qos,)), parse_state(APPLIED))
    assert commands == [[*S, "modify", "qos", "where", "name=gpu", "set", "Priority=5",
                         "MaxTRESPerUser=cpu=8,gres/gpu=-1", "Flags=-1"]]


def test_account_changes_touch_only_what_differs() -> None:
    account = Account(name="research", description="molecule researchers", organization="sdu",
                      qos=("normal",), default_qos="normal")
    commands = plan(DesiredAccounting("molecule", accounts=(account,)), parse_state(APPLIED))
    assert commands == [
        [*S, "modify", "account", "where", "name=research", "set", "Organization=sdu"],
        [*S, "modify", "account", "where", "name=research", "cluster=molecule", "set", "QOS=normal"],
    ]


def test_unnamed_accounts_and_users_are_left_alone() -> None:
    state = parse_state({**APPLIED, "accounts": APPLIED["accounts"] + "ucloud_p1|project|ucloud\n",
                         "associations": APPLIED["associations"] + "ucloud_p1||root|normal|\n"})
    assert plan(DesiredAccounting("molecule"), state) == []


def test_child_accounts_are_created_after_their_parents() -> None:
    parent = Account(name="sdu")
    child = Account(name="imada", parent="sdu")
    commands = plan(DesiredAccounting("molecule", accounts=(child, parent)), parse_state(APPLIED))
    assert [c[4] for c in commands] == ["sdu", "imada"]
    assert "Parent=sdu" in commands[1]


def test_operator_user_for_ucloud() -> None:
    user = UserSpec("ucloud", ("root",), admin_level="operator")
    assert plan(DesiredAccounting("molecule", users=(user,)), parse_state(APPLIED)) == [
        [*S, "add", "user", "ucloud", "Account=root", "Cluster=molecule", "DefaultAccount=root",
         "AdminLevel=Operator"]]
    existing = parse_state({**APPLIED, "users": APPLIED["users"] + "ucloud|root|None\n",
                            "associations": APPLIED["associations"] + "root|ucloud||normal|\n"})
    assert plan(DesiredAccounting("molecule", users=(user,)), existing) == [
        [*S, "modify", "user", "where", "name=ucloud", "set", "AdminLevel=Operator"]]


@pytest.mark.parametrize(("desired", "message"), [
    (DesiredAccounting("m", accounts=(Account(name="a", parent="nowhere"),)), "parent 'nowhere'"),
    # the site model refuses this account already (bitten validate); the planner refuses it too
    (DesiredAccounting("m", accounts=(Account.model_construct(name="a", qos=("gpu",), default_qos="normal"),)),
     "default_qos 'normal'"),
    (DesiredAccounting("m", users=(UserSpec("bob", ("ghost",)),)), "account 'ghost' is not defined"),
    (DesiredAccounting("m", users=(UserSpec("bob"),)), "has no accounts"),
    (DesiredAccounting("m", users=(UserSpec("root", admin_level="god"),)), "admin level 'god'"),
    (DesiredAccounting("m", accounts=(Account(name="a", parent="b"), Account(name="b", parent="a"))), "cycle"),
])
def test_impossible_requests_name_the_fix(desired: DesiredAccounting, message: str) -> None:
    with pytest.raises(AccountingError, match=message):
        plan(desired, parse_state(APPLIED))


@pytest.mark.parametrize(("value", "seconds"), [
    ("30", 1800), ("01:30:00", 5400), ("90:00", 5400), ("2-00:00:00", 172800), ("1-0", 86400),
    ("1-02:03", 93780), ("", None), ("-1", None), ("UNLIMITED", None), (None, None),
])
def test_wall_seconds(value: str | None, seconds: int | None) -> None:
    assert wall_seconds(value) == seconds


def test_tres_normalises_names_and_memory() -> None:
    assert tres("GRES/gpu=4,mem=1G") == tres("mem=1024M,gres/gpu=4") == {"gres/gpu": "4", "mem": "1024"}
    with pytest.raises(AccountingError, match="NAME=COUNT"):
        tres("gpu")


def test_parse_state_rejects_unexpected_output() -> None:
    with pytest.raises(ValueError, match="want 8 fields"):
        parse_state({"qos": "normal|short\n"})


def test_desired_from_the_lab_inventory() -> None:
    site = load_site([ROOT / "inventory" / "lab"])
    desired = desired_from_site(site, [{"name": "ucloud", "accounts": ["root"], "admin_level": "Operator"}])
    assert desired.cluster == "lab"
    # the lab declares the flexible QoS its energy controller holds (inventory/lab/group_vars/all/energy.yml)
    assert [q.name for q in desired.qos] == ["normal", "gpu", "ucloud-b200", "ucloud-cpu", "flexible"]
    assert UserSpec("ucloud", ("root",), None, "Operator") in desired.users
    only_users = desired_from_site(site, [{"name": "ucloud", "accounts": ["root"]}], with_site=False)
    assert only_users.qos == () and only_users.accounts == ()


def test_gpu_limits_wait_for_the_gres_tres_that_slurmctld_registers() -> None:
    assert unknown_tres(DESIRED, parse_state(FRESH).tres) == {"gpu": {"gres/gpu"}}
    assert unknown_tres(DESIRED, parse_state(APPLIED).tres) == {}
    assert "fs/disk" in parse_state(FRESH).tres
