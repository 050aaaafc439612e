"""Energy, CO2 and reused heat per job, per user, account and UCloud project, from measured series and job records.

For one job on nodes N over [start, end):

- IT energy = sum over its nodes of the node's measured energy (ledger channel ``node_energy``, from its BMC) times
  the job's share of the node (its GPUs of the node's GPUs; CPUs for a node without GPUs). Measured when every
  node's series covers at least :data:`MIN_COVERAGE` of the interval; a partly covered node is scaled up to the
  interval (estimated); without series, Slurm's ConsumedEnergy is shown beside it (its own scope: the NVML plugin
  counts GPUs only) and the IT energy is estimated from the profile's nominal power (estimated), else missing.
- PUE over the interval = facility energy / IT energy from the ledger (E_DC / E_IT over the same interval);
  facility energy of the job = its IT energy x that PUE.
- CO2 = the job's facility energy x the grid's mean intensity over the interval (Energinet's realised CO2Emis:
  measured; the forecast: estimated).
- Reused heat = the job's facility energy x ERF over the interval (E_REUSE / E_DC), and the net CO2, the part of
  the footprint not offset by that reuse: CO2 x (1 - ERF) (an ERE-style convention, stated in every statement).

Every figure says measured / estimated / missing and how it was made. Nothing missing is filled in silently.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from bitten.energy.signals import Point
from bitten.site.model import Site

Status = Literal["measured", "estimated", "missing"]
ORDER: dict[str, int] = {"measured": 0, "estimated": 1, "missing": 2}
#: a series covering less of an interval than this is not a measurement of it
MIN_COVERAGE = 0.9
SACCT_FORMAT = "JobIDRaw,User,Account,Partition,QOS,NodeList,AllocTRES,Start,End,State,ConsumedEnergyRaw"
#: the sacct command behind `bitten energy jobs` (one line per job allocation, parsable, no header)
SACCT = ("sacct", "--allusers", "--allocations", "--parsable2", "--noheader", f"--format={SACCT_FORMAT}")
NET_CO2_NOTE = ("net CO2 = CO2 x (1 - ERF over the job's interval): the part of the footprint not offset by the "
                "heat reused in district heating (a convention like The Green Grid's ERE, not a standard)")


def worst(*statuses: Status) -> Status:
    return max(statuses, key=lambda s: ORDER[s])


@dataclass(frozen=True)
class Figure:
    value: float | None
    unit: str
    status: Status
    how: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": None if self.value is None else round(self.value, 6), "unit": self.unit,
                "status": self.status, "how": self.how}


def missing(unit: str, why: str) -> Figure:
    return Figure(None, unit, "missing", why)


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    user: str
    account: str
    partition: str
    qos: str
    nodes: tuple[str, ...]
    gpus: int
    cpus: int
    start: float | None
    end: float | None
    state: str
    #: sacct ConsumedEnergyRaw in joules (None: not accounted)
    slurm_energy_j: float | None = None
    project: str | None = None


class SacctError(ValueError):
    pass


def _time(text: str) -> float | None:
    if text in ("", "Unknown", "None"):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SacctError(f"unparseable time {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _tres(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key] = value
    return out


def expand_nodes(text: str) -> tuple[str, ...]:
    if text in ("", "None assigned", "(null)"):
        return ()
    import hostlist

    return tuple(hostlist.expand_hostlist(text))


def parse_sacct(text: str, source: str = "sacct") -> list[JobRecord]:
    """Jobs from ``sacct -a -X -P --noheader --format=`` :data:`SACCT_FORMAT` (times as sacct prints them, in the
    controller's local time unless SLURM_TIME_FORMAT says otherwise: run it with TZ=UTC)."""
    jobs = []
    width = len(SACCT_FORMAT.split(","))
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != width:
            raise SacctError(f"{source}:{number}: expected {width} fields ({SACCT_FORMAT}), got {len(fields)}")
        job_id, user, account, partition, qos, nodelist, tres, start, end, state, energy = fields
        try:
            t = _tres(tres)
            gpus = int(t.get("gres/gpu", "0") or 0)
            cpus = int(t.get("cpu", "0") or 0)
            joules = float(energy) if energy not in ("", "0") else None
            jobs.append(JobRecord(job_id, user, account, partition, qos, expand_nodes(nodelist), gpus, cpus,
                                  _time(start), _time(end), state.split()[0] if state else "", joules))
        except (SacctError, ValueError) as exc:
            raise SacctError(f"{source}:{number}: {exc}") from None
    return jobs


def project_of(account: str, user: str, machine_types: Iterable[str]) -> str | None:
    """The UCloud project behind an account the Integration Module made (``<group>_<category>``), if any.

    The IM names accounts ``#{localUsername}_#{productCategory}`` for personal workspaces and
    ``#{localGroupName}_#{productCategory}`` for projects (bitten_ucloud.account_mapper): a prefix equal to the
    job's user is a personal workspace (None), any other prefix the project's group.
    """
    for category in sorted(machine_types, key=len, reverse=True):
        match = re.fullmatch(rf"(.+)_{re.escape(category)}", account)
        if match:
            return None if match[1] == user else match[1]
    return None


class Series(Protocol):
    """What the attribution reads: a ledger (bitten.cooling.ledger.Ledger) answers this."""

    def total(self, channel: str, start: float, end: float, source: str | None = None) -> Any: ...


class Ledgers:
    """Several ledgers read as one: the cooling agent's (IT, facility, reused heat) and the energy controller's
    (node_energy, node_heat). A channel is answered by the first ledger that has any source for it."""

    def __init__(self, ledgers: list[Any]) -> None:
        self.ledgers = ledgers

    def total(self, channel: str, start: float, end: float, source: str | None = None) -> Any:
        first = None
        for ledger in self.ledgers:
            got = ledger.total(channel, start, end, source=source)
            first = first or got
            if got.sources:
                return got
        return first


@dataclass(frozen=True)
class NodeInfo:
    gpus: int
    threads: int
    #: nominal power of the whole node at full load (W), for estimates
    nominal_w: float
    #: the Slurm energy plugin of its profile (None: none)
    plugin: str | None = None


@dataclass
class JobEnergy:
    job: JobRecord
    it_energy: Figure
    slurm_energy: Figure
    pue: Figure
    facility_energy: Figure
    co2_intensity: Figure
    co2: Figure
    erf: Figure
    reused_heat: Figure
    co2_net: Figure
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        j = self.job
        return {
            "job_id": j.job_id, "user": j.user, "account": j.account, "project": j.project,
            "partition": j.partition, "qos": j.qos, "nodes": list(j.nodes), "gpus": j.gpus, "state": j.state,
            "start": _iso(j.start), "end": _iso(j.end),
            **{name: getattr(self, name).as_dict() for name in FIGURES}, "notes": self.notes,
        }


FIGURES = ("it_energy", "slurm_energy", "pue", "facility_energy", "co2_intensity", "co2", "erf", "reused_heat",
           "co2_net")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _share(job: JobRecord, info: NodeInfo) -> float:
    n = max(1, len(job.nodes))
    if info.gpus and job.gpus:
        return min(1.0, job.gpus / n / info.gpus)
    if info.threads and job.cpus:
        return min(1.0, job.cpus / n / info.threads)
    return 1.0


def it_energy(job: JobRecord, ledger: Series | None, nodes: Mapping[str, NodeInfo]) -> tuple[Figure, list[str]]:
    assert job.start is not None and job.end is not None
    span = job.end - job.start
    notes: list[str] = []
    total = 0.0
    status: Status = "measured"
    hows = []
    for node in job.nodes:
        info = nodes.get(node)
        if info is None:
            return missing("kWh", f"node {node} is not in the site"), notes
        share = _share(job, info)
        got = ledger.total("node_energy", job.start, job.end, source=node) if ledger is not None else None
        coverage = 0.0 if got is None or got.value is None or span <= 0 else min(1.0, got.covered_s / span)
        if got is not None and got.value is not None and coverage >= MIN_COVERAGE:
            total += got.value * share
            hows.append(f"{node}: measured {got.value:.3f} kWh x share {share:.3g}")
        elif got is not None and got.value is not None and coverage > 0:
            total += got.value / coverage * share
            status = worst(status, "estimated")
            hows.append(f"{node}: {coverage:.0%} of the interval measured, scaled up, x share {share:.3g}")
        else:
            total += info.nominal_w * span / 3.6e6 * share
            status = worst(status, "estimated")
            hows.append(f"{node}: no measured series; nominal {info.nominal_w:g} W x share {share:.3g}")
    if not job.nodes:
        return missing("kWh", "the job has no nodes"), notes
    return Figure(total, "kWh", status, "; ".join(hows)), notes


def _ratio(ledger: Series | None, num: str, den: str, start: float, end: float, what: str) -> Figure:
    if ledger is None:
        return missing("1", "no ledger")
    a, b = ledger.total(num, start, end), ledger.total(den, start, end)
    span = end - start
    if a.value is None or b.value is None or not b.value:
        return missing("1", f"the ledger has no {num if a.value is None else den} over the interval")
    cov = min(a.coverage, b.coverage) if span > 0 else 0.0
    status: Status = "measured" if cov >= MIN_COVERAGE else "estimated"
    return Figure(a.value / b.value, "1", status, f"{what} = {num} {a.value:.3f} / {den} {b.value:.3f} kWh over the "
                  f"job's interval ({cov:.0%} covered)")


def mean_intensity(points: list[Point], start: float, end: float, step_s: float, label: str) -> tuple[
        float | None, float]:
    """Time-weighted mean of a step series over [start, end) and the fraction of it covered."""
    weight = total = 0.0
    for p in points:
        overlap = min(end, p.t + step_s) - max(start, p.t)
        if overlap > 0:
            weight += overlap
            total += p.value * overlap
    if weight == 0:
        return None, 0.0
    return total / weight, weight / (end - start) if end > start else 0.0


def attribute(job: JobRecord, *, ledger: Series | None, nodes: Mapping[str, NodeInfo],
              realised: list[Point], forecast: list[Point], step_s: float = 300.0) -> JobEnergy:
    """Every figure of one job (see the module docstring)."""
    kwh, j = "kWh", job
    slurm = missing("kWh", "Slurm accounted no energy for this job (AcctGatherEnergyType none, or not yet)") \
        if j.slurm_energy_j is None else Figure(j.slurm_energy_j / 3.6e6, kwh, "measured", "sacct ConsumedEnergy ("
                                                 + ", ".join(sorted({nodes[n].plugin or "?" for n in j.nodes
                                                                     if n in nodes})) + " plugin; its own scope)")
    if j.start is None or j.end is None or j.end <= j.start:
        why = "the job has not ended" if j.end is None else "the job did not run"
        none = [missing(u, why) for u in (kwh, "1", kwh, "g/kWh", "kg", "1", kwh, "kg")]
        return JobEnergy(j, none[0], slurm, none[1], none[2], none[3], none[4], none[5], none[6], none[7])
    it, notes = it_energy(j, ledger, nodes)
    pue = _ratio(ledger, "facility_energy", "it_energy", j.start, j.end, "PUE")
    if it.value is None or pue.value is None:
        facility = missing(kwh, it.how if it.value is None else pue.how)
    else:
        facility = Figure(it.value * pue.value, kwh, worst(it.status, pue.status), "IT energy x PUE over the interval")
    intensity, cov = mean_intensity(realised, j.start, j.end, step_s, "realised")
    if intensity is not None and cov >= MIN_COVERAGE:
        ci = Figure(intensity, "g/kWh", "measured", f"Energinet CO2Emis, mean over the job ({cov:.0%} covered)")
    else:
        fc, fcov = mean_intensity(forecast, j.start, j.end, step_s, "forecast")
        if fc is not None and fcov >= MIN_COVERAGE:
            ci = Figure(fc, "g/kWh", "estimated", f"Energinet CO2EmisProg (forecast), realised covered {cov:.0%}")
        else:
            ci = missing("g/kWh", f"grid intensity covers {max(cov, fcov):.0%} of the job's interval")
    if facility.value is None or ci.value is None:
        co2 = missing("kg", facility.how if facility.value is None else ci.how)
    else:
        co2 = Figure(facility.value * ci.value / 1000, "kg", worst(facility.status, ci.status),
                     "facility energy x mean grid intensity")
    erf = _ratio(ledger, "reused_heat", "facility_energy", j.start, j.end, "ERF")
    if facility.value is None or erf.value is None:
        reused = missing(kwh, facility.how if facility.value is None else erf.how)
    else:
        reused = Figure(facility.value * erf.value, kwh, worst(facility.status, erf.status),
                        "facility energy x ERF over the interval")
    if co2.value is None or erf.value is None:
        net = missing("kg", co2.how if co2.value is None else erf.how)
    else:
        net = Figure(co2.value * (1 - erf.value), "kg", worst(co2.status, erf.status), NET_CO2_NOTE)
    return JobEnergy(j, it, slurm, pue, facility, ci, co2, erf, reused, net, notes)


def node_infos(site: Site) -> dict[str, NodeInfo]:
    """Per compute node: GPUs, threads, nominal power (the cluster model's) and its Slurm energy plugin."""
    from bitten.energy.cluster import ClusterModel

    model = ClusterModel.from_site(site)
    out: dict[str, NodeInfo] = {}
    for host in site.compute_nodes:
        profile = site.profile_of(host)
        if profile is None:
            continue
        plugin = site.energy.accounting.plugins.get(site.nodes[host].hardware_profile or "")
        if profile.gpu is not None:
            nominal = model.host_idle_w + model.host_busy_w + profile.gpu.count * float(
                profile.gpu.max_power_watts or model.gpu_max_w)
        else:
            nominal = model.cpu_node_busy_w
        out[host] = NodeInfo(profile.gpu.count if profile.gpu else 0, profile.cpu.threads, nominal,
                             None if plugin in (None, "none") else plugin)
    return out


def co2_points(path: Path | None, price_area: str = "DK1") -> tuple[list[Point], list[Point]]:
    """Realised and forecast CO2 from the controller's signal cache or saved Energi Data Service answers."""
    from bitten.energy.energinet import DATASETS, parse_records

    if path is None:
        return [], []
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of datasets")
    out: list[list[Point]] = [[], []]
    for i, name in enumerate(("CO2Emis", "CO2EmisProg")):
        entry = raw.get(name)
        if isinstance(entry, dict) and "points" in entry:  # the controller's cache
            out[i] = [Point(float(t), float(v)) for t, v in entry["points"]]
        elif entry is not None:
            doc = entry if isinstance(entry, dict) else {"records": entry}
            out[i] = parse_records(doc, DATASETS[name], price_area, "DKK")[0]
    return out[0], out[1]


# --- aggregates and output ---------------------------------------------------------------------------------------

SUMMED = ("it_energy", "facility_energy", "co2", "reused_heat", "co2_net")


def aggregate(results: list[JobEnergy], key: str) -> dict[str, dict[str, Any]]:
    """Sums per user, account or project; each sum says how many jobs were missing it and its worst status."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        name = (getattr(r.job, key) if key != "project" else r.job.project) or "(none)"
        entry = out.setdefault(name, {"jobs": 0, **{f: {"value": 0.0, "unit": getattr(r, f).unit,
                                                        "status": "measured", "missing_jobs": 0} for f in SUMMED}})
        entry["jobs"] += 1
        for f in SUMMED:
            fig: Figure = getattr(r, f)
            slot = entry[f]
            if fig.value is None:
                slot["missing_jobs"] += 1
                slot["status"] = worst(slot["status"], "estimated")
            else:
                slot["value"] += fig.value
                slot["status"] = worst(slot["status"], fig.status)
    return dict(sorted(out.items()))


def to_json(results: list[JobEnergy]) -> str:
    return json.dumps({"jobs": [r.as_dict() for r in results],
                       "by_user": aggregate(results, "user"), "by_account": aggregate(results, "account"),
                       "by_project": aggregate(results, "project"), "note": NET_CO2_NOTE}, indent=2)


def to_csv(results: list[JobEnergy]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    head = ["job_id", "user", "account", "project", "partition", "qos", "nodes", "gpus", "start", "end"]
    for f in FIGURES:
        head += [f"{f}_value", f"{f}_unit", f"{f}_status"]
    writer.writerow(head)
    for r in results:
        d = r.as_dict()
        row = [d["job_id"], d["user"], d["account"], d["project"] or "", d["partition"], d["qos"],
               " ".join(d["nodes"]), d["gpus"], d["start"] or "", d["end"] or ""]
        for f in FIGURES:
            row += ["" if d[f]["value"] is None else d[f]["value"], d[f]["unit"], d[f]["status"]]
        writer.writerow(row)
    return buf.getvalue()


def to_html(results: list[JobEnergy], title: str) -> str:
    esc = html.escape

    def cell(fig: Figure) -> str:
        shown = "—" if fig.value is None else f"{fig.value:,.3f}"
        return f'<td class="{fig.status}" title="{esc(fig.how)}">{shown} <small>{esc(fig.unit)} · {fig.status}' \
               "</small></td>"

    rows = "".join(
        f"<tr><td>{esc(r.job.job_id)}</td><td>{esc(r.job.user)}</td><td>{esc(r.job.account)}</td>"
        f"<td>{esc(r.job.project or '')}</td><td>{esc(_iso(r.job.start) or '')}</td>"
        f"<td>{esc(_iso(r.job.end) or '')}</td>"
        + "".join(cell(getattr(r, f)) for f in FIGURES) + "</tr>" for r in results)
    heads = "".join(f"<th>{esc(f.replace('_', ' '))}</th>" for f in FIGURES)
    users = aggregate(results, "user")
    urows = "".join(f"<tr><td>{esc(u)}</td><td>{e['jobs']}</td>" + "".join(
        f"<td class=\"{e[f]['status']}\">{e[f]['value']:,.3f} {esc(e[f]['unit'])}"
        f"{' (' + str(e[f]['missing_jobs']) + ' missing)' if e[f]['missing_jobs'] else ''}</td>" for f in SUMMED)
        + "</tr>" for u, e in users.items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}td.estimated{{background:#fff9db}}td.missing{{background:#ffe3e3}}
td.measured{{background:#ebfbee}}</style></head><body><h1>{esc(title)}</h1>
<p>Every figure says whether it was measured, estimated or is missing (hover for how). {esc(NET_CO2_NOTE)}.</p>
<h2>Per user</h2><table><tr><th>user</th><th>jobs</th>{''.join(f'<th>{f}</th>' for f in SUMMED)}</tr>{urows}</table>
<h2>Jobs</h2><table><tr><th>job</th><th>user</th><th>account</th><th>project</th><th>start</th><th>end</th>{heads}</tr>
{rows}</table></body></html>
"""
