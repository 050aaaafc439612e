"""The fabric section (``bitten_fabric``): the InfiniBand fabric's switches, cabling, subnet manager, partitions,
IPoIB and Slurm's view of it.

What each value must be on its own is checked here; what the fabric must be as a whole (every switch a cable names
exists, no switch port used twice, every compute node cabled) is checked in ``bitten.fabric.checks``.

A cable entry may describe several ports at once: ``node`` and ``hca`` take Slurm's hostlist notation
(``gpu[01-04]``, ``mlx5_[0-7]``) and ``switch_port`` a range (``1-32``); the node/HCA pairs (node-major) are cabled
to the switch ports in order, so the counts must match. A cabling plan written one port per line works too.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Annotated, Any, Literal

import hostlist
from pydantic import Field, StringConstraints, model_validator

from bitten.site.model.types import Name, Section, Strict, keys
from bitten.site.model.values import Guid, PKey

#: IB link widths and speeds as the diagnostics print them (iblinkinfo: "4X", ibnetdiscover: "4xNDR")
LinkWidth = Literal["1X", "2X", "4X", "8X", "12X"]
LinkSpeed = Literal["SDR", "DDR", "QDR", "FDR10", "FDR", "EDR", "HDR", "NDR", "XDR"]


@dataclass(frozen=True)
class SwitchModel:
    ports: int
    speed: LinkSpeed
    width: LinkWidth
    #: can run a subnet manager itself (managed switch)
    managed: bool
    description: str


#: switch models bitten knows; the port count is what `switch_port` may go up to
SWITCH_MODELS: dict[str, SwitchModel] = {
    "QM9700": SwitchModel(64, "NDR", "4X", True, "NVIDIA Quantum-2 QM9700: 64 NDR 400 Gb/s ports in 32 OSFP cages, "
                          "managed (MLNX-OS, internal subnet manager)"),
    "QM9790": SwitchModel(64, "NDR", "4X", False, "NVIDIA Quantum-2 QM9790: 64 NDR 400 Gb/s ports, externally "
                          "managed (UFM or a host subnet manager)"),
}


def expand_ports(value: int | str) -> list[int]:
    """Switch ports of ``7``, ``"7"``, ``"1-8"`` or ``"1-4,9-12"``, in order."""
    if isinstance(value, int):
        return [value]
    return list(_ports(str(value)))


@lru_cache(maxsize=4096)
def _ports(value: str) -> tuple[int, ...]:
    # a cabling plan repeats the same ranges (1-8, 9-16, ...) on every leaf; each cable is expanded twice
    ports: list[int] = []
    for part in value.split(","):
        part = part.strip()
        match = _PORTS.fullmatch(part)
        if not match:
            raise ValueError(f"{value!r} is not a port or port range (expected e.g. 7, 1-8 or 1-4,9-12)")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ValueError(f"port range {part} runs backwards")
        ports.extend(range(first, last + 1))
    return tuple(ports)


_PORTS = re.compile(r"(\d+)(?:-(\d+))?")


def expand_names(pattern: str) -> list[str]:
    """Host or HCA names of a hostlist pattern: gpu[01-02] -> gpu01, gpu02."""
    return list(_expanded(pattern))


@lru_cache(maxsize=4096)
def _expanded(pattern: str) -> tuple[str, ...]:
    # a site's cabling plan names the same HCA pattern (mlx5_[0-7]) on every node, and most nodes by their plain
    # name, which hostlist would return as it is: both are answered without it (at 10,000 nodes ~0.3 s of the load)
    if not any(c in pattern for c in "[],"):
        return (pattern,) if pattern else ()
    try:
        return tuple(str(n) for n in hostlist.expand_hostlist(pattern))
    except hostlist.BadHostlist as exc:
        raise ValueError(f"{pattern!r} is not a name or hostlist pattern: {exc}") from None


PortSpec = int | Annotated[str, StringConstraints(pattern=r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$")]


class Switch(Strict):
    """One InfiniBand switch."""

    role: Literal["leaf", "spine"]
    #: node GUID (ibswitches, ibnetdiscover's switchguid)
    guid: Guid
    model: Literal["QM9700", "QM9790"] = "QM9700"
    #: management (MLNX-OS/NVOS) address on the management network
    management: ipaddress.IPv4Address | None = None
    #: where it is (rack, unit), for the messages of `bitten fabric check`
    location: str = ""

    @property
    def spec(self) -> SwitchModel:
        return SWITCH_MODELS[self.model]


@dataclass(frozen=True)
class NodePort:
    """One HCA port of a node and the switch port its cable goes to (one expanded cable entry)."""

    node: str
    hca: str
    port: int
    switch: str
    switch_port: int
    #: the port GUID when the inventory records it
    guid: str | None
    #: index of the bitten_fabric.cables entry it comes from
    entry: int

    @property
    def label(self) -> str:
        return f"{self.node} {self.hca}" + (f" port {self.port}" if self.port != 1 else "")


@dataclass(frozen=True)
class SwitchLink:
    """One cable between two switch ports (one expanded trunk entry)."""

    switch: str
    port: int
    peer: str
    peer_port: int
    entry: int


class Cable(Strict):
    """HCA port(s) of node(s) and the switch port(s) their cables go to."""

    #: host name or hostlist pattern (gpu[01-04])
    node: str
    #: HCA device name or pattern (mlx5_0, mlx5_[0-7]), as the node names it (ibstat, /sys/class/infiniband)
    hca: str = "mlx5_0"
    #: HCA port (ConnectX-7 OSFP cards have one)
    port: int = Field(default=1, ge=1, le=2)
    switch: str
    #: switch port or range (1-8), in the order of the node/HCA pairs
    switch_port: PortSpec
    #: port GUIDs (ibstat -p), one per expanded port; needed for nodes in a tenant partition
    guids: tuple[Guid, ...] = ()

    @model_validator(mode="after")
    def _counts(self) -> Cable:
        pairs = len(expand_names(self.node)) * len(expand_names(self.hca))
        ports = expand_ports(self.switch_port)
        if pairs != len(ports):
            raise ValueError(f"{pairs} node port(s) ({self.node} x {self.hca}) but {len(ports)} switch port(s) "
                             f"({self.switch_port}); give one switch port per node/HCA pair")
        if self.guids and len(self.guids) != pairs:
            raise ValueError(f"{len(self.guids)} GUID(s) for {pairs} port(s); give one per port, in order")
        return self

    def expand(self, entry: int) -> list[NodePort]:
        pairs = [(n, h) for n in expand_names(self.node) for h in expand_names(self.hca)]
        guids: list[str | None] = list(self.guids) or [None] * len(pairs)
        return [NodePort(node=n, hca=h, port=self.port, switch=self.switch, switch_port=sp, guid=g, entry=entry)
                for (n, h), sp, g in zip(pairs, expand_ports(self.switch_port), guids, strict=True)]


class Trunk(Strict):
    """Cable(s) between two switches: ``ports`` of ``switch`` to ``peer_ports`` of ``peer``, in order."""

    switch: str
    ports: PortSpec
    peer: str
    peer_ports: PortSpec

    @model_validator(mode="after")
    def _counts(self) -> Trunk:
        mine, theirs = expand_ports(self.ports), expand_ports(self.peer_ports)
        if len(mine) != len(theirs):
            raise ValueError(f"{len(mine)} port(s) on {self.switch} but {len(theirs)} on {self.peer}")
        if self.switch == self.peer:
            raise ValueError(f"a trunk from {self.switch} to itself")
        return self

    def expand(self, entry: int) -> list[SwitchLink]:
        return [SwitchLink(self.switch, a, self.peer, b, entry)
                for a, b in zip(expand_ports(self.ports), expand_ports(self.peer_ports), strict=True)]


class SubnetManager(Strict):
    """Who runs the subnet manager: OpenSM on one or two hosts (master, standby), or UFM."""

    type: Literal["opensm", "ufm"]
    #: opensm: one host, or two (the first is the master, the second the standby)
    hosts: tuple[str, ...] = ()
    #: SM priorities of the master and the standby (0-15; the highest priority wins the election)
    priorities: tuple[int, int] = (14, 13)
    routing_engine: Literal["ftree", "updn", "dnup", "minhop", "dfsssp", "sssp", "nue", "lash", "dor"] = "ftree"
    #: seconds between light sweeps
    sweep_interval: int = Field(default=10, ge=1, le=3600)
    #: ufm: the UFM server's management address (UFM runs the SM; bitten installs none)
    ufm_address: str | None = None

    @model_validator(mode="after")
    def _placement(self) -> SubnetManager:
        if self.type == "opensm":
            if not 1 <= len(self.hosts) <= 2:
                raise ValueError("a host-based OpenSM runs on one host or on a master/standby pair: list 1 or 2 hosts")
            if len(set(self.hosts)) != len(self.hosts):
                raise ValueError("the master and the standby must be different hosts")
            if self.ufm_address is not None:
                raise ValueError("ufm_address is for type ufm")
        else:
            if self.hosts:
                raise ValueError("a UFM-managed fabric runs no host SM: remove hosts (or use type opensm)")
            if not self.ufm_address:
                raise ValueError("type ufm needs ufm_address, the UFM server that runs the subnet manager")
        if not (0 <= self.priorities[1] < self.priorities[0] <= 15):
            raise ValueError("priorities must be master > standby, both 0-15 (e.g. [14, 13])")
        return self


class IbPartition(Strict):
    """An InfiniBand partition (P_Key) for a tenant: its members are full members, nobody else is."""

    name: Name
    pkey: PKey
    #: inventory groups or hosts whose HCA ports are full members
    members: tuple[str, ...] = Field(min_length=1)
    #: create the IPoIB broadcast group for this partition
    ipoib: bool = False
    description: str = ""

    @property
    def pkey_hex(self) -> str:
        return f"0x{self.pkey:04x}"


class Ipoib(Strict):
    """IP over InfiniBand on the nodes: which HCA port carries it and the addresses it gets."""

    #: the HCA whose port 1 carries IPoIB
    hca: str = "mlx5_0"
    #: the kernel's interface name for that port
    interface: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{0,11}$")] = "ib0"
    #: the IPoIB subnet; a node's address keeps the host part of its bitten_ip (10.20.1.5 -> 10.30.1.5)
    subnet: ipaddress.IPv4Network
    mode: Literal["datagram", "connected"] = "datagram"
    #: None: 4092 in datagram mode (4 KiB IB MTU), 65520 in connected mode
    mtu: int | None = Field(default=None, ge=1280, le=65520)
    #: a tenant partition to run IPoIB in (a child interface <interface>.<pkey|0x8000>); None: the default one
    partition: str | None = None

    def address_for(self, ip: ipaddress.IPv4Address) -> ipaddress.IPv4Interface:
        """A node's IPoIB address: the host part of its cluster address under the IPoIB prefix."""
        host = int(ip) & int(self.subnet.hostmask)
        return ipaddress.IPv4Interface((int(self.subnet.network_address) | host, self.subnet.prefixlen))

    @property
    def effective_mtu(self) -> int:
        if self.mtu is not None:
            return self.mtu
        return 4092 if self.mode == "datagram" else 65520

    @model_validator(mode="after")
    def _mtu(self) -> Ipoib:
        if self.mode == "datagram" and self.mtu is not None and self.mtu > 4092:
            raise ValueError(f"MTU {self.mtu} needs connected mode: datagram mode carries at most 4092 (4 KiB IB MTU)")
        return self


class SlurmTopology(Strict):
    """How Slurm sees the fabric (topology.conf)."""

    #: tree: leaf switches and spines (topology/tree); block: each leaf's nodes are a block (topology/block);
    #: none: no topology.conf, TopologyPlugin stays flat
    plugin: Literal["tree", "block", "none"] = "tree"
    #: topology/block: the planning base block size and larger aggregates (each a power of two times the one
    #: before); None: the smallest leaf's node count
    block_sizes: tuple[int, ...] | None = None

    @model_validator(mode="after")
    def _sizes(self) -> SlurmTopology:
        sizes = self.block_sizes
        if sizes is not None:
            if self.plugin != "block":
                raise ValueError("block_sizes is for plugin block")
            if not sizes or any(s < 1 for s in sizes):
                raise ValueError("block_sizes must be positive node counts")
            for smaller, larger in pairwise(sizes):
                ratio = larger // smaller
                if larger % smaller or ratio < 2 or ratio & (ratio - 1):
                    raise ValueError(f"block size {larger} is not a power of two times {smaller} (Slurm's rule for "
                                     "BlockSizes)")
        return self


class Fabric(Strict):
    """The InfiniBand fabric: switches, cabling, subnet manager, partitions, IPoIB and Slurm's view of it."""

    name: Name
    description: str = ""
    #: every link is expected at this width and speed (Quantum-2 with ConnectX-7: NDR 4x)
    link_width: LinkWidth = "4X"
    link_speed: LinkSpeed = "NDR"
    subnet_manager: SubnetManager
    #: 64-bit subnet prefix (OpenSM subnet_prefix)
    subnet_prefix: Guid = "0xfe80000000000000"
    switches: dict[Name, Switch] = Field(min_length=1)
    cables: tuple[Cable, ...] = ()
    trunks: tuple[Trunk, ...] = ()
    partitions: tuple[IbPartition, ...] = ()
    ipoib: Ipoib | None = None
    slurm: SlurmTopology = Field(default_factory=SlurmTopology)

    @cached_property
    def node_ports(self) -> list[NodePort]:
        return [p for i, cable in enumerate(self.cables) for p in cable.expand(i)]

    @cached_property
    def switch_links(self) -> list[SwitchLink]:
        return [link for i, trunk in enumerate(self.trunks) for link in trunk.expand(i)]

    @cached_property
    def ports_by_node(self) -> dict[str, list[NodePort]]:
        out: dict[str, list[NodePort]] = {}
        for port in self.node_ports:
            out.setdefault(port.node, []).append(port)
        return out

    def ports_of(self, node: str) -> list[NodePort]:
        """The node's HCA ports in cabling-plan order (an index: the checks ask for every node's)."""
        return list(self.ports_by_node.get(node, ()))

    @cached_property
    def nodes(self) -> list[str]:
        """Hosts with at least one cable, sorted."""
        return sorted({p.node for p in self.node_ports})

    def leaves_of(self, node: str) -> list[str]:
        return sorted({p.switch for p in self.ports_of(node) if self.switches.get(p.switch, None) is not None
                       and self.switches[p.switch].role == "leaf"})

    @cached_property
    def leaf_nodes(self) -> dict[str, list[str]]:
        """Leaf switch -> the hosts cabled to it, switches in name order."""
        out: dict[str, set[str]] = {name: set() for name, sw in sorted(self.switches.items()) if sw.role == "leaf"}
        for port in self.node_ports:
            if port.switch in out:
                out[port.switch].add(port.node)
        return {name: sorted(hosts) for name, hosts in out.items()}

    def leaves_for(self, hosts: list[str]) -> dict[str, list[str]]:
        """Leaf switch -> those of ``hosts`` cabled to it; leaves without any left out."""
        wanted = set(hosts)
        out = {leaf: [n for n in nodes if n in wanted] for leaf, nodes in self.leaf_nodes.items()}
        return {leaf: nodes for leaf, nodes in out.items() if nodes}

    @property
    def ipoib_link(self) -> str | None:
        """The interface that carries the IPoIB address: ib0, or its partition child ib0.8002."""
        if self.ipoib is None:
            return None
        part = self.partition(self.ipoib.partition) if self.ipoib.partition else None
        if part is None:
            return self.ipoib.interface
        return f"{self.ipoib.interface}.{part.pkey | 0x8000:04x}"

    @cached_property
    def spine_leaves(self) -> dict[str, list[str]]:
        """Spine switch -> the leaf switches trunked to it."""
        out: dict[str, set[str]] = {name: set() for name, sw in sorted(self.switches.items()) if sw.role == "spine"}
        for link in self.switch_links:
            for a, b in ((link.switch, link.peer), (link.peer, link.switch)):
                if a in out and b in self.switches and self.switches[b].role == "leaf":
                    out[a].add(b)
        return {name: sorted(leaves) for name, leaves in out.items()}

    def partition(self, name: str) -> IbPartition | None:
        return next((p for p in self.partitions if p.name == name), None)


def _declared_partitions(raw: Any) -> set[str]:
    parts = raw.get("partitions") if isinstance(raw, dict) else None
    if not isinstance(parts, list):
        return set()
    return {str(p["name"]) for p in parts if isinstance(p, dict) and p.get("name") is not None}


SECTIONS = (
    Section("bitten_fabric", "fabric", Fabric,
            "the InfiniBand fabric: switches, cabling, subnet manager, partitions, IPoIB",
            declares={"fabric_switches": keys("switches"), "fabric_partitions": _declared_partitions}),
)
