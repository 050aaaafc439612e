from __future__ import annotations

import pytest
from gpu_fixtures import fixture_text

from bitten.gpu.smi import SmiParseError, matches_type, normalize_pci, parse_list, parse_query


def test_list_parses_index_name_uuid() -> None:
    gpus = parse_list(fixture_text("smi-L-b200x8.txt"))
    assert [g.index for g in gpus] == list(range(8))
    assert {g.name for g in gpus} == {"NVIDIA B200"}
    assert gpus[6].uuid == "GPU-5a4b3c2d-1e0f-9a8b-7c6d-5e4f3a2b1c06"


def test_list_skips_mig_lines_and_rejects_garbage() -> None:
    text = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n"
            "  MIG 3g.40gb     Device  0: (UUID: MIG-aaaa)\n"
            "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2)\n")
    assert [g.uuid for g in parse_list(text)] == ["GPU-1", "GPU-2"]
    with pytest.raises(SmiParseError, match="line 1"):
        parse_list("No devices were found\n")


def test_query_healthy_b200_board() -> None:
    report = parse_query(fixture_text("smi-q-b200x8.xml"))
    assert report.driver_version == "580.82.07"
    assert report.cuda_version == "13.0"
    assert report.attached_gpus == 8
    assert len(report.gpus) == 8
    first = report.gpus[0]
    assert first.bus_id == "00000000:1B:00.0"
    assert first.pci == "0000:1b:00"
    assert first.name == "NVIDIA B200"
    assert first.architecture == "Blackwell"
    assert first.persistence_mode is True
    assert first.ecc_enabled is True
    assert first.volatile_uncorrectable == 0
    assert first.remap_pending is False
    assert first.reset_required is False
    assert (first.fabric_state, first.fabric_status) == ("Completed", "Success")
    assert first.recovery_action == "None"
    # N/A values are unknown, not zero
    assert first.retirement_pending is None


def test_query_faulty_board() -> None:
    gpus = parse_query(fixture_text("smi-q-b200x8-faulty.xml")).gpus
    assert gpus[3].volatile_uncorrectable == 2
    assert gpus[3].remap_pending is True
    assert gpus[3].reset_required is True
    assert gpus[5].fabric_state == "In Progress"
    assert gpus[5].fabric_status is None


def test_query_older_driver_without_recovery_action() -> None:
    report = parse_query(fixture_text("smi-q-h100pcie-550.xml"))
    assert report.driver_version == "550.163.01"
    assert report.gpus[0].recovery_action is None
    assert report.gpus[0].fabric_state is None


def test_query_legacy_double_bit_counters() -> None:
    xml = ("<nvidia_smi_log><driver_version>470.256.02</driver_version><attached_gpus>1</attached_gpus>"
           "<gpu id=\"00000000:3B:00.0\"><product_name>Tesla V100-SXM2-32GB</product_name><ecc_errors><volatile>"
           "<single_bit><total>4</total></single_bit><double_bit><total>1</total></double_bit></volatile>"
           "</ecc_errors></gpu></nvidia_smi_log>")
    assert parse_query(xml).gpus[0].volatile_uncorrectable == 1


def test_query_rejects_non_xml_and_wrong_root() -> None:
    with pytest.raises(SmiParseError, match="no valid XML"):
        parse_query("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    with pytest.raises(SmiParseError, match="nvidia_smi_log"):
        parse_query("<nvidia_smi_unit_log/>")


def test_normalize_pci_forms() -> None:
    assert normalize_pci("00000000:1B:00.0") == "0000:1b:00"
    assert normalize_pci("PCI:0000:d1:00") == "0000:d1:00"
    assert normalize_pci("01:00.0") == "0000:01:00"


@pytest.mark.parametrize(("name", "gres", "expected"), [
    ("NVIDIA B200", "b200", True),
    ("NVIDIA H100 80GB HBM3", "h100", True),
    ("NVIDIA H100 80GB HBM3", "b200", False),
    ("NVIDIA H200", "h100", False),
])
def test_matches_type(name: str, gres: str, expected: bool) -> None:
    assert matches_type(name, gres) is expected
