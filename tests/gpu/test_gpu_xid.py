from __future__ import annotations

from gpu_fixtures import fixture_text

from bitten.gpu.xid import parse_kernel_log


def test_journal_short_unix() -> None:
    events = parse_kernel_log(fixture_text("journal-k-xid.txt"))
    assert [(e.code, e.pci) for e in events] == [(13, "0000:43:00"), (43, "0000:43:00"), (63, "0000:61:00"),
                                                 (79, "0000:d1:00"), (154, "0000:d1:00")]
    fell = events[3]
    assert fell.timestamp == "1749725960.002195"
    assert fell.detail.endswith("GPU has fallen off the bus.")
    assert fell.is_critical() and fell.meaning == "GPU has fallen off the bus"
    # application faults end a job, not a node; a remap event alone needs no drain (pending remap is checked)
    assert not any(e.is_critical() for e in events[:3])
    assert events[4].is_critical()  # recovery action changed to "Node Reboot Required"


def test_recovery_action_back_to_none_is_not_critical() -> None:
    events = parse_kernel_log(fixture_text("journal-k-iso-clear.txt"))
    assert [e.code for e in events] == [31, 154]
    assert events[1].timestamp == "2025-06-12T11:50:03+0200"
    assert not any(e.is_critical() for e in events)


def test_legacy_dmesg_without_pci_prefix() -> None:
    events = parse_kernel_log(fixture_text("dmesg-xid-legacy.txt"))
    assert [(e.code, e.pci, e.timestamp) for e in events] == [(31, "0000:01:00", "966.503025"),
                                                              (48, "0000:01:00", "4909.922970")]
    assert events[1].is_critical()


def test_site_defined_codes() -> None:
    event = parse_kernel_log(fixture_text("journal-k-xid.txt"))[0]
    assert event.code == 13
    assert event.is_critical(frozenset({13}))
    assert not parse_kernel_log(fixture_text("journal-k-xid.txt"))[3].is_critical(frozenset({13}))
