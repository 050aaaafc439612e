"""bitten-gpu-power: set every GPU's power limit on this node and report what each GPU accepted (node side).

Standard library only: the gpu role installs it as /usr/local/sbin/bitten-gpu-power beside the health check. It
runs ``nvidia-smi -i <index> -pl <watts>`` for each GPU (NVML's nvmlDeviceSetPowerManagementLimit underneath) and
then reads the limits back with ``nvidia-smi --query-gpu=index,power.limit,power.min_limit,power.max_limit
--format=csv,noheader,nounits``; the JSON it prints is what the GPUs report after the change, never what was asked:

    {"requested_w": 700, "accepted": true, "gpus": [{"index": 0, "limit_w": 700.0, "min_w": 200.0,
     "max_w": 1000.0, "ok": true, "error": ""}, ...]}

``--read`` only reads. A request outside a GPU's [min, max] is refused for that GPU before nvidia-smi is asked.
Exit 0 when every GPU reports the requested limit, 1 when some do not (the JSON says which), 2 for bad arguments,
3 when nvidia-smi cannot be run or read. Every nvidia-smi call has a timeout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

QUERY = ["--query-gpu=index,power.limit,power.min_limit,power.max_limit", "--format=csv,noheader,nounits"]
TOLERANCE_W = 1.0


class SmiError(RuntimeError):
    pass


def _run(smi: str, args: list[str], timeout: float) -> str:
    try:
        done = subprocess.run([smi, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SmiError(f"{smi} {' '.join(args)}: {exc}") from None
    if done.returncode != 0:
        raise SmiError(f"{smi} {' '.join(args)}: exit {done.returncode}: {(done.stdout + done.stderr).strip()[:300]}")
    return done.stdout


def _float(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def read_limits(smi: str, timeout: float) -> list[dict[str, Any]]:
    gpus = []
    for line in _run(smi, QUERY, timeout).splitlines():
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 4 or not parts[0].strip().isdigit():
            raise SmiError(f"unexpected nvidia-smi line {line!r}")
        gpus.append({"index": int(parts[0]), "limit_w": _float(parts[1]), "min_w": _float(parts[2]),
                     "max_w": _float(parts[3]), "ok": True, "error": ""})
    if not gpus:
        raise SmiError("nvidia-smi reported no GPUs")
    return gpus


def set_limits(smi: str, watts: float, timeout: float) -> dict[str, Any]:
    before = read_limits(smi, timeout)
    errors: dict[int, str] = {}
    for gpu in before:
        low, high = gpu["min_w"], gpu["max_w"]
        if low is not None and high is not None and not low <= watts <= high:
            errors[gpu["index"]] = f"{watts:g} W is outside the GPU's range [{low:g}, {high:g}] W: not requested"
            continue
        try:
            _run(smi, ["-i", str(gpu["index"]), "-pl", f"{watts:g}"], timeout)
        except SmiError as exc:
            errors[gpu["index"]] = str(exc)
    after = read_limits(smi, timeout)
    for gpu in after:
        limit = gpu["limit_w"]
        gpu["ok"] = limit is not None and abs(limit - watts) <= TOLERANCE_W and gpu["index"] not in errors
        gpu["error"] = errors.get(gpu["index"], "" if gpu["ok"] else f"the GPU reports {limit} W")
    return {"requested_w": watts, "accepted": all(g["ok"] for g in after), "gpus": after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bitten-gpu-power", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--watts", type=float, help="the power limit to set on every GPU")
    what.add_argument("--read", action="store_true", help="only report the limits")
    parser.add_argument("--nvidia-smi", default="nvidia-smi", help="the nvidia-smi to run")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per nvidia-smi call")
    raw = sys.argv[1:] if argv is None else argv
    if raw.count("--nvidia-smi") > 1 or any(a.startswith("--nvidia-smi=") for a in raw):
        # the installed command names its nvidia-smi; nobody gets to choose another one through it
        print(json.dumps({"error": "refused: the nvidia-smi to run is fixed by the installed command"}))
        return 2
    args = parser.parse_args(argv)
    if args.watts is not None and not 1 <= args.watts <= 5000:
        print(json.dumps({"error": f"--watts {args.watts:g} is not a plausible GPU power limit"}))
        return 2
    try:
        if args.read:
            result: dict[str, Any] = {"requested_w": None, "accepted": True,
                                      "gpus": read_limits(args.nvidia_smi, args.timeout)}
        else:
            result = set_limits(args.nvidia_smi, args.watts, args.timeout)
    except SmiError as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    print(json.dumps(result))
    return 0 if result["accepted"] else 1


if __name__ == "__main__":
    sys.exit(main())
