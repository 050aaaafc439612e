"""The rollout's decisions, against a scripted scontrol (the real cluster is tests/hardware/test_rolling_reboot.py):
nodes it must leave alone, a node that never comes back, a check that fails after the reboot, a wave that stops
the rest, a prepare that fails, and the reservation always removed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bitten.core.process import Result
from bitten.core.scontrol import Scontrol
from bitten.hardware.rollout import JobResult, RebootNeed, Rollout, gate_command, waves_of
from bitten.site.model import RolloutSettings


@dataclass
class Node:
    state: str = "IDLE"
    boot: str = "2026-01-01T00:00:00"
    reason: str = ""
    #: polls until a requested reboot completes; None: it never comes back
    reboot_after: int | None = 1
    rebooting: int = -1


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
                    node.state, node.reason = node.state.split("+")[0], ""
        return Result(tuple(argv), 0, out, "")

    def _tick(self, name: str, node: Node) -> None:
        if node.rebooting < 0:
            return
        node.rebooting += 1
        if node.reboot_after is None:
            node.state = "DOWN+DRAIN+REBOOT_ISSUED+NOT_RESPONDING"
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
