"""The BMC's side of a rollout (bitten.hardware.rollout): which nodes need a reboot and why, what to stage before
it, how to check afterwards that it took, and a restart through the BMC.

- ``reboot_needs(plans, targets, settings)``: a RebootNeed for every node whose plan shows BIOS values pending (or
  about to be written) or firmware to install; its ``verify()`` reads the BMC again after the reboot: every desired
  BIOS value current and none pending, every firmware component at the baseline's version.
- ``Stager``: the rollout's ``prepare``: for a wave's nodes, the BIOS changes written to the BMC (pending until
  the reboot) and SimpleUpdate of each drifted firmware component (bitten.hardware.firmware); a node whose
  changes could not be written is not rebooted.
- ``bmc_restart(targets, settings)``: a ForceRestart (GracefulRestart where that is all the system allows) through
  the node's BMC, waiting for PowerState On: ``BmcReboot``'s restart, for nodes without a RebootProgram and for
  virtual nodes behind sushy-tools' libvirt driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bitten.core.redfish.connection import Connection
from bitten.core.redfish.errors import RedfishError
from bitten.hardware.firmware import drift, read_components, update
from bitten.hardware.fleet import NodeResult, Settings, Target, run_node
from bitten.hardware.node import BmcNode
from bitten.hardware.plan import Options, same_value
from bitten.hardware.rollout import RebootNeed


def _connect(target: Target, settings: Settings) -> Connection:
    return Connection(target.endpoint, target.credentials, settings.tls, settings.timeouts, settings.retry,
                      settings.limits)


def verify_after_reboot(target: Target, settings: Settings, bios: Sequence[str], firmware: bool) -> str | None:
    """None when the BMC reports the desired BIOS values current (none pending) and the firmware baseline."""
    problems: list[str] = []
    try:
        with _connect(target, settings) as conn:
            node = BmcNode(conn)
            if bios:
                observed = node.observe(target.desired, Options(check_boot_mac=False))
                current = observed.bios or {}
                wrong = [k for k in bios if not same_value(current.get(k), target.desired.bios[k])]
                pending = [k for k in bios if k in observed.bios_pending]
                if wrong:
                    problems.append(f"BIOS {', '.join(wrong)} not as desired")
                if pending:
                    problems.append(f"BIOS {', '.join(pending)} still pending")
            if firmware and target.desired.firmware:
                left = drift(target.desired.firmware, read_components(conn, target.endpoint.system_path),
                             target.desired.firmware_repository)
                problems += [str(d) for d in left]
    except RedfishError as exc:
        return f"the BMC could not be read: {exc.message}"
    return "; ".join(problems) or None


def reboot_needs(plans: Sequence[NodeResult], targets: Sequence[Target], settings: Settings,
                 firmware: bool = False, extra: Mapping[str, str] | None = None) -> list[RebootNeed]:
    """RebootNeeds of the planned nodes: pending BIOS, firmware to install (with ``firmware``), and ``extra``
    (host -> why: a new image, a new driver) for nodes bitten cannot see it on."""
    by_host = {t.host: t for t in targets}
    extra = dict(extra or {})
    needs: list[RebootNeed] = []
    for result in sorted(plans, key=lambda r: r.host):
        target = by_host.get(result.host)
        if target is None or not result.ok:
            continue
        # the BMC's own reasons (what other layers found, also_reboot, come with their own needs)
        whys = [w for w in result.reboot
                if w not in result.also_reboot and (firmware or not w.startswith("firmware "))]
        if result.host in extra:
            whys.append(extra.pop(result.host))
        if not whys:
            continue
        bios = [k for k in target.desired.bios
                if k in (result.pending or {}) or (result.plan is not None and k in result.plan.pending)
                or (result.plan is not None and any(c.item == k for c in result.plan.of("bios")))]
        verify_firmware = firmware and bool(result.firmware)

        def check(target: Target = target, bios: list[str] = bios, verify_firmware: bool = verify_firmware
                  ) -> str | None:
            return verify_after_reboot(target, settings, bios, verify_firmware)

        needs.append(RebootNeed(result.host, "; ".join(whys), check if (bios or verify_firmware) else None))
    for host, why in sorted(extra.items()):
        needs.append(RebootNeed(host, why))
    return needs


@dataclass
class Stager:
    """The rollout's ``prepare``: before a wave's reboots, write each node's BIOS changes to its BMC (they wait
    there for the reboot; a running node is not powered or restarted by this) and, with ``firmware``, stage its
    firmware updates. A node whose changes could not be written is not rebooted."""

    targets: Mapping[str, Target]
    settings: Settings
    firmware: bool = False
    timeout: float = 1800.0
    poll: float = 2.0
    #: host -> what was done, for the report
    done: dict[str, list[str]] = field(default_factory=dict)

    def __call__(self, hosts: list[str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for host in hosts:
            target = self.targets.get(host)
            if target is None:
                continue
            done: list[str] = []
            if target.desired.bios:
                applied = run_node(target, "apply", Options(reboot=False), self.settings)
                if not applied.ok:
                    errors[host] = f"BIOS: {applied.error}"
                    continue
                written = [c.item for c in applied.plan.of("bios")] if applied.plan else []
                if written:
                    done.append(f"BIOS {', '.join(written)} written")
            if self.firmware and target.desired.firmware:
                try:
                    with _connect(target, self.settings) as conn:
                        drifts = drift(target.desired.firmware, read_components(conn, target.endpoint.system_path),
                                       target.desired.firmware_repository)
                        result = update(conn, drifts, target.endpoint.system_path, self.timeout, self.poll)
                except (RedfishError, ValueError) as exc:
                    errors[host] = f"firmware: {exc}"
                    continue
                done += [f"{o.drift.label} {o.drift.expected}: {o.state}" for o in result.outcomes]
                if result.failed:
                    errors[host] = "firmware: " + "; ".join(f"{o.drift.label}: {o.message}" for o in result.failed)
            self.done[host] = done
        return errors


def bmc_restart(targets: Mapping[str, Target], settings: Settings) -> Callable[[str], None]:
    """A restart through the node's BMC that returns when PowerState is On (raises RedfishError otherwise)."""

    def restart(host: str) -> None:
        target = targets[host]
        with _connect(target, settings) as conn:
            node = BmcNode(conn)
            allowed = node.reset_types(node.system(refresh=True))
            reset = next((r for r in ("ForceRestart", "GracefulRestart", "PowerCycle") if r in allowed),
                         "ForceRestart")
            node.reset(reset)
            node.wait_power("On", reset)

    return restart
