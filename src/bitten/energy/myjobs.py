#!/usr/bin/python3
"""bitten-energy-jobs: your own Slurm jobs' energy, CO2 and reused heat, on a login node.

It asks the energy controller (its statements, bitten.energy.statements) with a MUNGE credential that ``munge``
makes for you, restricted to the controller's account, and prints what the controller answers: your jobs only,
each figure marked measured, estimated or missing. The energy_controller role installs it on the login nodes with
its configuration (/etc/bitten/energy-jobs.json: the statements' URL and the controller's uid).

Standard library only: it runs with the system's python3, without bitten's virtualenv.
Exit 0: the statement; 1: the controller refused or could not answer (its reason is printed); 2: bad usage or
configuration.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

CONFIG = "/etc/bitten/energy-jobs.json"
#: (figure, column title); each shown as value unit (status)
COLUMNS = (("it_energy", "IT energy"), ("facility_energy", "with facility overhead"), ("co2", "CO2"),
           ("reused_heat", "heat reused"), ("co2_net", "net CO2"))


def credential(uid: int, munge: str = "munge", timeout: float = 10.0) -> str:
    """A MUNGE credential for the calling user that only ``uid`` (the controller's account) can decode."""
    done = subprocess.run([munge, "--no-input", f"--restrict-uid={uid}"], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0 or not done.stdout.startswith("MUNGE:"):
        raise RuntimeError(f"munge failed (exit {done.returncode}): {done.stderr.strip()[:200]}")
    return done.stdout.strip()


def fetch(url: str, cred: str, since: str | None, timeout: float = 60.0) -> dict[str, Any]:
    query = f"?since={since}" if since else ""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    # the scheme is checked above: no file: or custom schemes
    request = urllib.request.Request(url + query, headers={"Authorization": f"MUNGE {cred}"})  # noqa: S310
    # the statements are on the cluster network: never through a proxy from the environment
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as answer:
        doc = json.loads(answer.read().decode())
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise ValueError("the controller's answer is not a statement")
    return doc


def cell(fig: Any) -> str:
    if not isinstance(fig, dict):
        return "?"
    value = fig.get("value")
    shown = "-" if value is None else f"{value:.3g} {fig.get('unit', '')}"
    return f"{shown} ({fig.get('status', '?')})"


def render(doc: dict[str, Any]) -> str:
    head = ["job", "state", "start (UTC)", *(title for _, title in COLUMNS)]
    rows = [[str(j.get("job_id")), str(j.get("state")), str(j.get("start") or "-"),
             *(cell(j.get(name)) for name, _ in COLUMNS)] for j in doc["jobs"]]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"energy of {doc.get('user', '?')}'s jobs since {doc.get('since', '?')} (UTC)",
             "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    if not rows:
        lines.append("(no jobs)")
    lines.append("measured: from meters; estimated: partly from the hardware's nominal power or a forecast; "
                 "missing: an input was not there (--json says which and how)")
    if doc.get("note"):
        lines.append(str(doc["note"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bitten-energy-jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--since", help="jobs since this day (YYYY-MM-DD, UTC); default: the last 30 days")
    parser.add_argument("--json", action="store_true", help="the whole statement as JSON")
    parser.add_argument("--config", default=CONFIG)
    args = parser.parse_args(argv)
    if args.since and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.since):
        print(f"error: --since {args.since!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    try:
        with open(args.config, encoding="utf-8") as f:
            cfg = json.load(f)
        url, uid = str(cfg["url"]), int(cfg["controller_uid"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {args.config}: {exc} (the energy_controller role writes it: url, controller_uid)",
              file=sys.stderr)
        return 2
    try:
        doc = fetch(url, credential(uid, cfg.get("munge", "munge")), args.since)
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read().decode()).get("error", "")
        except ValueError:
            reason = ""
        print(f"error: the energy controller refused ({exc.code}): {reason or exc.reason}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        print(f"error: no statement from {url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
