"""Cross-checks of the InfiniBand fabric against itself and the rest of the site.

Each value of ``bitten_fabric`` is validated on its own (bitten.site.model.fabric); here: every switch a cable or
trunk names exists, no switch port or HCA port is cabled twice, every compute node is on the fabric, the subnet
manager's hosts are cabled, tenant partitions can be written (their members' port GUIDs are known), IPoIB
addresses are unique and Slurm's topology plugin can describe the cabling.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.model import Fabric
from bitten.site.problems import Problem

VAR = "bitten_fabric"


class _Where:
    def __init__(self, locator: Locator) -> None:
        self.locator = locator

    def __call__(self, *path: str | int) -> str:
        return self.locator.find(None, VAR, list(path))


def _field(*path: str | int) -> str:
    out = VAR
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_fabric(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    fabric = site.fabric
    if fabric is None:
        return
    where = _Where(locator)
    yield from _references(site, fabric, where)
    yield from _ports_used_once(fabric, where)
    yield from _guids_unique(fabric, where)
    yield from _nodes_on_fabric(site, fabric, locator, where)
    yield from _subnet_manager(site, fabric, where)
    yield from _partitions(site, fabric, where)
    yield from _ipoib(site, fabric, locator, where)
    yield from _slurm_topology(site, fabric, where)


def _known(names: set[str] | list[str]) -> str:
    return ", ".join(sorted(names)) or "none defined"


def _references(site: m.Site, fabric: Fabric, where: _Where) -> Iterator[Problem]:
    switches = set(fabric.switches)
    nodes_of: dict[int, set[str]] = defaultdict(set)
    for port in fabric.node_ports:
        nodes_of[port.entry].add(port.node)
    for index, cable in enumerate(fabric.cables):
        if cable.switch not in switches:
            yield Problem(file=where("cables", index, "switch"), field=_field("cables", index, "switch"),
                          message=f"unknown switch {cable.switch!r}",
                          fix=f"name a switch of bitten_fabric.switches ({_known(switches)}) or define it there")
        for node in sorted(nodes_of[index]):
            if node not in site.nodes:
                yield Problem(file=where("cables", index, "node"), field=_field("cables", index, "node"),
                              message=f"host {node!r} is not in the inventory",
                              fix="name a host of the inventory (or add the host to hosts.yml)")
    for index, trunk in enumerate(fabric.trunks):
        for key in ("switch", "peer"):
            name = getattr(trunk, key)
            if name not in switches:
                yield Problem(file=where("trunks", index, key), field=_field("trunks", index, key),
                              message=f"unknown switch {name!r}",
                              fix=f"name a switch of bitten_fabric.switches ({_known(switches)}) or define it there")
    ports_of = {name: sw.spec.ports for name, sw in fabric.switches.items()}
    for port in fabric.node_ports:
        limit = ports_of.get(port.switch)
        if limit is not None and not 1 <= port.switch_port <= limit:
            yield Problem(file=where("cables", port.entry, "switch_port"),
                          field=_field("cables", port.entry, "switch_port"),
                          message=f"{port.switch} has ports 1-{limit} ({fabric.switches[port.switch].model}); "
                          f"{port.label} is cabled to port {port.switch_port}",
                          fix="correct the switch port in the cabling plan")
    for link in fabric.switch_links:
        for name, number, key in ((link.switch, link.port, "ports"), (link.peer, link.peer_port, "peer_ports")):
            limit = ports_of.get(name)
            if limit is not None and not 1 <= number <= limit:
                yield Problem(file=where("trunks", link.entry, key), field=_field("trunks", link.entry, key),
                              message=f"{name} has ports 1-{limit}; the trunk uses port {number}",
                              fix="correct the port in the cabling plan")
    if fabric.subnet_manager.routing_engine == "ftree":
        for link in fabric.switch_links:
            a, b = fabric.switches.get(link.switch), fabric.switches.get(link.peer)
            if a is not None and b is not None and a.role == b.role:
                yield Problem(file=where("trunks", link.entry), field=_field("trunks", link.entry),
                              message=f"trunk between two {a.role} switches ({link.switch}, {link.peer}): the ftree "
                              "routing engine needs a fat tree, where leaves link only to spines",
                              fix="cable leaves to spines, or choose subnet_manager.routing_engine updn")
                break


def _ports_used_once(fabric: Fabric, where: _Where) -> Iterator[Problem]:
    # counted first, described only where a port is used twice (at 10,000 nodes there are ~30,000 ports)
    switch_ports = Counter((port.switch, port.switch_port) for port in fabric.node_ports)
    for link in fabric.switch_links:
        switch_ports[(link.switch, link.port)] += 1
        switch_ports[(link.peer, link.peer_port)] += 1
    twice = {key for key, count in switch_ports.items() if count > 1}
    users: dict[tuple[str, int], list[tuple[str, str, int]]] = defaultdict(list)
    if twice:
        for port in fabric.node_ports:
            if (port.switch, port.switch_port) in twice:
                users[(port.switch, port.switch_port)].append((port.label, "cables", port.entry))
        for link in fabric.switch_links:
            if (link.switch, link.port) in twice:
                users[(link.switch, link.port)].append((f"{link.peer} port {link.peer_port}", "trunks", link.entry))
            if (link.peer, link.peer_port) in twice:
                users[(link.peer, link.peer_port)].append((f"{link.switch} port {link.port}", "trunks", link.entry))
    for (switch, number), who in sorted(users.items()):
        listed = "; ".join(f"{label} ({_field(section, entry)})" for label, section, entry in who)
        for _label, section, entry in dict.fromkeys(who):
            yield Problem(file=where(section, entry), field=_field(section, entry),
                          message=f"switch {switch} port {number} is used twice: {listed}",
                          fix="one cable per switch port: correct the port numbers in the cabling plan")
    hca_ports = Counter((port.node, port.hca, port.port) for port in fabric.node_ports)
    hca_users: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    if any(count > 1 for count in hca_ports.values()):
        for port in fabric.node_ports:
            if hca_ports[(port.node, port.hca, port.port)] > 1:
                hca_users[(port.node, port.hca, port.port)].append(port.entry)
    for (node, hca, number), entries in sorted(hca_users.items()):
        for entry in dict.fromkeys(entries):
            yield Problem(file=where("cables", entry), host=node, field=_field("cables", entry),
                          message=f"{node} {hca} port {number} is cabled twice (bitten_fabric.cables entries "
                          f"{', '.join(str(e) for e in entries)})",
                          fix="an HCA port takes one cable: correct the node, HCA or port")


def _guids_unique(fabric: Fabric, where: _Where) -> Iterator[Problem]:
    counts = Counter(switch.guid for switch in fabric.switches.values())
    counts.update(port.guid for port in fabric.node_ports if port.guid)
    twice = {guid for guid, count in counts.items() if count > 1}
    owners: dict[str, list[tuple[str, tuple[str | int, ...]]]] = defaultdict(list)
    if twice:
        for name, switch in fabric.switches.items():
            if switch.guid in twice:
                owners[switch.guid].append((f"switch {name}", ("switches", name, "guid")))
        for port in fabric.node_ports:
            if port.guid in twice:
                owners[port.guid].append((port.label, ("cables", port.entry, "guids")))
    for guid, who in sorted(owners.items()):
        names = ", ".join(w for w, _ in who)
        for _w, path in dict.fromkeys(who):
            yield Problem(file=where(*path), field=_field(*path), message=f"GUID {guid} is used by {names}",
                          fix="GUIDs are unique: copy each one from ibstat -p / ibswitches again")


def _nodes_on_fabric(site: m.Site, fabric: Fabric, locator: Locator, where: _Where) -> Iterator[Problem]:
    on_fabric = set(fabric.nodes)
    for host in site.compute_nodes:
        if host not in on_fabric:
            yield Problem(file=locator.find(host, "bitten_ip"), host=host, field=_field("cables"),
                          message="compute node is in no fabric: no cable of bitten_fabric.cables reaches it",
                          fix=f"add its HCA ports to bitten_fabric.cables (e.g. {{node: {host}, hca: mlx5_0, "
                          "switch: <leaf>, switch_port: <n>})")
    compute = set(site.compute_nodes)
    for port in fabric.node_ports:
        switch = fabric.switches.get(port.switch)
        if switch is not None and switch.role == "spine" and port.node in compute:
            yield Problem(file=where("cables", port.entry, "switch"), host=port.node,
                          field=_field("cables", port.entry, "switch"),
                          message=f"compute node port {port.label} is cabled to spine {port.switch}: compute nodes "
                          "hang off leaf switches (and Slurm's topology places them there)",
                          fix="cable it to a leaf switch, or correct the switch's role")


def _subnet_manager(site: m.Site, fabric: Fabric, where: _Where) -> Iterator[Problem]:
    sm = fabric.subnet_manager
    on_fabric = set(fabric.nodes)
    for index, host in enumerate(sm.hosts):
        if host not in site.nodes:
            yield Problem(file=where("subnet_manager", "hosts", index), field=_field("subnet_manager", "hosts", index),
                          message=f"host {host!r} is not in the inventory", fix="name a host of the inventory")
        elif host not in on_fabric:
            yield Problem(file=where("subnet_manager", "hosts", index), host=host,
                          field=_field("subnet_manager", "hosts", index),
                          message="the subnet manager host has no cable on the fabric: OpenSM needs an HCA port there",
                          fix="add the host's HCA port to bitten_fabric.cables, or run the SM on a cabled host")


def _partitions(site: m.Site, fabric: Fabric, where: _Where) -> Iterator[Problem]:
    names: dict[str, int] = {}
    pkeys: dict[int, int] = {}
    for index, part in enumerate(fabric.partitions):
        # where() reads fabric.yml again with its lines (1.7 MB at 10,000 nodes): only for a problem
        field = _field("partitions", index)
        if part.name in names or part.name == "Default":
            yield Problem(file=where("partitions", index), field=f"{field}.name",
                          message=f"partition {part.name} is defined twice" if part.name in names
                          else "Default is OpenSM's own partition (P_Key 0x7fff)",
                          fix="give every partition its own name")
        names.setdefault(part.name, index)
        if part.pkey in pkeys:
            yield Problem(file=where("partitions", index), field=f"{field}.pkey",
                          message=f"P_Key {part.pkey_hex} is also partition "
                          f"{fabric.partitions[pkeys[part.pkey]].name}'s", fix="give every partition its own P_Key")
        pkeys.setdefault(part.pkey, index)
        members = site.members(part.members)
        for index2, member in enumerate(part.members):
            if member not in site.groups and member not in site.nodes:
                yield Problem(file=where("partitions", index, "members", index2),
                              field=_field("partitions", index, "members", index2),
                              message=f"{member!r} is neither an inventory group nor a host",
                              fix="name a group (gpu_nodes, cpu_nodes, ...) or a host")
        without = sorted({p.label for host in members for p in fabric.ports_of(host) if not p.guid})
        if without:
            shown = ", ".join(without[:4]) + (f" and {len(without) - 4} more" if len(without) > 4 else "")
            yield Problem(file=where("partitions", index), field=f"{field}.members",
                          message=f"OpenSM names partition members by port GUID, and these member ports have none "
                          f"in the inventory: {shown}",
                          fix="record each port's GUID (ibstat -p on the node) in its cable's guids")


def _ipoib(site: m.Site, fabric: Fabric, locator: Locator, where: _Where) -> Iterator[Problem]:
    ipoib = fabric.ipoib
    if ipoib is None:
        return
    # hosts by the host part of their address (what address_for keeps): the address is spelled out for a clash only
    owners: dict[int, list[str]] = defaultdict(list)
    hostmask = int(ipoib.subnet.hostmask)
    for host in fabric.nodes:
        if host not in site.nodes:
            continue
        if not any(p.hca == ipoib.hca and p.port == 1 for p in fabric.ports_of(host)):
            yield Problem(file=where("ipoib", "hca"), host=host, field=_field("ipoib", "hca"),
                          message=f"IPoIB runs on {ipoib.hca} port 1, which has no cable on {host}",
                          fix=f"cable {host} {ipoib.hca}, or choose the HCA that every node has cabled")
            continue
        ip = site.nodes[host].ip
        if ip is not None:  # an address that did not validate is reported as such already
            owners[int(ip) & hostmask].append(host)
    clashes = {str(ipoib.address_for(site.nodes[hosts[0]].ip).ip): hosts for hosts in owners.values() if len(hosts) > 1}
    for address, hosts in sorted(clashes.items()):
        if len(hosts) > 1:
            for host in hosts:
                yield Problem(file=locator.find(host, "bitten_ip"), host=host, field=_field("ipoib", "subnet"),
                              message=f"IPoIB address {address} (the host part of bitten_ip in {ipoib.subnet}) is "
                              f"also {', '.join(h for h in hosts if h != host)}'s",
                              fix="use an IPoIB subnet as large as the cluster network's")
    if ipoib.partition is not None:
        part = fabric.partition(ipoib.partition)
        if part is None:
            yield Problem(file=where("ipoib", "partition"), field=_field("ipoib", "partition"),
                          message=f"partition {ipoib.partition!r} is not defined",
                          fix="name one of bitten_fabric.partitions: " + _known([p.name for p in fabric.partitions]))
        else:
            if not part.ipoib:
                yield Problem(file=where("ipoib", "partition"), field=_field("ipoib", "partition"),
                              message=f"partition {part.name} has no IPoIB broadcast group",
                              fix=f"set ipoib: true on partition {part.name}")
            members = set(site.members(part.members))
            outside = [h for h in fabric.nodes if h in site.nodes and h not in members]
            if outside:
                yield Problem(file=where("ipoib", "partition"), field=_field("ipoib", "partition"),
                              message=f"IPoIB runs in partition {part.name}, but {', '.join(outside[:4])} "
                              f"{'are' if len(outside) > 1 else 'is'} not a member",
                              fix=f"add them to partition {part.name}'s members")


def _slurm_topology(site: m.Site, fabric: Fabric, where: _Where) -> Iterator[Problem]:
    plugin = fabric.slurm.plugin
    if plugin == "none":
        return
    for host in site.compute_nodes:
        leaves = fabric.leaves_of(host)
        if len(leaves) > 1:
            yield Problem(file=where("slurm", "plugin"), host=host, field=_field("slurm", "plugin"),
                          message=f"{host} is cabled to leaf switches {', '.join(leaves)}; Slurm's topology/{plugin} "
                          "puts every node under one leaf (a rail-optimised fabric has no such tree)",
                          fix="set bitten_fabric.slurm.plugin: none, or cable each node's HCAs to one leaf")
    if plugin == "block":
        sizes = [len(nodes) for nodes in fabric.leaves_for(site.compute_nodes).values()]
        base = (fabric.slurm.block_sizes or (min(sizes, default=1),))[0]
        for leaf, nodes in fabric.leaves_for(site.compute_nodes).items():
            if len(nodes) < base:
                yield Problem(file=where("slurm", "block_sizes"), field=_field("slurm", "block_sizes"),
                              message=f"block {leaf} has {len(nodes)} node(s), fewer than the base block size {base} "
                              "(Slurm requires every block to hold at least that many)",
                              fix="lower the first of block_sizes")
