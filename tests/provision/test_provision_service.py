"""The provisioner's side: boot reports (only from a node's reserved address), leases, unknown MACs, overlays."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import bitten.provision.service
from bitten.provision.service.cpio import pack, unpack, write_if_changed
from bitten.provision.service.reports import Store, serve

PACKAGE = Path(bitten.provision.service.__file__).parent
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
NODES = {"nodes": {"vm01": {"mac": "52:54:00:77:00:41", "ip": "10.77.0.41", "image_id": "img-aaa",
                            "deploy": "stateless", "disk": None},
                   "vm02": {"mac": "52:54:00:77:00:42", "ip": "10.77.0.42", "image_id": "img-aaa",
                            "deploy": "disk", "disk": "/dev/vda"}}}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps(NODES))
    return Store(tmp_path / "state", nodes, tmp_path / "dnsmasq.log")


def test_only_standard_library_and_siblings() -> None:
    for source in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            outside = [r for r in roots if r not in STDLIB]
            assert not outside, f"{source.name} imports {outside}: the provisioner has only the standard library"


def test_reports_only_from_the_reserved_address(store: Store) -> None:
    up = {"node": "vm01", "state": "up", "image_id": "img-aaa", "root": "rootfs (rootfs)", "deploy": "stateless"}
    assert store.accept(up, "10.77.0.42")[0] == 403
    assert store.accept({**up, "node": "intruder"}, "10.77.0.41")[0] == 403
    assert store.accept({**up, "state": "dancing"}, "10.77.0.41")[0] == 400
    assert store.accept(up, "10.77.0.41", now=1000.0) == (200, "vm01: up recorded")
    report = store.reports("vm01")
    assert report["up"]["received_at"] == 1000.0 and report["last"]["state"] == "up"
    assert report["up"]["sender"] == "10.77.0.41" and report["up"]["image_id"] == "img-aaa"


def test_leases_are_recorded_when_handed_out(store: Store) -> None:
    assert store.dhcp_event("add", "52:54:00:77:00:41", "10.77.0.41", "vm01", "eth0", now=5.0)
    # dnsmasq replays its lease file at start (no interface): that is not a boot
    assert not store.dhcp_event("old", "52:54:00:77:00:41", "10.77.0.41", "vm01", None)
    assert not store.dhcp_event("del", "52:54:00:77:00:41", "10.77.0.41", "vm01", "eth0")
    assert store.dhcp_event("old", "52:54:00:77:00:41", "10.77.0.41", "vm01", "eth0", now=9.0)
    status = store.status(now=10.0)["nodes"]["vm01"]
    assert [e["at"] for e in status["leases"]] == [5.0, 9.0]


def test_unknown_macs_come_from_dnsmasqs_ignored_requests(store: Store) -> None:
    store.dnsmasq_log.write_text(
        "Dec  1 22:06:13 dnsmasq-dhcp[388]: 359732936 DHCPDISCOVER(eth0) 52:54:00:77:00:41\n"
        "Dec  1 22:06:14 dnsmasq-dhcp[388]: 359732937 DHCPDISCOVER(eth0) 52:54:00:de:ad:01 ignored\n"
        "Dec  1 22:06:18 dnsmasq-dhcp[388]: 359732938 DHCPDISCOVER(eth0) 52:54:00:de:ad:01 ignored\n"
        "Dec  1 22:06:19 dnsmasq-dhcp[388]: 359732939 DHCPREQUEST(eth0) 10.77.0.99 52:54:00:de:ad:02 ignored\n")
    now = time.mktime(time.strptime("2026 Dec 1 23:00:00", "%Y %b %d %H:%M:%S"))
    unknown = store.status(now=now)["unknown_macs"]
    assert set(unknown) == {"52:54:00:de:ad:01", "52:54:00:de:ad:02"}
    assert unknown["52:54:00:de:ad:01"]["requests"] == 2
    assert unknown["52:54:00:de:ad:01"]["last_seen"] - unknown["52:54:00:de:ad:01"]["first_seen"] == 4


def test_the_service_over_http(store: Store) -> None:
    server = serve(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        body = json.dumps({"node": "vm02", "state": "deployed", "image_id": "img-aaa"}).encode()
        request = urllib.request.Request(f"{base}/report", data=body, method="POST",
                                         headers={"X-Real-IP": "10.77.0.42", "Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            assert json.load(response) == {"result": "vm02: deployed recorded"}
        spoofed = urllib.request.Request(f"{base}/report", data=body, method="POST", headers={"X-Real-IP": "10.9.9.9"})
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(spoofed)
        assert denied.value.code == 403
        with urllib.request.urlopen(f"{base}/status") as response:
            status = json.load(response)
        assert status["nodes"]["vm02"]["reports"]["deployed"]["sender"] == "10.77.0.42"
        assert status["nodes"]["vm01"]["reports"] == {}
    finally:
        server.shutdown()
        server.server_close()


def test_overlays_are_deterministic_and_unpack_as_the_kernel_would(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "root/.ssh").mkdir(parents=True)
    (tree / "root").chmod(0o700)
    (tree / "root/.ssh").chmod(0o700)
    (tree / "etc").mkdir()
    (tree / "etc/hostname").write_text("vm01\n")
    (tree / "root/.ssh/authorized_keys").write_text("ssh-ed25519 AAAA admin\n")
    (tree / "root/.ssh/authorized_keys").chmod(0o600)
    data = pack(tree)
    (tree / "etc/hostname").touch()  # a newer mtime changes nothing
    assert pack(tree) == data
    files = unpack(data)
    assert files["etc/hostname"] == (0o100644, b"vm01\n")
    assert files["root/.ssh"][0] == 0o40700 and files["root/.ssh/authorized_keys"][0] == 0o100600
    if shutil.which("cpio"):
        out = tmp_path / "unpacked"
        out.mkdir()
        subprocess.run(["cpio", "-idm", "--quiet"], input=data, cwd=out, check=True)
        assert (out / "etc/hostname").read_text() == "vm01\n"
        assert (out / "root/.ssh/authorized_keys").stat().st_mode & 0o777 == 0o600
    dest = tmp_path / "identity.cpio"
    assert write_if_changed(data, dest, mode=0o640, check=True)
    assert not dest.exists()
    assert write_if_changed(data, dest, mode=0o640)
    assert dest.stat().st_mode & 0o777 == 0o640
    assert not write_if_changed(data, dest, mode=0o640)


def test_runs_as_a_copied_package_with_the_system_python(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(PACKAGE, lib / "bitten_provision", ignore=shutil.ignore_patterns("__pycache__"))
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps(NODES))
    python = shutil.which("python3", path="/usr/bin") or sys.executable
    args = [python, "-m", "bitten_provision", "--state-dir", str(tmp_path / "state"), "--nodes", str(nodes),
            "--dnsmasq-log", str(tmp_path / "none.log")]
    env = {"PYTHONPATH": str(lib), "DNSMASQ_INTERFACE": "eth0", "PATH": "/usr/bin:/bin"}
    subprocess.run([*args, "dhcp-event", "add", "52:54:00:77:00:41", "10.77.0.41", "vm01"], env=env, check=True)
    status = json.loads(subprocess.run([*args, "status"], env=env, check=True, capture_output=True).stdout)
    assert status["nodes"]["vm01"]["leases"][0]["ip"] == "10.77.0.41"


def test_the_bundle_installs_what_differs_and_removes_nodes_that_are_gone(tmp_path: Path) -> None:
    import grp
    import os

    from bitten.provision.bundle import bundle
    from bitten.provision.service.install import install_bundle

    group = grp.getgrgid(os.getgid()).gr_name
    root = tmp_path / "http"
    (root / "nodes" / "old").mkdir(parents=True)
    data = bundle({"nodes/vm01/boot.ipxe": (0o644, b"#!ipxe\n"), "nodes/vm01/identity.cpio": (0o640, b"cpio")})
    assert bundle({"nodes/vm01/identity.cpio": (0o640, b"cpio"), "nodes/vm01/boot.ipxe": (0o644, b"#!ipxe\n")}) == data
    assert install_bundle(data, root, group, check=True) == [
        "nodes/vm01/boot.ipxe", "nodes/vm01/identity.cpio", "nodes/old/ (removed: not in the site)"]
    assert not (root / "nodes" / "vm01").exists() and (root / "nodes" / "old").exists()
    assert len(install_bundle(data, root, group)) == 3
    assert (root / "nodes/vm01/identity.cpio").stat().st_mode & 0o777 == 0o640
    assert (root / "nodes/vm01/boot.ipxe").read_bytes() == b"#!ipxe\n"
    assert not (root / "nodes" / "old").exists()
    assert install_bundle(data, root, group) == []
    with pytest.raises(ValueError, match="unexpected entry"):
        install_bundle(bundle({"../etc/passwd": (0o644, b"x")}), root, group)
