"""Compare the discovered fabric with the inventory's cabling plan: what `bitten fabric check` reports.

Every switch is identified by its GUID (the inventory has them). An HCA port is identified by its port GUID when the
inventory records it, else by its NodeDescription, which rdma-ndd sets to ``<hostname> <device>`` (``gpu01
mlx5_0``). Findings, one per fault:

- ``miscabled``: an HCA port or trunk sits on another port of the switch the inventory says (swapped cables);
- ``misplaced``: an HCA port is on another switch than the inventory says (the node's HCA is not where it should be);
- ``missing``: nothing at a port the inventory cables (with iblinkinfo: the port's state, e.g. Down/Polling);
- ``width``/``speed``: a link below the fabric's link_width/link_speed (NDR 4X on Quantum-2);
- ``unexpected``: a device or trunk the inventory does not have, at a port it leaves free or gives to another;
- ``unknown-switch``/``absent-switch``: a switch GUID that is not in the inventory, an inventory switch not seen.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

from bitten.fabric.discovery import Discovery, Link, Peer
from bitten.site.model import Fabric, NodePort

Kind = Literal["miscabled", "misplaced", "missing", "width", "speed", "unexpected", "unknown-switch",
               "absent-switch"]
_SWITCH_DESC = re.compile(r"^MF0;(?P<name>[^:]+):")


@dataclass(frozen=True)
class Finding:
    kind: Kind
    #: where it is, e.g. "ib-leaf01 port 3"
    where: str
    message: str
    #: the node concerned, when there is one
    host: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class _Expected:
    """What the inventory puts at one switch port: an HCA port, or the other end of a trunk."""

    node_port: NodePort | None = None
    peer_switch: str | None = None
    peer_port: int | None = None

    @property
    def label(self) -> str:
        if self.node_port is not None:
            return self.node_port.label
        return f"{self.peer_switch} port {self.peer_port}"


def compare(fabric: Fabric, found: Discovery) -> list[Finding]:
    """Every difference between the inventory's fabric and what the tools discovered, in a stable order."""
    by_guid = {sw.guid: name for name, sw in fabric.switches.items()}
    seen_switches = {guid for guid, node in found.nodes.items() if node.type == "switch"}
    findings: list[Finding] = []

    for name, sw in sorted(fabric.switches.items()):
        if sw.guid not in seen_switches:
            findings.append(Finding("absent-switch", name, f"switch {sw.guid} ({sw.model}"
                                    f"{', ' + sw.location if sw.location else ''}) is not in the discovered "
                                    "fabric: powered off, not cabled, or its GUID in the inventory is wrong"))
    for guid in sorted(seen_switches - by_guid.keys()):
        findings.append(Finding("unknown-switch", found.nodes[guid].description or guid,
                                f"switch {guid} is in the fabric but not in bitten_fabric.switches"))

    expected: dict[tuple[str, int], _Expected] = {}
    for port in fabric.node_ports:
        expected[(port.switch, port.switch_port)] = _Expected(node_port=port)
    for trunk in fabric.switch_links:
        expected[(trunk.switch, trunk.port)] = _Expected(peer_switch=trunk.peer, peer_port=trunk.peer_port)
        expected[(trunk.peer, trunk.peer_port)] = _Expected(peer_switch=trunk.switch, peer_port=trunk.port)

    # what the switches' ports have, by inventory switch name
    actual: dict[tuple[str, int], Link] = {}
    for (guid, number), seen in found.links.items():
        if guid in by_guid:
            actual[(by_guid[guid], number)] = seen
    down = {(by_guid[g], n): state for (g, n), state in found.down.items() if g in by_guid}
    present = {by_guid[g] for g in seen_switches if g in by_guid}

    identity = _Identifier(fabric, found, by_guid)
    located: dict[NodePort, tuple[str, int]] = {}
    for key, occupant in actual.items():
        who = identity.node_port(occupant.peer)
        if who is not None:
            located[who] = key

    for key in sorted(expected):
        switch, number = key
        want = expected[key]
        if switch not in present:
            continue
        where = f"{switch} port {number}"
        link = actual.get(key)
        if want.node_port is not None:
            np = want.node_port
            elsewhere = located.get(np)
            if elsewhere is not None and elsewhere != key:
                kind: Kind = "miscabled" if elsewhere[0] == switch else "misplaced"
                findings.append(Finding(kind, f"{elsewhere[0]} port {elsewhere[1]}", f"{np.label} is cabled here; "
                                        f"the inventory says {where}", host=np.node))
            if link is None:
                if elsewhere is None:
                    findings.append(_missing(where, np.label, down.get(key), host=np.node))
                continue
            who = identity.node_port(link.peer)
            if who == np:
                findings.extend(_rate(fabric, where, np.label, link, host=np.node))
            elif who is None:
                findings.append(Finding("miscabled", where, f"{_describe(link.peer, by_guid)} is cabled here; the "
                                        f"inventory says {np.label}", host=np.node))
            # another of the inventory's HCA ports: its own finding says where it belongs
        else:
            peer_switch, peer_port = str(want.peer_switch), int(want.peer_port or 0)
            first = key < (peer_switch, peer_port)
            if link is None:
                if peer_switch in present and (first or (peer_switch, peer_port) in actual):
                    findings.append(_missing(where, f"the trunk to {want.label}", down.get(key)))
                continue
            if identity.switch_of(link.peer) != (peer_switch, peer_port):
                findings.append(Finding("miscabled", where, f"{_describe(link.peer, by_guid)} is cabled here; the "
                                        f"inventory says {want.label}"))
            elif first:
                findings.extend(_rate(fabric, where, f"the trunk to {want.label}", link))

    for key in sorted(actual.keys() - expected.keys()):
        extra = actual[key]
        where = f"{key[0]} port {key[1]}"
        if identity.node_port(extra.peer) is not None:
            continue  # one of the inventory's HCA ports: reported above, where the inventory expects it
        peer = identity.switch_of(extra.peer)
        if peer is not None and peer[0] is not None:
            other = (peer[0], peer[1])
            if other in actual and (other in expected or other < key):
                continue  # the trunk is reported from its other end
        findings.append(Finding("unexpected", where, f"{_describe(extra.peer, by_guid)} is cabled here; the "
                                "inventory leaves the port free"))
    return findings


def _missing(where: str, label: str, state: tuple[str, str] | None, host: str | None = None) -> Finding:
    if state is not None:
        return Finding("missing", where, f"no link to {label}: the port is {state[0]}/{state[1]} (cable, "
                       "transceiver or the far end's port)", host=host)
    return Finding("missing", where, f"no link to {label}: nothing is connected", host=host)


def _rate(fabric: Fabric, where: str, label: str, link: Link, host: str | None = None) -> list[Finding]:
    out: list[Finding] = []
    if link.width and link.width != fabric.link_width:
        out.append(Finding("width", where, f"the link to {label} runs at {link.width}, the fabric at "
                           f"{fabric.link_width} (a bad cable or transceiver lane)", host=host))
    if link.speed and link.speed != fabric.link_speed:
        out.append(Finding("speed", where, f"the link to {label} runs at {link.speed}, the fabric at "
                           f"{fabric.link_speed} (cable, transceiver or firmware)", host=host))
    return out


def _describe(peer: Peer, by_guid: dict[str, str]) -> str:
    if peer.guid and peer.guid in by_guid:
        return f"{by_guid[peer.guid]} port {peer.port}"
    text = f'"{peer.description}"' if peer.description else "a device"
    if peer.type == "switch":
        return f"switch {text} port {peer.port}" + (f" ({peer.guid})" if peer.guid else "")
    guid = peer.port_guid or peer.guid
    return f"{text} port {peer.port}" + (f" ({guid})" if guid else "")


class _Identifier:
    """Who a discovered peer is, in the inventory's terms."""

    def __init__(self, fabric: Fabric, found: Discovery, by_guid: dict[str, str]) -> None:
        self.by_guid = by_guid
        self.by_port_guid = {p.guid: p for p in fabric.node_ports if p.guid}
        self.by_label = {(p.node, p.hca, p.port): p for p in fabric.node_ports}
        self.found = found

    def node_port(self, peer: Peer) -> NodePort | None:
        if peer.type == "switch":
            return None
        guid = peer.port_guid or self.found.port_guids.get((peer.guid or "", peer.port)) or peer.guid
        if guid and guid in self.by_port_guid:
            return self.by_port_guid[guid]
        host, _, device = peer.description.partition(" ")
        candidate = self.by_label.get((host, device.strip(), peer.port))
        if candidate is not None and candidate.guid and guid and candidate.guid != guid:
            return None  # the description names it, but its GUID is another HCA's: not the port we expect
        return candidate

    def switch_of(self, peer: Peer) -> tuple[str | None, int] | None:
        if peer.guid and peer.guid in self.by_guid:
            return self.by_guid[peer.guid], peer.port
        match = _SWITCH_DESC.match(peer.description)
        if match and match["name"] in self.by_guid.values():
            return match["name"], peer.port
        if peer.type == "switch":
            return None, peer.port
        return None
