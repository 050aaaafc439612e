"""Reports from the ledger: indicators, the EU fields, provenance, JSON/CSV/HTML, and the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from typer.testing import CliRunner

from bitten.cli import app
from bitten.cooling.ledger import Ledger
from bitten.cooling.report import ReportError, build_report, parse_period, to_csv, to_html, to_json

from .helpers import agent_config


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def filled_ledger(path: Path) -> Ledger:
    book = Ledger(path, max_gap_s=600)
    t0 = ts("2026-03-01T00:00:00")
    for i in range(0, 13):  # two hours in 10-minute steps, one gap of 1 h in the middle of it for the heat meter
        t = t0 + i * 600
        book.record("it_energy", "it-meter/energy", "counter", t, 1000 + i * 10.0)  # 60 kW
        book.record("facility_energy", "dc-meter/energy", "counter", t, 5000 + i * 11.5)  # 69 kW
        if not 4 <= i <= 8:
            book.record("reused_heat", "dh-meter/heat_energy", "counter", t, 200 + i * 8.0)  # 48 kW
        book.record("waste_heat_temperature", "dh-meter/supply_temperature", "level", t, 55.0)
    return book


def test_parse_period() -> None:
    assert parse_period("2026") == (ts("2026-01-01T00:00:00"), ts("2027-01-01T00:00:00"))
    assert parse_period("2026-12") == (ts("2026-12-01T00:00:00"), ts("2027-01-01T00:00:00"))
    assert parse_period("2026-01-01..2026-07-01")[1] == ts("2026-07-01T00:00:00")
    for bad in ("26", "2026-13", "2026-05-01..2026-04-01", "last year"):
        with pytest.raises(ReportError):
            parse_period(bad)


def test_indicators_and_provenance(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path, "http://127.0.0.1:1", meter_port=1)
    book = filled_ledger(tmp_path / "l.sqlite")
    start, end = parse_period("2026")
    rep = build_report(cfg, book, start, end, "2026")
    e_it, e_dc, e_reuse = rep.get("E_IT"), rep.get("E_DC"), rep.get("E_REUSE")
    assert e_it and e_dc and e_reuse
    assert (e_it.value, e_dc.value) == (pytest.approx(120.0), pytest.approx(138.0))
    # 96 kWh by the counter, of which 48 kWh across the one-hour gap (bridged, flagged)
    assert e_reuse.value == pytest.approx(96.0) and e_reuse.gaps == 1 and "across gaps" in e_reuse.note
    assert "difference of the meter's counter" in e_it.provenance and "it-meter/energy" in e_it.provenance
    assert rep.get("PUE").value == pytest.approx(1.15)  # type: ignore[union-attr]
    assert rep.get("ERF").value == pytest.approx(96 / 138)  # type: ignore[union-attr]
    assert rep.get("ERE").value == pytest.approx((138 - 96) / 120)  # type: ignore[union-attr]
    assert rep.get("REF").value is None and rep.get("WUE").value is None  # type: ignore[union-attr]
    assert rep.get("E_RES-TOT").provenance.startswith("no meter configured")  # type: ignore[union-attr]
    assert rep.get("T_WH").value == pytest.approx(55.0)  # type: ignore[union-attr]
    assert {v.symbol for v in rep.eu_fields} >= {"P_DIT", "E_DC", "E_IT", "E_REUSE", "E_RES-TOT", "W_IN", "W_IN-POT",
                                                   "T_WH", "T_SET", "PUE", "ERF", "REF", "WUE"}
    assert "Official Journal" in rep.eu_note
    assert rep.gaps and rep.gaps[0]["channel"] == "reused_heat"


def test_formats(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path, "http://127.0.0.1:1", meter_port=1)
    book = filled_ledger(tmp_path / "l.sqlite")
    rep = build_report(cfg, book, *parse_period("2026-03"), "2026-03")
    data = json.loads(to_json(rep))
    assert data["period"] == "2026-03" and any(v["symbol"] == "ERF" for v in data["indicators"])
    rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    pue = next(r for r in rows if r["symbol"] == "PUE" and r["section"] == "indicator")
    assert float(pue["value"]) == pytest.approx(1.15) and "E_DC / E_IT" in pue["provenance"]
    page = to_html(rep, book)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<polyline" in page
    assert "reused heat (kW)" in page and "IT power (kW)" in page
    assert page.count("<polyline") >= 3  # the heat line is broken at its gap
    svg = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    root = ElementTree.fromstring(svg)  # well-formed SVG, as a browser will parse it
    assert root.tag.endswith("svg") and len(root) > 10


def test_cli_report(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path, "http://127.0.0.1:1", meter_port=1)
    config_file = tmp_path / "agent.yaml"
    config_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True)))
    filled_ledger(cfg.ledger_path).close()
    runner = CliRunner()
    result = runner.invoke(app, ["energy", "report", "--period", "2026", "--config", str(config_file), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.json", "report.csv", "report.html"}
    result = runner.invoke(app, ["energy", "report", "--period", "2026", "--config", str(config_file),
                                 "--format", "csv"])
    assert result.exit_code == 0 and result.output.startswith("section,symbol")
    result = runner.invoke(app, ["energy", "report", "--period", "someday", "--config", str(config_file)])
    assert result.exit_code == 2


def test_cli_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text("site: x\nport: many\n")
    result = CliRunner().invoke(app, ["cooling", "check", "--config", str(bad)])
    assert result.exit_code == 2
    assert "port" in result.output and str(bad) in result.output
