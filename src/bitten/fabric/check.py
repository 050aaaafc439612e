"""`bitten fabric check`: discover the fabric (or read recorded tool output) and compare it with the inventory.

One entry point for every front end (the CLI, the fabric role's action plugin): ``check(fabric, outputs)`` takes
the text of ``ibnetdiscover`` and/or ``iblinkinfo`` and returns the findings; ``run_tools`` runs the tools on this
host, each under a hard time limit (bitten.core.process: a hung diagnostic cannot hang the check).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from bitten.core import process
from bitten.fabric.compare import Finding, compare
from bitten.fabric.discovery import Discovery, parse_iblinkinfo, parse_ibnetdiscover
from bitten.site.model import Fabric

#: the tools, their arguments and their parsers
TOOLS = {"ibnetdiscover": (["ibnetdiscover"], parse_ibnetdiscover),
         "iblinkinfo": (["iblinkinfo"], parse_iblinkinfo)}


class DiscoveryError(Exception):
    """The fabric could not be discovered, or the output given is not the tools' output."""


@dataclass
class Result:
    findings: list[Finding]
    #: lines of the tools' output that no parser understood
    unparsed: list[str]
    switches: int
    links: int


def discovery_of(outputs: Mapping[str, str]) -> Discovery:
    """Parse and merge the outputs (tool name -> text); refuse input that holds no fabric at all."""
    unknown = set(outputs) - TOOLS.keys()
    if unknown:
        raise DiscoveryError(f"unknown tool output {', '.join(sorted(unknown))}; give {' or '.join(TOOLS)}")
    if not outputs:
        raise DiscoveryError("no discovery output: give ibnetdiscover and/or iblinkinfo output")
    merged: Discovery | None = None
    for name, text in sorted(outputs.items()):
        parsed = TOOLS[name][1](text, name)
        if not parsed.links and not parsed.down:
            raise DiscoveryError(f"the {name} output has no links: not {name} output, or an empty fabric"
                                 + (f" (first unrecognised line: {parsed.unparsed[0]})" if parsed.unparsed else ""))
        merged = parsed if merged is None else merged.merge(parsed)
    assert merged is not None
    return merged


def check(fabric: Fabric, outputs: Mapping[str, str]) -> Result:
    found = discovery_of(outputs)
    findings = compare(fabric, found)
    switches = sum(1 for n in found.nodes.values() if n.type == "switch")
    return Result(findings=findings, unparsed=found.unparsed, switches=switches, links=len(found.links))


def run_tools(timeout: float = 120.0) -> dict[str, str]:
    """Run ibnetdiscover and iblinkinfo here (a host with an HCA on the fabric); each under ``timeout`` seconds."""
    outputs: dict[str, str] = {}
    for name, (argv, _parser) in TOOLS.items():
        path = shutil.which(argv[0], path="/usr/sbin:/sbin:/usr/bin:/bin")
        if path is None:
            raise DiscoveryError(f"{argv[0]} is not installed here (Debian package infiniband-diags)")
        done = process.run([path, *argv[1:]], timeout)
        if done.timed_out:
            raise DiscoveryError(f"{argv[0]} did not finish within {timeout:g} s")
        if done.returncode != 0:
            raise DiscoveryError(f"{argv[0]} failed (exit {done.returncode}): {done.stderr.strip()[:300]}")
        outputs[name] = done.stdout
    return outputs
