"""bitten-provision: the provisioner's commands (standard library only).

    bitten-provision serve [--listen 127.0.0.1:8787]     the boot report service (systemd runs it)
    bitten-provision dhcp-event ACTION MAC IP [HOST]     dnsmasq's dhcp-script: record a lease
    bitten-provision pack-overlay TREE OUT [--check]     a node's identity overlay (cpio) from its staging tree
    bitten-provision status                              what the service would answer on GET /status
    bitten-provision dhcp-probe --mac MAC [--ipxe]       ask DHCP for MAC's lease as a PXE client would
    bitten-provision install-bundle BUNDLE ROOT [--check] the per-node boot files from the controller
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import sys
from pathlib import Path

from .cpio import pack, write_if_changed
from .dhcpprobe import probe
from .install import install_bundle
from .reports import Store, serve

STATE_DIR = "/var/lib/bitten/provision"
NODES_FILE = "/etc/bitten/provision/nodes.json"
DNSMASQ_LOG = "/var/log/bitten-provision/dnsmasq.log"


def _store(args: argparse.Namespace) -> Store:
    return Store(Path(args.state_dir), Path(args.nodes), Path(args.dnsmasq_log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bitten-provision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", default=STATE_DIR)
    parser.add_argument("--nodes", default=NODES_FILE)
    parser.add_argument("--dnsmasq-log", default=DNSMASQ_LOG)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", default="127.0.0.1:8787")
    e = sub.add_parser("dhcp-event")
    e.add_argument("action")
    e.add_argument("mac")
    e.add_argument("ip")
    e.add_argument("hostname", nargs="?")
    p = sub.add_parser("pack-overlay")
    p.add_argument("tree")
    p.add_argument("out")
    p.add_argument("--check", action="store_true", help="only say whether the overlay would change")
    p.add_argument("--group", default="www-data", help="group that may read the overlay (the web server's)")
    sub.add_parser("status")
    d = sub.add_parser("dhcp-probe")
    d.add_argument("--mac", required=True)
    d.add_argument("--ipxe", action="store_true", help="say iPXE in the user class, as iPXE does")
    d.add_argument("--timeout", type=float, default=4.0)
    b = sub.add_parser("install-bundle")
    b.add_argument("bundle")
    b.add_argument("root")
    b.add_argument("--check", action="store_true", help="only say what would change")
    b.add_argument("--group", default="www-data", help="group that may read the identity overlays (the web server's)")
    args = parser.parse_args(argv)

    if args.command == "serve":
        host, _, port = args.listen.rpartition(":")
        server = serve(_store(args), host, int(port))
        print(f"bitten-provision: serving boot reports on {args.listen}", flush=True)
        server.serve_forever()
        return 0
    if args.command == "dhcp-event":
        # dnsmasq sets DNSMASQ_INTERFACE for leases it hands out now (not for those it replays at start)
        _store(args).dhcp_event(args.action, args.mac, args.ip, args.hostname, os.environ.get("DNSMASQ_INTERFACE"))
        return 0
    if args.command == "pack-overlay":
        data = pack(Path(args.tree))
        changed = write_if_changed(data, Path(args.out), mode=0o640, group=grp.getgrnam(args.group).gr_gid,
                                   check=args.check)
        print(json.dumps({"changed": changed, "bytes": len(data)}))
        return 0
    if args.command == "status":
        print(json.dumps(_store(args).status(), indent=1, sort_keys=True))
        return 0
    if args.command == "install-bundle":
        if args.check and not Path(args.bundle).exists():
            print(json.dumps({"changed": True, "files": ["(no bundle yet: everything would be installed)"]}))
            return 0
        files = install_bundle(Path(args.bundle).read_bytes(), Path(args.root), args.group, args.check)
        print(json.dumps({"changed": bool(files), "files": files}))
        return 0
    if args.command == "dhcp-probe":
        answers = probe(args.mac, ipxe=args.ipxe, timeout=args.timeout)
        print(json.dumps([a.as_dict() for a in answers], indent=1))
        return 0 if answers and answers[-1].kind == "ACK" else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
