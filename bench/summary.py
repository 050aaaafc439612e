"""`make bench`'s summary: every figure the benches printed (bench/_figures.py), its target and PASS or MISS, and
the benches that failed. Exits 1 only when a bench failed (a missed target is a result, not an error)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(log: Path) -> int:
    figures: list[list[str]] = []
    errors: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("FIGURE\t"):
            figures.append(line.split("\t")[1:5])
        elif line.startswith("BENCH-ERROR "):
            errors.append(line.removeprefix("BENCH-ERROR "))
    width = max((len(f[0]) for f in figures), default=10)
    print(f"\n== summary: {len(figures)} figure(s), {sum(f[3] == 'PASS' for f in figures)} meet their target")
    for name, measured, target, verdict in figures:
        print(f"{verdict:<4}  {name:<{width}}  {measured}  (target {target})")
    for error in errors:
        print(f"ERROR {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
