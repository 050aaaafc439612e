"""GPU power and energy from dcgm-exporter's /metrics (bitten.energy.gpupower): the exporter's text format as NVIDIA
documents it, served over real HTTP; garbage, missing GPUs, a broken node and staleness."""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitten.cooling.ledger import Ledger
from bitten.energy.gpupower import ENERGY, POWER, ExporterError, GpuPowerPoller, fetch, parse
from bitten.lab.httpserve import base_url, in_thread

LABELS = 'UUID="GPU-5fd8c5d6-{i:04x}",device="nvidia{i}",modelName="NVIDIA B200",Hostname="{host}",' \
         'pci_bus_id="00000000:{bus:02X}:00.0"'


def page(host: str, power: list[float | str], energy_mj: list[float | str] | None = None) -> str:
    """dcgm-exporter's answer for one node (its HELP/TYPE lines; one sample per GPU, label gpu = the index)."""
    lines = ["# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).", "# TYPE DCGM_FI_DEV_GPU_TEMP gauge"]
    lines += [f'DCGM_FI_DEV_GPU_TEMP{{gpu="{i}",{LABELS.format(i=i, host=host, bus=0x18 + i)}}} 41'
              for i in range(len(power))]
    lines += [f"# HELP {POWER} Power draw (in W).", f"# TYPE {POWER} gauge"]
    lines += [f'{POWER}{{gpu="{i}",{LABELS.format(i=i, host=host, bus=0x18 + i)}}} {w}' for i, w in enumerate(power)]
    if energy_mj is not None:
        lines += [f"# HELP {ENERGY} Total energy consumption since boot (in mJ).", f"# TYPE {ENERGY} counter"]
        lines += [f'{ENERGY}{{gpu="{i}",{LABELS.format(i=i, host=host, bus=0x18 + i)}}} {e}'
                  for i, e in enumerate(energy_mj)]
    return "\n".join(lines) + "\n"


def test_the_exporters_page_gives_each_gpus_power_and_energy() -> None:
    r = parse(page("gpu01", [412.5, 388.0], [8.1e9, 7.9e9]), "gpu01", 1000.0, 100.0)
    assert r.power_w == {"0": 412.5, "1": 388.0} and r.total_w == 800.5
    assert r.total_kwh == pytest.approx(16.0e9 / 3.6e9)
    assert r.garbage == []


def test_garbage_is_counted_and_a_partial_node_gives_no_total() -> None:
    r = parse(page("gpu01", [412.5, "NaN", 1e6, -3], [8e9, 8e9, 8e9, "+Inf"]), "gpu01", 1000.0, 0.0)
    assert sorted(r.garbage) == sorted([f"gpu 1 {POWER}=nan", f"gpu 2 {POWER}=1e+06", f"gpu 3 {POWER}=-3",
                                        f"gpu 3 {ENERGY}=inf"])
    # three GPUs' power and three counters of four: a sum over some GPUs would understate the node
    assert r.total_w is None and r.total_kwh is None


@pytest.mark.parametrize("text, message", [
    ("<html>503 Service Unavailable</html>", "not Prometheus text format|neither"),
    ("# TYPE DCGM_FI_DEV_GPU_TEMP gauge\nDCGM_FI_DEV_GPU_TEMP{gpu=\"0\"} 40\n", "neither"),
    (f"{POWER} 400\n", "without a gpu label"),
])
def test_an_answer_that_is_not_the_exporters_fails_the_poll(text: str, message: str) -> None:
    with pytest.raises(ExporterError, match=message):
        parse(text, "gpu01", 1000.0, 0.0)


@pytest.fixture
def exporters() -> Iterator[dict[str, str]]:
    """Two nodes' exporters on loopback (their pages set by the test) and a third that answers 500."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host = self.path.strip("/").split("/")[0]
            body = pages.get(host)
            self.send_response(200 if body is not None else 500)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write((body or "exporter failed").encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    in_thread(server)
    url = base_url(server)
    yield {"gpu01": f"{url}/gpu01/metrics", "gpu02": f"{url}/gpu02/metrics", "gpu03": f"{url}/gpu03/metrics",
           "_pages": pages}  # type: ignore[dict-item]
    server.shutdown()


def test_the_poller_records_each_nodes_gpu_energy_with_provenance(exporters: dict[str, str],
                                                                  tmp_path: Path) -> None:
    pages: dict[str, str] = exporters.pop("_pages")  # type: ignore[assignment]
    clock = [1000.0]
    ledger = Ledger(tmp_path / "nodes.sqlite")
    poller = GpuPowerPoller(exporters, ledger, max_w={n: 1000.0 for n in exporters}, stale_after_s=60,
                            clock=lambda: clock[0])
    # gpu01 has energy counters, gpu02 power only (an exporter without the counter field), gpu03 answers 500
    pages["gpu01"] = page("gpu01", [400.0, 400.0], [0.0, 0.0])
    pages["gpu02"] = page("gpu02", [500.0, 300.0])
    poller.poll()
    clock[0] += 30
    pages["gpu01"] = page("gpu01", [400.0, 400.0], [400.0 * 30e3, 400.0 * 30e3])  # 30 s at 400 W each, in mJ
    poller.poll()
    total = ledger.total("gpu_energy", 1000.0, 1030.0, source="gpu01")
    assert total.value == pytest.approx(800 * 30 / 3.6e6)
    assert ledger.total("gpu_energy", 1000.0, 1030.0, source="gpu02").value == pytest.approx(800 * 30 / 3.6e6)
    assert ledger.provenance("gpu_energy") == {
        "gpu01": f"dcgm-exporter {exporters['gpu01']} {ENERGY} (sum of 2 GPUs)",
        "gpu02": f"dcgm-exporter {exporters['gpu02']} {POWER} (sum of 2 GPUs)"}
    assert poller.nodes["gpu03"].errors_total == 2 and "500" in poller.nodes["gpu03"].last_error
    # a counter step no two GPUs could make in 30 s (2 x 1000 W): a gap in the ledger, not energy
    clock[0] += 30
    pages["gpu01"] = page("gpu01", [400.0, 400.0], [1e12, 1e12])
    poller.poll()
    jump = ledger.total("gpu_energy", 1030.0, 1060.0, source="gpu01")
    assert jump.value is None and jump.gaps
    assert poller.alarms() == {}
    # gpu01 turns to garbage: nothing recorded for it, and after stale_after_s an alarm (gpu03 never answered)
    pages["gpu01"] = page("gpu01", ["NaN", 400.0], ["NaN", 1.0])
    clock[0] += 61
    poller.poll()
    alarms = poller.alarms()
    assert set(alarms) == {"gpu01", "gpu03"}
    assert "no good reading for 61 s" in alarms["gpu01"] and "never answered" in alarms["gpu03"]
    missing = ledger.total("gpu_energy", 1060.0, 1121.0, source="gpu01")
    assert missing.value is None and missing.covered_s == 0  # missing, never a guess
    poller.close()


def test_fetch_refuses_an_answer_too_large_to_be_the_exporters(exporters: dict[str, str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pages: dict[str, str] = exporters.pop("_pages")  # type: ignore[assignment]
    pages["gpu01"] = "x" * 2048
    monkeypatch.setattr("bitten.energy.gpupower.MAX_BYTES", 1024)
    with pytest.raises(ExporterError, match="larger than 1024 bytes"):
        fetch(exporters["gpu01"], 5.0)


def test_the_reference_sites_controller_polls_each_gpu_nodes_exporter() -> None:
    """bitten_energy.gpu_power in inventory/bitten: every XD685 (8 B200 each) at its address, port 9400; the CPU
    nodes have no GPU to ask about."""
    from bitten.capabilities import load_site
    from bitten.energy.config import from_site

    from conftest import ROOT

    site = load_site(ROOT / "inventory" / "bitten")
    gp = from_site(site).gpu_power
    assert gp is not None
    gpu_nodes = [n for n in site.compute_nodes if (p := site.profile_of(n)) is not None and p.gpu is not None]
    assert sorted(gp.urls) == sorted(gpu_nodes) and len(gpu_nodes) == 16
    first = gpu_nodes[0]
    assert gp.urls[first] == f"http://{site.nodes[first].ip}:9400/metrics"
    assert gp.max_w[first] == 1.5 * 1000


def test_the_controller_polls_dcgm_into_its_ledger_and_metrics(exporters: dict[str, str], tmp_path: Path) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.core import CollectorRegistry

    from bitten.energy.config import ControllerConfig, GpuPowerEntry
    from bitten.energy.controller import Controller
    from bitten.energy.metrics import ControllerCollector

    from .memory_slurm import MemorySlurm

    pages: dict[str, str] = exporters.pop("_pages")  # type: ignore[assignment]
    pages["gpu01"] = page("gpu01", [400.0, 300.0], [1e9, 2e9])

    class NoCooling:
        def read(self) -> tuple[dict[str, list[str]], str]:
            return {}, ""

    cfg = ControllerConfig(site="t", state_dir=str(tmp_path / "state"),
                           gpu_power=GpuPowerEntry(urls={"gpu01": exporters["gpu01"]}, max_w={"gpu01": 1500}))
    ctl = Controller(cfg, slurm=MemorySlurm(), cooling=NoCooling())  # type: ignore[arg-type]
    ctl.run(cycles=1)
    registry = CollectorRegistry()
    registry.register(ControllerCollector(ctl))
    text = generate_latest(registry).decode()
    ctl.close()
    assert 'bitten_energy_gpu_power_watts{node="gpu01"} 700.0' in text
    assert 'bitten_energy_gpu_energy_joules_total{node="gpu01"} 3e+06' in text  # 1e9 + 2e9 mJ
    assert 'bitten_energy_gpu_power_stale{node="gpu01"} 0.0' in text
    assert Ledger(cfg.nodes_ledger_path).provenance("gpu_energy") == {
        "gpu01": f"dcgm-exporter {exporters['gpu01']} {ENERGY} (sum of 2 GPUs)"}
