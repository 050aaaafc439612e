"""The fabric as the InfiniBand diagnostics see it: parsers for ``ibnetdiscover`` and ``iblinkinfo`` output.

Formats are those rdma-core's infiniband-diags print (ibnetdiscover.c, iblinkinfo.c; Debian 13 ships 56.1):

- ``ibnetdiscover``: one block per node (``vendid=``, ``devid=``, ``switchguid=``/``caguid=``, then ``Switch`` or
  ``Ca`` with the port count, ``"S-<guid>"``/``"H-<guid>"`` and the NodeDescription), then one line per connected
  port: ``[port](port guid) "S-<peer guid>"[peer port](peer port guid) # ... lid N 4xNDR``.
- ``iblinkinfo`` (default and ``--line`` mode): a ``Switch: 0x<guid> <desc>:`` or ``CA: <desc>:`` header, then one
  line per port with the active width and speed, the port state and physical state and the peer (LID, port,
  NodeDescription), e.g. ``1 3[  ] ==( 4X 106.25 Gbps Active/  LinkUp)==> 7 1[  ] "gpu01 mlx5_0" ( )``; ports that
  are down show ``==(  Down/ Polling)==>  [  ] "" ( )``.

Standard library only. Lines that match no known form are collected in ``unparsed`` rather than ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

NodeType = Literal["switch", "ca", "router"]
_TYPE = {"S": "switch", "H": "ca", "R": "router", "Switch": "switch", "Ca": "ca", "Rt": "router", "CA": "ca",
         "Router": "router"}

#: libibmad's active-speed strings (iblinkinfo) and the IBTA speed names (ibnetdiscover prints the names)
SPEEDS = {"2.5 Gbps": "SDR", "5.0 Gbps": "DDR", "10.0 Gbps": "QDR", "10.0 Gbps (FDR10)": "FDR10",
          "14.0625 Gbps": "FDR", "25.78125 Gbps": "EDR", "53.125 Gbps": "HDR", "106.25 Gbps": "NDR",
          "212.5 Gbps": "XDR"}


def guid_text(value: str | int) -> str:
    """A GUID as bitten writes it: 0x + 16 lower-case hex digits (the tools drop leading zeros in places)."""
    number = value if isinstance(value, int) else int(value, 16)
    return f"0x{number:016x}"


@dataclass(frozen=True)
class Peer:
    """The far end of a link."""

    type: NodeType
    #: node GUID (ibnetdiscover, iblinkinfo --line); None when only the NodeDescription is known
    guid: str | None
    port: int
    description: str
    #: port GUID of a CA port (ibnetdiscover prints it)
    port_guid: str | None = None


@dataclass(frozen=True)
class Link:
    """A connected port of a node, as discovered."""

    node_guid: str
    port: int
    peer: Peer
    width: str | None = None
    speed: str | None = None
    state: str | None = None
    physical_state: str | None = None


@dataclass
class Node:
    type: NodeType
    guid: str
    description: str
    ports: int | None = None


@dataclass
class Discovery:
    """What one or more tool outputs say about the fabric."""

    nodes: dict[str, Node] = field(default_factory=dict)
    #: (node GUID, port) -> link, for every connected port seen
    links: dict[tuple[str, int], Link] = field(default_factory=dict)
    #: (node GUID, port) -> (state, physical state) of ports that are down
    down: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    #: CA port GUIDs: (node GUID, port) -> port GUID
    port_guids: dict[tuple[str, int], str] = field(default_factory=dict)
    #: lines no parser understood (with their source and number)
    unparsed: list[str] = field(default_factory=list)

    def merge(self, other: Discovery) -> Discovery:
        """Combine two discoveries (ibnetdiscover's GUIDs with iblinkinfo's states): known values win."""
        out = Discovery(nodes={**other.nodes, **self.nodes}, port_guids={**other.port_guids, **self.port_guids},
                        unparsed=[*self.unparsed, *other.unparsed])
        for key in self.links.keys() | other.links.keys():
            mine, theirs = self.links.get(key), other.links.get(key)
            if mine is None or theirs is None:
                out.links[key] = mine or theirs  # type: ignore[assignment]
                continue
            peer = mine.peer if mine.peer.guid else theirs.peer
            out.links[key] = Link(mine.node_guid, mine.port, peer, mine.width or theirs.width,
                                  mine.speed or theirs.speed, mine.state or theirs.state,
                                  mine.physical_state or theirs.physical_state)
        for key, value in {**other.down, **self.down}.items():
            if key not in out.links:
                out.down[key] = value
        return out

    def switch_guid_of(self, description: str) -> str | None:
        found = [n.guid for n in self.nodes.values() if n.type == "switch" and n.description == description]
        return found[0] if len(found) == 1 else None


# --- ibnetdiscover -------------------------------------------------------------------------------------------

_ND_NODE = re.compile(r'^(Switch|Ca|Rt)\s+(\d+)\s+"([SHR])-([0-9a-fA-F]+)"\s+#\s+"(.*?)"')
_ND_PORT = re.compile(
    r'^\[(?P<port>\d+)\](?:\[ext \d+\])?(?:\((?P<pguid>[0-9a-fA-F]+)\))?\s+'
    r'"(?P<rtype>[SHR])-(?P<rguid>[0-9a-fA-F]+)"\[(?P<rport>\d+)\](?:\[ext \d+\])?'
    r'(?:\s*\((?P<rpguid>[0-9a-fA-F]+)\))?\s*#\s*(?P<rest>.*)$')
_ND_REST_SWITCH = re.compile(r'^"(?P<desc>.*?)"\s+lid\s+\d+\s+(?P<width>\d+x|\?\?)(?P<speed>[A-Z0-9]+|\?\?\?)')
_ND_REST_CA = re.compile(r'^lid\s+\d+\s+lmc\s+\d+\s+"(?P<desc>.*?)"\s+lid\s+\d+\s+(?P<width>\d+x|\?\?)'
                         r'(?P<speed>[A-Z0-9]+|\?\?\?)')
_ND_IGNORED = re.compile(r"^(#|vendid=|devid=|sysimgguid=|switchguid=|caguid=|rtguid=|Chassis |Hostname: |"
                         r"Non-Chassis Nodes|Spine Nodes|Line Nodes|\s*$)")


def _width(text: str) -> str | None:
    return None if "?" in text else text.upper()


def _speed(text: str) -> str | None:
    return None if "?" in text else text


def parse_ibnetdiscover(text: str, source: str = "ibnetdiscover") -> Discovery:
    out = Discovery()
    current: Node | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        node = _ND_NODE.match(line)
        if node:
            current = Node(type=_TYPE[node[1]], guid=guid_text(node[4]), ports=int(node[2]),  # type: ignore[arg-type]
                           description=node[5])
            out.nodes[current.guid] = current
            continue
        port = _ND_PORT.match(line)
        if port and current is not None:
            rest = port["rest"]
            detail = (_ND_REST_SWITCH if current.type == "switch" else _ND_REST_CA).match(rest)
            if detail is None:
                out.unparsed.append(f"{source}:{number}: {raw}")
                continue
            peer_type: NodeType = _TYPE[port["rtype"]]  # type: ignore[assignment]
            peer = Peer(type=peer_type, guid=guid_text(port["rguid"]), port=int(port["rport"]),
                        description=detail["desc"],
                        port_guid=guid_text(port["rpguid"]) if port["rpguid"] else None)
            key = (current.guid, int(port["port"]))
            out.links[key] = Link(current.guid, key[1], peer, _width(detail["width"]), _speed(detail["speed"]),
                                  state="Active")
            if port["pguid"]:
                out.port_guids[key] = guid_text(port["pguid"])
            if peer.port_guid:
                out.port_guids[(peer.guid or "", peer.port)] = peer.port_guid
            continue
        if not _ND_IGNORED.match(line):
            out.unparsed.append(f"{source}:{number}: {raw}")
    return out


# --- iblinkinfo ----------------------------------------------------------------------------------------------

_LI_HEADER = re.compile(r"^(Switch|CA|Router): (?:(0x[0-9a-fA-F]+) )?(.*):$")
_LI_LINK = (r'==\(\s*(?:(?P<width>\d+X)\s+(?P<speed>[\d.]+ Gbps(?: \(FDR10\))?)\s+)?'
            r'(?P<state>\w+)/\s*(?P<phys>\w+)\)(?:\s*\(HOQ:\d+ VL_Stall:\d+\))?==>\s*')
_LI_REMOTE = (r'(?:(?:(?P<rguid>0x[0-9a-fA-F]+)\s+)?(?P<rlid>\d+)\s+(?P<rport>\d+)\[\s*\d*\]\s+"(?P<rdesc>.*)"'
              r'\s+\((?P<msg>.*)\)|\[\s*\]\s+""\s+\(\s*\)|"Port not available")')
_LI_PORT = re.compile(r'^(?:(?P<pguid>0x[0-9a-fA-F]+)\s+)?(?P<lid>\d+)\s+(?P<port>\d+)\[\s*\d*\]\s+'
                      + _LI_LINK + _LI_REMOTE + r"\s*$")
_LI_LINE = re.compile(r'^(?P<guid>0x[0-9a-fA-F]+)\s+"\s*(?P<desc>.*?)"\s+(?P<lid>\d+)\s+(?P<port>\d+)\[\s*\d*\]\s+'
                      + _LI_LINK + _LI_REMOTE + r"\s*$")


def parse_iblinkinfo(text: str, source: str = "iblinkinfo") -> Discovery:
    """Default (header + ports) and ``--line`` output. CA ports are keyed by their port GUID (the only GUID the
    default mode prints for a CA); switches by their GUID."""
    out = Discovery()
    current: Node | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        header = _LI_HEADER.match(line)
        if header and "==(" not in line:
            kind: NodeType = _TYPE[header[1]]  # type: ignore[assignment]
            guid = guid_text(header[2]) if header[2] else None
            current = Node(type=kind, guid=guid or "", description=header[3])
            if guid:
                out.nodes[guid] = current
            continue
        match = _LI_LINE.match(line)
        if match:
            # --line: "<port guid> "<node desc>" lid port ==(...)==> <remote guid> ..." (switch: its GUID)
            desc = match["desc"]
            is_switch = desc.startswith("MF0;") or (current is not None and current.type == "switch")
            node = Node(type="switch" if is_switch else "ca", guid=guid_text(match["guid"]), description=desc)
            out.nodes.setdefault(node.guid, node)
            _add_port(out, node, match, port_guid=None if is_switch else node.guid)
            continue
        match = _LI_PORT.match(line)
        if match and current is not None:
            if current.type == "switch":
                _add_port(out, current, match, port_guid=None)
            elif match["pguid"]:
                # a CA: key its ports by port GUID (the node GUID is not printed in default mode)
                pguid = guid_text(match["pguid"])
                node = Node(type=current.type, guid=pguid, description=current.description)
                out.nodes.setdefault(pguid, node)
                _add_port(out, node, match, port_guid=pguid)
            continue
        out.unparsed.append(f"{source}:{number}: {raw}")
    return out


def _add_port(out: Discovery, node: Node, match: re.Match[str], port_guid: str | None) -> None:
    key = (node.guid, int(match["port"]))
    if port_guid:
        out.port_guids[key] = port_guid
    if match["rport"] is None:
        out.down[key] = (match["state"], match["phys"])
        return
    desc = match["rdesc"]
    peer_type: NodeType = "switch" if desc.startswith("MF0;") else "ca"
    rguid = guid_text(match["rguid"]) if match["rguid"] else None
    peer = Peer(type=peer_type, guid=rguid, port=int(match["rport"]), description=desc)
    out.links[key] = Link(node.guid, key[1], peer, match["width"], SPEEDS.get(match["speed"] or "", match["speed"]),
                          match["state"], match["phys"])
