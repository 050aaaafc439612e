"""The plan between desired and observed state: pure rules, no BMC."""

from __future__ import annotations

import pytest

from bitten.hardware.plan import DesiredBmcState, Media, Observed, Options, make_plan, same_value
from bitten.site.model import Boot

BIOS = {"ProcSMT": "Enabled", "WorkloadProfile": "GeneralPowerEfficientCompute", "NetworkBootRetryCount": 20}
RESETS = ("ForceOff", "ForceRestart", "GracefulShutdown", "On")


def observed(**kw: object) -> Observed:
    values: dict[str, object] = {"power": "Off", "bios": dict(BIOS), "boot_target": "None",
                                 "boot_enabled": "Disabled", "boot_targets": ("None", "Pxe", "Cd", "Hdd"),
                                 "reset_types": RESETS}
    values.update(kw)
    return Observed(**values)  # type: ignore[arg-type]


def test_off_node_gets_bios_boot_once_and_power_on() -> None:
    plan = make_plan("n1", DesiredBmcState(bios={"ProcSMT": "Disabled"}), observed())
    assert [(c.area, c.item, c.current, c.desired) for c in plan.changes] == [
        ("bios", "ProcSMT", "Enabled", "Disabled"),
        ("power", "state", "Off", "On"),
        ("boot", "override", "None/Disabled", "Pxe/Once"),
    ]
    assert plan.reset_type == "On"
    assert not plan.problems


def test_running_node_in_desired_state_plans_nothing() -> None:
    plan = make_plan("n1", DesiredBmcState(bios={"ProcSMT": "Enabled"}), observed(power="On"))
    assert not plan.changed
    assert plan.reset_type is None
    assert any("one-time boot" in n for n in plan.notes)


def test_pending_value_is_reported_not_changed() -> None:
    plan = make_plan("n1", DesiredBmcState(bios={"ProcSMT": "Disabled"}),
                     observed(power="On", bios_pending={"ProcSMT": "Disabled"}))
    assert not plan.changed
    assert plan.pending == {"ProcSMT": "Disabled"}
    assert "pending until the next reboot" in "\n".join(plan.lines())


def test_other_pending_value_is_overwritten() -> None:
    plan = make_plan("n1", DesiredBmcState(bios={"ProcSMT": "Enabled"}),
                     observed(power="On", bios_pending={"ProcSMT": "Disabled"}))
    assert [(c.item, c.desired) for c in plan.of("bios")] == [("ProcSMT", "Enabled")]
    assert "was pending" in plan.of("bios")[0].note


def test_reboot_restarts_a_running_node_with_bios_waiting() -> None:
    plan = make_plan("n1", DesiredBmcState(bios={"ProcSMT": "Disabled"}), observed(power="On"), Options(reboot=True))
    assert plan.reset_type == "ForceRestart"
    assert plan.of("boot"), "a restart by bitten goes through the one-time boot"
    no_reboot = make_plan("n1", DesiredBmcState(bios={"ProcSMT": "Disabled"}), observed(power="On"))
    assert no_reboot.reset_type is None and not no_reboot.of("boot")
    assert any("next reboot" in n for n in no_reboot.notes)


def test_power_off_prefers_graceful_shutdown() -> None:
    plan = make_plan("n1", DesiredBmcState(power="Off"), observed(power="On"))
    assert plan.reset_type == "GracefulShutdown"
    forced = make_plan("n1", DesiredBmcState(power="Off"), observed(power="On", reset_types=("On", "ForceOff")))
    assert forced.reset_type == "ForceOff"
    assert not plan.of("boot"), "a node that stays off needs no boot override"


def test_unknown_bios_attribute_is_a_problem_with_a_suggestion() -> None:
    plan = make_plan("n1", DesiredBmcState(bios={"ProcSMTT": "Disabled"}), observed())
    assert plan.problems and "ProcSMTT" in plan.problems[0] and "did you mean ProcSMT" in plan.problems[0]


def test_boot_mac_must_be_reported_by_the_bmc() -> None:
    desired = DesiredBmcState(boot_mac="02:00:00:00:00:01")
    assert make_plan("n1", desired, observed(macs=("02:00:00:00:00:01",))).problems == ()
    wrong = make_plan("n1", desired, observed(macs=("02:00:00:00:00:99",)))
    assert "may point at another node" in wrong.problems[0]
    assert make_plan("n1", desired, observed(macs=("02:00:00:00:00:99",)), Options(check_boot_mac=False)).problems == ()


def test_cd_boot_inserts_media_unless_it_is_there() -> None:
    desired = DesiredBmcState(boot=Boot(target="Cd", image_url="http://10.0.0.1/os.iso"))
    empty = Media("/redfish/v1/Managers/1/VirtualMedia/2/", None, False)
    plan = make_plan("n1", desired, observed(media=empty))
    assert [c.area for c in plan.changes] == ["power", "media", "boot"]
    there = Media(empty.path, "http://10.0.0.1/os.iso", True)
    assert not make_plan("n1", desired, observed(media=there)).of("media")
    assert "does not offer" in make_plan("n1", desired, observed(media=None, media_supported=False)).problems[0]


def test_boot_target_the_bmc_does_not_allow() -> None:
    plan = make_plan("n1", DesiredBmcState(boot=Boot(target="Hdd")), observed(boot_targets=("None", "Pxe")))
    assert "not one the BMC allows" in plan.problems[0]


def test_boot_target_none_never_touches_boot() -> None:
    plan = make_plan("n1", DesiredBmcState(boot=Boot(target="None")), observed())
    assert not plan.of("boot") and plan.of("power")


def test_bmc_without_bios() -> None:
    plan = make_plan("n1", DesiredBmcState(bios={"X": 1}), observed(bios=None, bios_supported=False))
    assert "no BIOS resource" in plan.problems[0]


@pytest.mark.parametrize(("current", "desired", "same"), [
    ("Enabled", "Enabled", True), ("Enabled", "enabled", False), (20, "20", True), (20, 21, False),
    (True, "true", True), (False, True, False), ("20", 20, True),
])
def test_value_comparison(current: object, desired: object, same: bool) -> None:
    assert same_value(current, desired) is same
