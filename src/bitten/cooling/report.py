"""Energy reports from the ledger: PUE, ERF, ERE, REF, WUE and the fields of the EU data-centre report.

Indicators (annual kWh in the standards; any period here):
PUE = E_DC / E_IT (ISO/IEC 30134-2); ERF = E_REUSE / E_DC (30134-6); ERE = (E_DC - E_REUSE) / E_IT (The Green Grid);
REF = E_RES / E_DC (30134-3); WUE = W_IN [L] / E_IT [kWh] (30134-9).

The EU fields follow Directive (EU) 2023/1791 Art. 12 / Annex VII and Delegated Regulation (EU) 2024/1364 as
summarised in the project's notes; the field names have not been checked against the Official Journal text, and
the report says so. Every value carries its provenance: which meters, which method, which gaps, what coverage.
A value that no meter measured is null with the reason, never a guess.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bitten.cooling.config import AgentConfig
from bitten.cooling.ledger import Ledger, Total

EU_NOTE = ("Fields follow Directive (EU) 2023/1791 Art. 12 and Annex VII and Delegated Regulation (EU) 2024/1364 "
           "Annexes I-II as summarised in bitten's notes; confirm names and units against the Official Journal "
           "text before filing. Reporting applies from 500 kW installed IT power (P_DIT).")


class ReportError(ValueError):
    pass


def parse_period(text: str) -> tuple[float, float]:
    """'2026' (a year), '2026-03' (a month) or 'YYYY-MM-DD..YYYY-MM-DD' (end exclusive), in UTC."""
    try:
        if re.fullmatch(r"\d{4}", text):
            y = int(text)
            return datetime(y, 1, 1, tzinfo=UTC).timestamp(), datetime(y + 1, 1, 1, tzinfo=UTC).timestamp()
        if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
            y, mo = int(m[1]), int(m[2])
            end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
            return datetime(y, mo, 1, tzinfo=UTC).timestamp(), end.timestamp()
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text):
            first = datetime.fromisoformat(m[1]).replace(tzinfo=UTC).timestamp()
            last = datetime.fromisoformat(m[2]).replace(tzinfo=UTC).timestamp()
            if last <= first:
                raise ReportError("the end must be after the start")
            return first, last
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    raise ReportError("expected YYYY, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD")


@dataclass
class Value:
    """One reported number and where it came from."""

    name: str
    symbol: str
    value: float | None
    unit: str
    #: meters and methods, or the formula and its inputs
    provenance: str
    coverage: float | None = None
    gaps: int = 0
    gap_seconds: float = 0.0
    note: str = ""


@dataclass
class Report:
    site: str
    period: str
    start: str
    end: str
    generated: str
    measured: list[Value] = field(default_factory=list)
    indicators: list[Value] = field(default_factory=list)
    eu_fields: list[Value] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    eu_note: str = EU_NOTE
    estimates: list[str] = field(default_factory=list)

    def get(self, symbol: str) -> Value | None:
        return next((v for v in [*self.measured, *self.indicators, *self.eu_fields] if v.symbol == symbol), None)


CHANNELS = (
    ("it_energy", "E_IT", "IT equipment energy consumption"),
    ("facility_energy", "E_DC", "data centre total energy consumption"),
    ("reused_heat", "E_REUSE", "waste heat reused"),
    ("renewable_energy", "E_RES-TOT", "total renewable energy consumption"),
    ("water_input", "W_IN", "total water input"),
    ("potable_water_input", "W_IN-POT", "potable water input"),
    ("waste_heat_temperature", "T_WH", "average waste heat temperature"),
)


def _measured(total: Total, symbol: str, name: str, configured: int) -> Value:
    if configured == 0:
        return Value(name, symbol, None, total.unit, "no meter configured (bitten_cooling.ledger)",
                     note="not measured")
    gap_s = sum(min(g.end, total.end) - max(g.start, total.start) for g in total.gaps)
    sources = "; ".join(f"{src}: {method or 'no interval in the period'}"
                        for src, method in sorted(total.sources.items()))
    note = ""
    if total.bridged:
        note = f"includes {total.bridged:.3f} {total.unit} a counter measured across gaps (not attributable in time)"
    if total.value is None:
        note = "no readings in the period"
    return Value(name, symbol, total.value, total.unit, sources or "configured, but never read", total.coverage,
                 len(total.gaps), gap_s, note)


def _ratio(name: str, symbol: str, formula: str, num: float | None, den: float | None, inputs: str,
           scale: float = 1.0, unit: str = "1") -> Value:
    if num is None or den is None or den == 0:
        return Value(name, symbol, None, unit, f"{formula}; inputs: {inputs}", note="an input is not measured")
    return Value(name, symbol, num * scale / den, unit, f"{formula}; inputs: {inputs}")


def build_report(cfg: AgentConfig, ledger: Ledger, start: float, end: float, period: str) -> Report:
    rep = Report(cfg.site, period, datetime.fromtimestamp(start, UTC).isoformat(),
                 datetime.fromtimestamp(end, UTC).isoformat(), datetime.now(UTC).isoformat(timespec="seconds"),
                 estimates=list(cfg.reporting.estimates))
    channels = cfg.ledger.channels()
    values: dict[str, float | None] = {}
    for channel, symbol, name in CHANNELS:
        total = ledger.total(channel, start, end)
        measured = _measured(total, symbol, name, len(channels[channel]))
        rep.measured.append(measured)
        values[symbol] = measured.value
        for g in total.gaps:
            rep.gaps.append({"channel": channel, "source": g.source,
                             "start": datetime.fromtimestamp(g.start, UTC).isoformat(timespec="seconds"),
                             "end": datetime.fromtimestamp(g.end, UTC).isoformat(timespec="seconds"),
                             "reason": g.reason, "bridged": g.bridged})
    e_it, e_dc, e_reuse, e_res, w_in = (values["E_IT"], values["E_DC"], values["E_REUSE"], values["E_RES-TOT"],
                                        values["W_IN"])
    rep.indicators = [
        _ratio("power usage effectiveness", "PUE", "E_DC / E_IT (ISO/IEC 30134-2)", e_dc, e_it, "E_DC, E_IT"),
        _ratio("energy reuse factor", "ERF", "E_REUSE / E_DC (ISO/IEC 30134-6)", e_reuse, e_dc, "E_REUSE, E_DC"),
        _ratio("energy reuse effectiveness", "ERE", "(E_DC - E_REUSE) / E_IT (The Green Grid)",
               None if e_dc is None or e_reuse is None else e_dc - e_reuse, e_it, "E_DC, E_REUSE, E_IT"),
        _ratio("renewable energy factor", "REF", "E_RES / E_DC (ISO/IEC 30134-3)", e_res, e_dc, "E_RES-TOT, E_DC"),
        _ratio("water usage effectiveness", "WUE", "W_IN [L] / E_IT [kWh] (ISO/IEC 30134-9)", w_in, e_it,
               "W_IN, E_IT", scale=1000.0, unit="L/kWh"),
    ]
    r = cfg.reporting
    static = "from bitten_cooling.reporting (not metered)"
    rep.eu_fields = [
        Value("data centre", "NAME", None, "", f"site {cfg.site}", note=cfg.site),
        Value("operator", "OPERATOR", None, "", static, note=r.operator or "not given"),
        Value("installed information technology power demand", "P_DIT", r.installed_it_power_kw, "kW", static,
              note="" if r.installed_it_power_kw is None or r.installed_it_power_kw >= 500 else
              "below the 500 kW reporting threshold"),
        Value("total floor area", "A_TOTAL", r.total_floor_area_m2, "m2", static),
        Value("computer room floor area", "A_CR", r.computer_room_floor_area_m2, "m2", static),
        *[v for v in rep.measured if v.symbol in ("E_DC", "E_IT", "E_RES-TOT", "E_REUSE", "W_IN", "W_IN-POT")],
        next(v for v in rep.measured if v.symbol == "T_WH"),
        Value("temperature set point", "T_SET", r.it_temperature_setpoint_c, "degC", static),
        *rep.indicators[:2], rep.indicators[3], rep.indicators[4],
    ]
    return rep


def to_json(rep: Report) -> str:
    return json.dumps(asdict(rep), indent=2, ensure_ascii=False) + "\n"


CSV_FIELDS = ("section", "symbol", "name", "value", "unit", "provenance", "coverage", "gaps", "gap_seconds", "note")


def to_csv(rep: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for section, values in (("measured", rep.measured), ("indicator", rep.indicators), ("eu", rep.eu_fields)):
        for v in values:
            writer.writerow((section, v.symbol, v.name, "" if v.value is None else f"{v.value:.6g}", v.unit,
                             v.provenance, "" if v.coverage is None else f"{v.coverage:.4f}", v.gaps,
                             f"{v.gap_seconds:.0f}", v.note))
    return buf.getvalue()


# --- HTML with an inline SVG plot -------------------------------------------------------------------------------
def svg_plot(series: dict[str, list[tuple[float, float | None]]], colours: dict[str, str], width: int = 880,
             height: int = 300, unit: str = "kW") -> str:
    """Lines of (t, y) per series; None breaks a line (a gap is shown as a gap)."""
    pad_l, pad_r, pad_t, pad_b = 60, 20, 20, 40
    points = [(t, y) for s in series.values() for t, y in s if y is not None]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60"><text x="10" y="30">' \
               "no readings in this period</text></svg>"
    t0 = min(t for s in series.values() for t, _ in s)
    t1 = max(t for s in series.values() for t, _ in s)
    y1 = max(y for _, y in points) * 1.1 or 1.0
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return pad_l + (t - t0) / span * (width - pad_l - pad_r)

    def y(v: float) -> float:
        return height - pad_b - v / y1 * (height - pad_t - pad_b)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11" role="img">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" height="{height - pad_t - pad_b}" '
             'fill="none" stroke="#999"/>']
    for i in range(5):
        tick = y1 * i / 4
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{pad_l - 5}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.3g}</text>')
    for i in range(5):
        t = t0 + span * i / 4
        label = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        parts.append(f'<text x="{x(t):.1f}" y="{height - pad_b + 15}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="12" y="{pad_t + 10}" transform="rotate(-90 12 {pad_t + 10})" text-anchor="end">'
                 f"{html.escape(unit)}</text>")
    for k, (name, points_of) in enumerate(series.items()):
        segments: list[list[str]] = [[]]
        for t, v in points_of:
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(t):.1f},{y(v):.1f}")
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colours[name]}"/>')
            elif seg:
                parts.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="1.5" '
                             f'points="{" ".join(seg)}"/>')
        parts.append(f'<rect x="{pad_l + 10 + k * 170}" y="{height - 14}" width="12" height="4" '
                     f'fill="{colours[name]}"/><text x="{pad_l + 26 + k * 170}" y="{height - 9}">'
                     f"{html.escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _fmt(v: Value) -> str:
    if v.value is None:
        return f"<em>{html.escape(v.note or 'n/a')}</em>"
    return f"{v.value:.4g} {html.escape(v.unit if v.unit != '1' else '')}"


def _rows(values: list[Value]) -> str:
    out = []
    for v in values:
        coverage = "" if v.coverage is None else f"{v.coverage * 100:.1f} %"
        out.append(f"<tr><td>{html.escape(v.symbol)}</td><td>{html.escape(v.name)}</td><td>{_fmt(v)}</td>"
                   f"<td>{html.escape(v.provenance)}</td><td>{coverage}</td><td>{v.gaps}</td>"
                   f"<td>{html.escape(v.note if v.value is not None else '')}</td></tr>")
    return "\n".join(out)


def _bridged(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def to_html(rep: Report, ledger: Ledger, bins: int = 200) -> str:
    start = datetime.fromisoformat(rep.start).timestamp()
    end = datetime.fromisoformat(rep.end).timestamp()
    span = ledger.span()
    if span is not None:  # plot what was measured, not an empty January or December
        start, end = max(start, span[0]), min(end, span[1])
    end = max(end, start + 1)
    series = {"reused heat (kW)": ledger.series("reused_heat", start, end, bins),
              "IT power (kW)": ledger.series("it_energy", start, end, bins)}
    plot = svg_plot(series, {"reused heat (kW)": "#d9480f", "IT power (kW)": "#1c7ed6"})
    head = ["symbol", "quantity", "value", "provenance", "coverage", "gaps", "note"]
    table_head = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    gaps = "".join(f"<tr><td>{html.escape(g['channel'])}</td><td>{html.escape(g['source'])}</td><td>{g['start']}</td>"
                   f"<td>{g['end']}</td><td>{html.escape(g['reason'])}</td><td>{_bridged(g['bridged'])}</td></tr>"
                   for g in rep.gaps[:500])
    estimates = "".join(f"<li>{html.escape(e)}</li>" for e in rep.estimates)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Energy report {html.escape(rep.site)} {html.escape(rep.period)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px;
vertical-align:top}}th{{background:#f3f3f3}}.note{{color:#555;font-size:13px}}</style></head><body>
<h1>Energy report: {html.escape(rep.site)}, {html.escape(rep.period)}</h1>
<p class="note">Period {rep.start} to {rep.end} (UTC, end exclusive); generated {rep.generated} by bitten from its
energy ledger. Values no meter measured are shown as such, never estimated; gaps are listed below.</p>
<h2>Reused heat against IT power</h2>
{plot}
<h2>Indicators</h2>
<table>{table_head}{_rows(rep.indicators)}</table>
<h2>Measured quantities</h2>
<table>{table_head}{_rows(rep.measured)}</table>
<h2>EU data-centre report fields</h2>
<p class="note">{html.escape(rep.eu_note)}</p>
<table>{table_head}{_rows(rep.eu_fields)}</table>
{f"<h2>Estimates</h2><ul>{estimates}</ul>" if estimates else ""}
<h2>Gaps ({len(rep.gaps)})</h2>
<table><tr><th>channel</th><th>source</th><th>from</th><th>to</th><th>reason</th><th>bridged by the counter</th></tr>
{gaps}</table>
</body></html>
"""
