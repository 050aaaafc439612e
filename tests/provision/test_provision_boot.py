"""The boot stage's decisions, against a scripted provisioner and BMC (the real ones run in test_provision_vms)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bitten.provision.boot import BmcView, wait_for_boot
from bitten.provision.nodes import BootNode


def node(deploy: str = "stateless") -> BootNode:
    return BootNode(name="vm01", fqdn="vm01.lab", mac="52:54:00:77:00:41", ip=ipaddress.IPv4Address("10.77.0.41"),
                    network=ipaddress.IPv4Network("10.77.0.0/24"), profile="lab_bare", image="img",
                    image_id="img-aaa", deploy=deploy, disk="/dev/vda" if deploy == "disk" else None, console=None,
                    kernel_args=())


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Provisioner:
    """A scripted /status: events appear at given times (the provisioner's clock is the controller's)."""

    clock: Clock
    leases: list[tuple[float, str]] = field(default_factory=list)
    reports: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self) -> Mapping[str, Any]:
        now = self.clock()
        seen: dict[str, Any] = {}
        for at, state, extra in self.reports:
            if at <= now:
                seen[state] = {"received_at": at, "state": state, **extra}
                seen["last"] = seen[state]
        return {"time": now, "nodes": {"vm01": {
            "leases": [{"at": at, "ip": ip, "mac": "52:54:00:77:00:41"} for at, ip in self.leases if at <= now],
            "reports": seen}}, "unknown_macs": {}}


@dataclass
class FakeBmc:
    power: str = "On"
    switched: list[str] = field(default_factory=list)
    target_after: str = "Hdd"

    def view(self) -> BmcView:
        return BmcView(power=self.power, boot_target="Pxe", boot_enabled="Continuous")

    def boot_from_disk(self) -> BmcView:
        self.switched.append("Hdd+ForceRestart")
        return BmcView(power="On", boot_target=self.target_after, boot_enabled="Continuous")


UP = {"image_id": "img-aaa", "deploy": "stateless", "root": "rootfs (rootfs)"}


def test_a_stateless_node_is_up_when_its_report_arrives_after_power_on() -> None:
    clock = Clock()
    prov = Provisioner(clock, leases=[(1005.0, "10.77.0.41")],
                       reports=[(900.0, "up", UP), (1040.0, "up", UP)])  # the one at 900 is a previous boot
    result = wait_for_boot(node(), prov, FakeBmc(), since=1000.0, timeout=300, clock=clock, sleep=clock.sleep)
    assert result.ok and result.state == "up" and not result.changed
    assert (result.lease_ip, result.seconds_to_lease, result.seconds_to_up) == ("10.77.0.41", 5.0, 40.0)
    assert result.image_id == "img-aaa" and result.pending_reboot is None


def test_a_running_node_counts_its_latest_report() -> None:
    clock = Clock()
    prov = Provisioner(clock, reports=[(900.0, "up", UP)])
    result = wait_for_boot(node(), prov, FakeBmc(), since=None, timeout=30, clock=clock, sleep=clock.sleep)
    assert result.ok and clock.now == 1000.0


def test_a_node_the_bmc_says_is_off_is_not_up_on_an_old_report() -> None:
    clock = Clock()
    prov = Provisioner(clock, reports=[(900.0, "up", UP)])
    result = wait_for_boot(node(), prov, FakeBmc(power="Off"), since=None, timeout=30, clock=clock,
                           sleep=clock.sleep)
    assert not result.ok and "powered off" in str(result.problem)


def test_another_image_is_a_pending_reboot_not_a_failure() -> None:
    clock = Clock()
    prov = Provisioner(clock, reports=[(1010.0, "up", {**UP, "image_id": "img-old"})])
    result = wait_for_boot(node(), prov, FakeBmc(), since=1000.0, timeout=60, clock=clock, sleep=clock.sleep)
    assert result.ok and result.pending_reboot == "image img-old -> img-aaa"


def test_a_node_that_never_asks_for_dhcp() -> None:
    clock = Clock()
    bmc = FakeBmc()
    result = wait_for_boot(node(), Provisioner(clock), bmc, since=1000.0, timeout=120, clock=clock,
                           sleep=clock.sleep)
    assert not result.ok and clock.now >= 1120.0
    assert "never asked for DHCP within 120 s: no lease for 52:54:00:77:00:41" in str(result.problem)
    assert result.bmc is not None and "BootProgress not reported by the BMC" in result.bmc.describe()


def test_a_node_with_a_lease_that_never_reports() -> None:
    clock = Clock()
    prov = Provisioner(clock, leases=[(1003.0, "10.77.0.41")])
    result = wait_for_boot(node(), prov, FakeBmc(), since=1000.0, timeout=60, clock=clock, sleep=clock.sleep)
    assert not result.ok
    assert result.problem == "got its lease (10.77.0.41) but never reported up within 60 s (last report: none)"


def test_a_node_that_reports_failure_fails_at_once() -> None:
    clock = Clock()
    prov = Provisioner(clock, reports=[(1030.0, "failed", {"message": "deploy to /dev/vda: no such disk"})])
    result = wait_for_boot(node("disk"), prov, FakeBmc(), since=1000.0, timeout=600, clock=clock, sleep=clock.sleep)
    assert not result.ok and "no such disk" in str(result.problem) and clock.now < 1040


def test_a_disk_node_is_switched_to_its_disk_after_the_deploy() -> None:
    clock = Clock()
    bmc = FakeBmc()
    disk_up = {"image_id": "img-aaa", "deploy": "disk", "root": "/dev/vda2 (ext4)"}
    prov = Provisioner(clock, leases=[(1004.0, "10.77.0.41")],
                       reports=[(1060.0, "deployed", {"image_id": "img-aaa"}), (1150.0, "up", disk_up)])
    result = wait_for_boot(node("disk"), prov, bmc, since=1000.0, timeout=600, clock=clock, sleep=clock.sleep)
    assert result.ok and result.changed and bmc.switched == ["Hdd+ForceRestart"]
    assert result.root == "/dev/vda2 (ext4)" and result.deployed_at == 1060.0 and result.seconds_to_up == 150.0
    assert result.steps == ["image img-aaa written to /dev/vda", "boot target Hdd through the BMC; restarted"]


def test_a_disk_node_whose_bmc_keeps_pxe_is_not_restarted_blindly() -> None:
    clock = Clock()
    bmc = FakeBmc(target_after="Pxe")
    prov = Provisioner(clock, reports=[(1060.0, "deployed", {"image_id": "img-aaa"})])
    result = wait_for_boot(node("disk"), prov, bmc, since=1000.0, timeout=600, clock=clock, sleep=clock.sleep)
    assert not result.ok and "could not boot it from its disk" in str(result.problem)
    assert bmc.switched == ["Hdd+ForceRestart"]


def test_a_deployed_disk_node_that_is_up_from_its_disk_changes_nothing() -> None:
    clock = Clock()
    bmc = FakeBmc()
    prov = Provisioner(clock, reports=[(900.0, "deployed", {}), (950.0, "up", {**UP, "deploy": "disk"})])
    result = wait_for_boot(node("disk"), prov, bmc, since=None, timeout=60, clock=clock, sleep=clock.sleep)
    assert result.ok and not result.changed and bmc.switched == []


def test_a_node_on_an_older_image_is_a_pending_reboot_in_the_status() -> None:
    from bitten.provision.status import node_states, pending_reboots

    record = {"nodes": {"vm01": {"leases": [{"ip": "10.77.0.41", "at": 5.0}],
                                 "reports": {"up": {"image_id": "img-old", "received_at": 9.0, "root": "rootfs"},
                                             "last": {"state": "up", "received_at": 9.0}}}}}
    assert pending_reboots({"vm01": node()}, record) == {
        "vm01": "image img-old -> img-aaa"}
    [state] = node_states({"vm01": node()}, {"nodes": {}})
    assert (state.lease, state.last_report, state.pending_reboot) == (None, None, None)


def test_a_node_on_an_older_image_is_an_image_reboot_and_a_disk_node_a_redeploy() -> None:
    from bitten.provision.status import image_reboots

    def up(image: str) -> dict[str, Any]:
        return {"reports": {"up": {"image_id": image, "received_at": 9.0}}}

    disk = BootNode(**{**node("disk").__dict__, "name": "vm02"})
    fresh = BootNode(**{**node().__dict__, "name": "vm03"})
    silent = BootNode(**{**node().__dict__, "name": "vm04"})
    record = {"nodes": {"vm01": up("img-old"), "vm02": up("img-old"), "vm03": up("img-aaa"), "vm04": {}}}
    changes = image_reboots({"vm04": silent, "vm03": fresh, "vm02": disk, "vm01": node()}, record)
    assert [(c.host, c.why, c.by_reboot) for c in changes] == [
        ("vm01", "image img-old -> img-aaa", True), ("vm02", "image img-old -> img-aaa", False)]


def test_the_check_after_an_image_reboot_waits_for_the_new_image_report() -> None:
    from bitten.provision.status import booted_image

    clock = Clock()
    prov = Provisioner(clock, reports=[(900.0, "up", {"image_id": "img-old"}), (1030.0, "up", {"image_id": "img-aaa"})])
    assert booted_image(node(), prov, timeout=120, poll=5, clock=clock, sleep=clock.sleep)() is None
    assert clock() == 1030.0

    clock = Clock()
    prov = Provisioner(clock, reports=[(900.0, "up", {"image_id": "img-old"})])
    problem = booted_image(node(), prov, timeout=60, poll=5, clock=clock, sleep=clock.sleep)()
    assert problem == "not on image img-aaa within 60 s: its last report names image img-old"

    def down() -> Mapping[str, Any]:
        raise OSError("connection refused")

    problem = booted_image(node(), down, timeout=10, poll=5, clock=clock, sleep=clock.sleep)()
    assert problem == ("not on image img-aaa within 10 s: the provisioner's status could not be read: "
                       "connection refused")


def test_a_rebooted_node_counts_as_up_only_on_a_report_after_its_reboot() -> None:
    from bitten.provision.status import reported_up_since

    clock = Clock()
    prov = Provisioner(clock, reports=[(900.0, "up", UP), (1040.0, "up", UP)])
    booted_since = reported_up_since(prov, clock=clock)
    assert not booted_since("vm01", 1000.0)  # the report it has is the one before the reboot
    clock.now = 1040.0
    assert booted_since("vm01", 1000.0)
    assert not booted_since("vm02", 1000.0)  # a node the provisioner has no record of

    # the provisioner's clock runs 100 s ahead of this machine's: its report times are taken as its own
    ahead = Clock(1140.0)
    prov = Provisioner(ahead, reports=[(1100.0, "up", UP)])
    assert not reported_up_since(prov, clock=lambda: ahead() - 100.0)("vm01", 1010.0)
    assert reported_up_since(prov, clock=lambda: ahead() - 100.0)("vm01", 990.0)

    def down() -> Mapping[str, Any]:
        raise OSError("connection refused")

    assert not reported_up_since(down, clock=clock)("vm01", 0.0)  # unread is not up
