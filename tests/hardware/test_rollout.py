"""The rollout's decisions, against a scripted scontrol (the real cluster is tests/hardware/test_rolling_reboot.py):
nodes it must leave alone, a node that never comes back, a check that fails after the reboot, a wave that stops
the rest, a prepare that fails, and the reservation always removed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bitten.core.process import Result
from bitten.core.scontrol import Scontrol
from bitten.hardware.rollout import (
    BmcReboot,
    JobResult,
    RebootNeed,
    Reconverge,
    Rollout,
    command_converge,
    gate_command,
    waves_of,
)
from bitten.site.model import RolloutSettings


@dataclass
class Node:
    state: str = "IDLE"
    boot: str = "2026-01-01T00:00:00"
    reason: str = ""
    #: polls until a requested reboot completes; None: it never comes back
    reboot_after: int | None = 1
    rebooting: int = -1
    #: PXE-boots its image with its identity only: slurmd cannot register until it was converged
    stateless: bool = False
    converged: bool = False
    #: it reported up to the provisioner (stateless, after its reboot)
    reported_up: bool = False
    #: away longer than SlurmdTimeout: Slurm set it DOWN, and its slurmd registers back DOWN+DRAIN with the reason
    #: bitten gave (ReturnToService=1 returns only nodes whose reason is Slurm's own "Not responding")
    down_when_back: bool = False


@dataclass
class FakeSlurm:
    """TEST DOUBLE of scontrol: node states, BootTime, reboots, drains, reservations; records every call."""

    nodes: dict[str, Node]
    calls: list[list[str]] = field(default_factory=list)
    reservations: dict[str, list[str]] = field(default_factory=dict)
    boots: int = 0

    def __call__(self, argv: Sequence[str], timeout: float) -> Result:
        args = list(argv[1:])
        self.calls.append(args)
        out = ""
        if args[:3] == ["show", "node", "-o"]:
            for name in args[3].split(","):
                node = self.nodes.get(name)
                if node is None:
                    continue
                self._tick(name, node)
                reason = f" Reason={node.reason} [root@2026-01-01T00:00:00]" if node.reason else ""
                out += f"NodeName={name} Arch=x86_64 BootTime={node.boot} State={node.state}{reason}\n"
        elif args[0] == "reboot":
            node = self.nodes[args[-1]]
            node.state, node.reason, node.rebooting = "IDLE+DRAIN+REBOOT_REQUESTED", args[3][len("reason="):], 0
        elif args[:2] == ["create", "reservation"]:
            name = args[2].split("=", 1)[1]
            self.reservations[name] = args[3].split("=", 1)[1].split(",")
        elif args[0] == "delete":
            self.reservations.pop(args[1].split("=", 1)[1])
        elif args[0] == "update" and args[1].startswith("ReservationName="):
            self.reservations[args[1].split("=", 1)[1]] = args[2].split("=", 1)[1].split(",")
        elif args[0] == "update" and args[1].startswith("NodeName="):
            fields = dict(a.split("=", 1) for a in args[2:])
            for name in args[1].split("=", 1)[1].split(","):
                node = self.nodes[name]
                if fields.get("State") == "DRAIN":
                    node.state = node.state.split("+")[0] + "+DRAIN"
                    node.reason = fields["Reason"]
                elif fields.get("State") == "RESUME":
                    base = node.state.split("+")[0]
                    if base == "DOWN" and "NOT_RESPONDING" not in node.state:
                        base = "IDLE"  # a down node whose slurmd answers is up again
                    node.state, node.reason = base, ("" if base != "DOWN" else node.reason)
        return Result(tuple(argv), 0, out, "")

    def _tick(self, name: str, node: Node) -> None:
        if node.rebooting < 0:
            return
        node.rebooting += 1
        if node.reboot_after is None:
            node.state = "DOWN+DRAIN+REBOOT_ISSUED+NOT_RESPONDING"
        elif node.rebooting > node.reboot_after and node.stateless and not node.converged:
            node.state, node.reported_up = "DOWN+DRAIN+NOT_RESPONDING", True
        elif node.rebooting > node.reboot_after and node.down_when_back:
            self.boots += 1
            node.state, node.rebooting = "DOWN+DRAIN", -1
            node.boot = f"2026-02-01T00:00:{self.boots:02d}"
        elif node.rebooting > node.reboot_after:
            self.boots += 1
            node.state, node.reason, node.rebooting = "IDLE", "", -1
            node.boot = f"2026-02-01T00:00:{self.boots:02d}"


def rollout(slurm: FakeSlurm, jobs_fail: Sequence[str] = (), **settings: object) -> tuple[Rollout, list[list[str]]]:
    config = RolloutSettings(**{"wave_size": 1, "reboot_timeout_s": 5, **settings})  # type: ignore[arg-type]
    ran: list[list[str]] = []

    def jobs(argv: Sequence[str], timeout: float) -> JobResult:
        ran.append(list(argv))
        host = next(a.split("=", 1)[1] for a in argv if a.startswith("--nodelist="))
        return JobResult(host not in jobs_fail, "gpu-health: GPU 3 lost" if host in jobs_fail else "")

    clock = iter(range(0, 10_000))
    return Rollout(Scontrol(["scontrol"], runner=slurm), config, jobs=jobs, sleep=lambda _s: None,
                   clock=lambda: float(next(clock)), poll=0), ran


def test_waves_gate_and_reservations() -> None:
    slurm = FakeSlurm({"a": Node(), "b": Node(), "c": Node()})
    runner, ran = rollout(slurm, wave_size=2)
    result = runner.run([RebootNeed(h, "BIOS X pending") for h in ("c", "a", "b")])
    assert result.ok and result.waves == [["a", "b"], ["c"]]
    assert [n.state for n in result.nodes] == ["done", "done", "done"]
    reboots = [c for c in slurm.calls if c[0] == "reboot"]
    assert reboots[0] == ["reboot", "ASAP", "nextstate=RESUME", "reason=bitten: reboot: BIOS X pending", "a"]
    creates = [c for c in slurm.calls if c[:2] == ["create", "reservation"]]
    assert [c[3] for c in creates] == ["Nodes=a,b", "Nodes=c"]
    assert {"Users=root", "Flags=MAINT,IGNORE_JOBS", "StartTime=now"} <= set(creates[0])
    assert slurm.reservations == {}, "every reservation is removed"
    assert all(any(a.startswith("--reservation=bitten-reboot-") for a in job) for job in ran)
    assert [job[-1] for job in ran] == ["/bin/true"] * 3


def test_nodes_drained_by_others_down_or_unknown_are_left_alone() -> None:
    slurm = FakeSlurm({"a": Node(state="IDLE+DRAIN", reason="hw: fan replacement"), "b": Node(state="DOWN"),
                       "c": Node()})
    runner, _ran = rollout(slurm, wave_size=4)
    result = runner.run([RebootNeed(h, "image 3f2a") for h in ("a", "b", "c", "ghost")])
    states = {n.host: (n.state, n.detail) for n in result.nodes}
    assert states["a"] == ("held", "drained by someone else (hw: fan replacement): not rebooted")
    assert states["b"][0] == "held" and "DOWN" in states["b"][1]
    assert states["ghost"] == ("failed", "Slurm does not know this node: not rebooted")
    assert states["c"][0] == "done"
    assert [c[-1] for c in slurm.calls if c[0] == "reboot"] == ["c"]
    assert slurm.nodes["a"].reason == "hw: fan replacement", "someone else's drain is not touched"


def test_a_node_that_never_returns_is_drained_with_the_reason_and_stops_the_rollout() -> None:
    slurm = FakeSlurm({"a": Node(reboot_after=None), "b": Node()})
    runner, _ran = rollout(slurm)
    result = runner.run([RebootNeed("a", "BIOS X pending"), RebootNeed("b", "BIOS X pending")])
    assert [(n.host, n.state) for n in result.nodes] == [("a", "failed"), ("b", "skipped")]
    assert "not back within 5 s of the reboot" in result.nodes[0].detail
    assert slurm.nodes["a"].reason.startswith("bitten: BIOS X pending: not back within 5 s")
    assert result.stopped and "remaining waves did not start" in result.stopped
    assert slurm.reservations == {}


def test_a_failed_check_or_test_job_drains_the_node_and_max_failures_lets_the_rest_go_on() -> None:
    slurm = FakeSlurm({"a": Node(), "b": Node(), "c": Node()})
    runner, _ran = rollout(slurm, jobs_fail=("b",), max_failures=2)
    result = runner.run([RebootNeed("a", "BIOS X pending", verify=lambda: "BIOS X still pending"),
                         RebootNeed("b", "driver 580"), RebootNeed("c", "driver 580")])
    assert [(n.host, n.state) for n in result.nodes] == [("a", "failed"), ("b", "failed"), ("c", "done")]
    assert slurm.nodes["a"].reason == "bitten: BIOS X pending: after the reboot: BIOS X still pending"
    assert slurm.nodes["b"].reason == "bitten: driver 580: test job failed: gpu-health: GPU 3 lost"
    assert "DRAIN" in slurm.nodes["b"].state and result.stopped is None


def test_a_node_that_cannot_be_prepared_is_not_rebooted() -> None:
    slurm = FakeSlurm({"a": Node(), "b": Node()})
    runner, _ran = rollout(slurm, wave_size=2, max_failures=5)
    result = runner.run([RebootNeed("a", "firmware bios 1.60"), RebootNeed("b", "firmware bios 1.60")],
                        prepare=lambda hosts: {"a": "firmware: TransferFailed"})
    assert {n.host: n.state for n in result.nodes} == {"a": "failed", "b": "done"}
    assert [c[-1] for c in slurm.calls if c[0] == "reboot"] == ["b"]
    assert slurm.nodes["a"].state == "IDLE" and not slurm.nodes["a"].reason, "nothing was done to it in Slurm"


def test_gate_commands_and_waves() -> None:
    config = RolloutSettings()
    assert gate_command(config, "/usr/local/sbin/bitten-gpu-health", gpu=True) == [
        "/usr/local/sbin/bitten-gpu-health", "--mode", "report"]
    assert gate_command(config, "/usr/local/sbin/bitten-gpu-health", gpu=False) == ["/bin/true"]
    assert gate_command(RolloutSettings(gate_command=("nvidia-smi",)), None, gpu=True) == ["nvidia-smi"]
    assert waves_of(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_needs_of_one_host_merge_into_one_with_every_check() -> None:
    from bitten.hardware.rollout import merge_needs

    ran: list[str] = []

    def check(name: str, problem: str | None) -> Callable[[], str | None]:
        def verify() -> str | None:
            ran.append(name)
            return problem
        return verify

    merged = merge_needs([RebootNeed("vm02", "image a -> b", check("image", "still on a")),
                          RebootNeed("vm01", "BIOS ProcSMT pending", check("bios", None)),
                          RebootNeed("vm02", "BIOS ProcSMT pending", check("bios2", "BIOS ProcSMT still pending")),
                          RebootNeed("vm02", "GPU driver 580")])
    assert [(n.host, n.why) for n in merged] == [
        ("vm01", "BIOS ProcSMT pending"), ("vm02", "image a -> b; BIOS ProcSMT pending; GPU driver 580")]
    assert merged[1].verify is not None
    assert merged[1].verify() == "still on a; BIOS ProcSMT still pending" and ran == ["image", "bios2"]
    assert merge_needs([RebootNeed("vm03", "x"), RebootNeed("vm03", "y")])[0].verify is None


def test_a_node_on_an_older_image_reboots_and_is_gated_by_its_new_image_report() -> None:
    """The need `bitten hardware rollout` makes of the provisioner's record: the node comes back on the new
    image (a), or on the old one, and stays drained with the reason (b)."""
    import ipaddress

    from bitten.provision.nodes import BootNode
    from bitten.provision.status import booted_image, image_reboots

    def boot_node(name: str) -> BootNode:
        return BootNode(name=name, fqdn=f"{name}.lab", mac="52:54:00:77:00:41", ip=ipaddress.IPv4Address("10.0.0.1"),
                        network=ipaddress.IPv4Network("10.0.0.0/24"), profile="bare", image="img", image_id="img-new",
                        deploy="stateless", disk=None, console=None, kernel_args=())

    nodes = {"a": boot_node("a"), "b": boot_node("b")}
    record: dict[str, Any] = {"nodes": {h: {"reports": {"up": {"image_id": "img-old"}}} for h in nodes}}
    changes = image_reboots(nodes, record)
    slurm = FakeSlurm({"a": Node(), "b": Node()})
    runner, _ran = rollout(slurm, wave_size=2, max_failures=5)

    def reboot_hook(argv: Sequence[str], timeout: float) -> Result:
        if argv[1] == "reboot" and argv[-1] == "a":  # a PXE-boots the new image and reports it; b never does
            record["nodes"]["a"]["reports"]["up"]["image_id"] = "img-new"
        return slurm(argv, timeout)

    runner.slurm = Scontrol(["scontrol"], runner=reboot_hook)
    result = runner.run([RebootNeed(c.host, c.why, booted_image(nodes[c.host], lambda: record, timeout=0,
                                                                sleep=lambda _s: None)) for c in changes])
    assert [(n.host, n.state) for n in result.nodes] == [("a", "done"), ("b", "failed")]
    reasons = [c[3] for c in slurm.calls if c[0] == "reboot"]
    assert reasons == ["reason=bitten: reboot: image img-old -> img-new"] * 2
    assert slurm.nodes["b"].reason == ("bitten: image img-old -> img-new: after the reboot: not on image img-new "
                                       "within 0 s: its last report names image img-old")


def stateless_rollout(slurm: FakeSlurm, fail: dict[str, str] | None = None, **settings: object
                      ) -> tuple[Rollout, list[list[str]], list[list[str]], list[tuple[str, float]]]:
    """A rollout whose stateless nodes (those of ``slurm`` marked so) are converged by a recording stand-in."""
    runner, ran = rollout(slurm, **settings)
    converged: list[list[str]] = []
    asked: list[tuple[str, float]] = []
    wall = iter(range(1000, 100_000))

    def booted_since(host: str, since: float) -> bool:
        asked.append((host, since))
        return slurm.nodes[host].reported_up

    def converge(hosts: list[str]) -> dict[str, str]:
        converged.append(list(hosts))
        for host in hosts:
            if host not in (fail or {}):
                slurm.nodes[host].converged = True
        return {h: e for h, e in (fail or {}).items() if h in hosts}

    runner.reconverge = Reconverge(hosts=frozenset(h for h, n in slurm.nodes.items() if n.stateless),
                                   booted_since=booted_since, run=converge, wall=lambda: float(next(wall)))
    return runner, ran, converged, asked


def test_a_stateless_node_is_converged_once_it_reported_up_and_only_then_gated() -> None:
    """A stateless node comes back from PXE with its identity only: Slurm cannot see it until the playbooks gave
    it munge and slurm.conf. The rollout converges it once it reported up after the reboot, then gates it."""
    slurm = FakeSlurm({"a": Node(stateless=True), "b": Node()})
    runner, ran, converged, asked = stateless_rollout(slurm, wave_size=2)
    result = runner.run([RebootNeed("a", "BIOS X pending"), RebootNeed("b", "BIOS X pending")])
    assert [(n.host, n.state) for n in result.nodes] == [("a", "done"), ("b", "done")], result.nodes
    assert converged == [["a"]], "only the stateless node is converged, once"
    # asked with the wall-clock time of its reboot request (reports from before it do not count)
    assert asked and {since for host, since in asked} == {1000.0} and {h for h, _ in asked} == {"a"}
    assert [job[-1] for job in ran] == ["/bin/true", "/bin/true"]
    assert slurm.reservations == {} and slurm.nodes["a"].state == "IDLE"


def test_a_stateless_node_whose_converge_fails_stays_drained_with_what_failed() -> None:
    slurm = FakeSlurm({"a": Node(stateless=True)})
    runner, ran, converged, _asked = stateless_rollout(
        slurm, fail={"a": "the converge (ansible-playbook) failed on it: 2 failed, 0 unreachable"})
    result = runner.run([RebootNeed("a", "image 1 -> 2")])
    assert result.nodes[0].state == "failed" and converged == [["a"]] and ran == [], "no gate without converge"
    assert slurm.nodes["a"].reason == ("bitten: image 1 -> 2: back after the reboot, but not converged: the "
                                       "converge (ansible-playbook) failed on it: 2 failed, 0 unreachable")
    assert "DRAIN" in slurm.nodes["a"].state and slurm.reservations == {}


def test_a_stateless_node_that_never_reports_up_times_out_saying_so() -> None:
    slurm = FakeSlurm({"a": Node(stateless=True)})
    runner, _ran, converged, _asked = stateless_rollout(slurm)
    runner.reconverge = Reconverge(hosts=frozenset({"a"}), booted_since=lambda _h, _t: False,
                                   run=lambda hosts: {})
    result = runner.run([RebootNeed("a", "BIOS X pending")])
    assert result.nodes[0].state == "failed" and converged == []
    assert result.nodes[0].detail.startswith("not back within 5 s of the reboot")
    assert "it did not report up to the provisioner" in result.nodes[0].detail


def test_a_node_slurm_set_down_while_away_is_resumed_once_it_answers_from_its_new_boot() -> None:
    """Restarted through its BMC, a (stateless, converged) node took longer than SlurmdTimeout to come back: Slurm
    keeps it DOWN+DRAIN with bitten's reason even though its slurmd answers. The rollout resumes it once (inside
    the reservation) and gates it; a node that never answers stays pending and fails on the timeout."""
    slurm = FakeSlurm({"a": Node(stateless=True, down_when_back=True), "b": Node(reboot_after=None)})

    def restart(host: str) -> None:
        node = slurm.nodes[host]
        node.state, node.rebooting = "DOWN+DRAIN+NOT_RESPONDING", 0

    runner, ran, converged, _asked = stateless_rollout(slurm, wave_size=2, max_failures=5)
    runner.rebooter = BmcReboot(restart)
    result = runner.run([RebootNeed("a", "BIOS X pending"), RebootNeed("b", "BIOS X pending")])
    assert [(n.host, n.state) for n in result.nodes] == [("a", "done"), ("b", "failed")], result.nodes
    assert converged == [["a"]] and [job[-1] for job in ran] == ["/bin/true"]
    resumes = [c for c in slurm.calls if c[:1] == ["update"] and "State=RESUME" in c]
    assert [c[1] for c in resumes] == ["NodeName=a"], "resumed once, and never the node that does not answer"
    assert slurm.nodes["a"].state == "IDLE" and "DRAIN" in slurm.nodes["b"].state and slurm.reservations == {}


def test_the_converge_command_gets_the_nodes_as_limit_and_its_recap_decides() -> None:
    recap = ("TASK [slurm : Cluster-wide files] ***\n"
             "fatal: [b]: FAILED! => changed=false\n"
             "  assertion: slurm_left_out | length == 0\n"
             "  msg: slurm.conf would change on b only\n"
             "PLAY RECAP *****\n"
             "a                          : ok=40   changed=12   unreachable=0    failed=0    skipped=3\n"
             "b                          : ok=7    changed=1    unreachable=0    failed=1    skipped=0\n"
             "c                          : ok=0    changed=0    unreachable=1    failed=0    skipped=0\n")
    calls: list[list[str]] = []

    def runner(argv: Sequence[str], timeout: float) -> Result:
        calls.append(list(argv))
        return Result(tuple(argv), 2, recap, "")

    converge = command_converge(["ansible-playbook", "-i", "inv", "site.yml"], 600, runner=runner)
    errors = converge(["a", "b", "c", "d"])
    assert calls == [["ansible-playbook", "-i", "inv", "site.yml", "--limit", "a,b,c,d"]]
    assert "a" not in errors
    assert errors["b"] == ("the converge (ansible-playbook) failed on it: 1 failed, 0 unreachable "
                          "(slurm.conf would change on b only)")
    assert errors["c"] == "the converge (ansible-playbook) failed on it: 0 failed, 1 unreachable"
    assert errors["d"].startswith("the converge (ansible-playbook) failed (exit 2)")

    def hung(argv: Sequence[str], timeout: float) -> Result:
        return Result(tuple(argv), None, "", "", timed_out=True)

    assert command_converge(["ansible-playbook"], 60, runner=hung)(["a"]) == {
        "a": "the converge (ansible-playbook) did not finish within 60 s"}
    missing = command_converge(["nope"], 60, runner=lambda argv, t: Result(tuple(argv), None, "", "nope: not found",
                                                                          missing=True))
    assert missing(["a"]) == {"a": "the converge could not start: nope: not found"}
