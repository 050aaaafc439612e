"""What every bench prints for `make bench`'s summary: one line per figure with its target and whether it is met.

A line is ``FIGURE<TAB>name<TAB>measured<TAB>target<TAB>PASS|MISS``; bench/summary.py collects them from the benches'
output. A missed target is a result, not an error: the benches exit non-zero only when something failed.
"""

from __future__ import annotations


def figure(name: str, measured: str, target: str, met: bool) -> None:
    print(f"FIGURE\t{name}\t{measured}\t{target}\t{'PASS' if met else 'MISS'}", flush=True)
