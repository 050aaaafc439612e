"""Test peers for bitten.hardware: the sushy-tools emulator (TLS, basic auth), the iLO-shaped fake, the DMTF mockup.

Every peer listens on loopback with TLS from a test CA; clients verify against that CA (verification stays on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bitten.core.pki import CertificateAuthority
from bitten.core.redfish.credentials import Credentials
from bitten.core.redfish.endpoint import Endpoint, Timeouts, Tls
from bitten.core.retry import Backoff
from bitten.hardware.fleet import Settings
from bitten.lab.doubles.bmc_emulator import EmulatorServer, SystemSpec, write_htpasswd
from bitten.lab.doubles.faults import FaultInjector
from bitten.lab.doubles.ilo import IloFake, IloSpec
from bitten.lab.doubles.mockup import serve_mockup
from bitten.lab.httpserve import base_url, in_thread
from bitten.lab.serve import WsgiServer

USER = "bitten-test"
PASSWORD = "emulator-test-password-7d1f"
CREDS = Credentials(USER, PASSWORD)
MOCKUPS = Path(__file__).resolve().parents[1] / "fixtures" / "redfish-mockups"
FAST_RETRY = Backoff(attempts=4, initial=0.01, maximum=0.05)
FAST_TIMEOUTS = Timeouts(connect=2.0, read=2.0, power=5.0, poll=0.05)


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path

    @property
    def tls(self) -> Tls:
        return Tls(verify=True, ca_file=str(self.ca))

    @property
    def settings(self) -> Settings:
        return Settings(tls=self.tls, timeouts=FAST_TIMEOUTS, retry=FAST_RETRY)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(root).ensure()
    pair = ca.issue("bmc", ["127.0.0.1", "localhost"])
    return Pki(ca.cert_path, pair.cert, pair.key)


@pytest.fixture(scope="session")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    write_htpasswd(path, USER, PASSWORD, rounds=4)
    return path


@dataclass
class Emulator:
    server: EmulatorServer
    faults: FaultInjector

    @property
    def url(self) -> str:
        return self.server.url

    def endpoint(self, name: str) -> Endpoint:
        return Endpoint(host=name, url=self.url, system_id=name, flavour="generic")


@pytest.fixture
def start_emulator(tmp_path: Path, pki: Pki, htpasswd: Path) -> Iterator[Callable[..., Emulator]]:
    """Start the sushy-tools emulator (TLS + basic auth, power delay 0 unless asked) with the given systems."""
    running: list[EmulatorServer] = []

    def start(systems: list[SystemSpec], power_delay: float = 0.0, graceful_ignored: bool = False,
              sessions: bool = True) -> Emulator:
        holder: dict[str, FaultInjector] = {}

        def wrap(app: Any) -> FaultInjector:
            holder["faults"] = FaultInjector(app)
            return holder["faults"]

        server = EmulatorServer(systems, tmp_path / f"state{len(running)}", cert=(pki.cert, pki.key),
                                auth_file=htpasswd, power_delay=power_delay, wrap=wrap,
                                graceful_ignored=graceful_ignored, sessions=sessions).start()
        running.append(server)
        return Emulator(server, holder["faults"])

    yield start
    for server in running:
        server.stop()


@dataclass
class Ilo:
    fake: IloFake
    faults: FaultInjector
    server: WsgiServer

    @property
    def url(self) -> str:
        return self.server.url

    def endpoint(self, host: str = "gpu01") -> Endpoint:
        return Endpoint(host=host, url=self.url, system_id="1", flavour="hpe_ilo")


@pytest.fixture
def start_ilo(pki: Pki) -> Iterator[Callable[..., Ilo]]:
    """Start an iLO-shaped fake (TLS, sessions) for one node."""
    running: list[WsgiServer] = []

    def start(**spec: Any) -> Ilo:
        spec.setdefault("username", USER)
        spec.setdefault("password", PASSWORD)
        fake = IloFake(IloSpec(**spec))
        faults = FaultInjector(fake)
        server = WsgiServer(faults, cert=(pki.cert, pki.key)).start()
        running.append(server)
        return Ilo(fake, faults, server)

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def mockup(pki: Pki) -> Iterator[str]:
    """The URL of DMTF's public-rackmount1 mockup, served read-only over TLS (the `bitten cooling mockup` server)."""
    root = MOCKUPS / "public-rackmount1"
    if not root.is_dir():
        pytest.skip(f"{root} is not available")
    server = serve_mockup(root, certfile=str(pki.cert), keyfile=str(pki.key))
    in_thread(server)
    try:
        yield base_url(server, "https")
    finally:
        server.shutdown()
        server.server_close()


REPO = Path(__file__).resolve().parents[2]
#: the lab's bare nodes (virtual machines behind sushy-tools' libvirt driver), not systems of the emulator
BARE_HOSTS = {"lab-vm01": "52:54:00:77:00:41"}
LAB_HOSTS = {"lab-ctl": "02:1a:b0:00:00:10", "lab-dbd": "02:1a:b0:00:00:11", "lab-login": "02:1a:b0:00:00:12",
             "lab-gpu01": "02:1a:b0:00:00:21", "lab-gpu02": "02:1a:b0:00:00:22", "lab-cpu01": "02:1a:b0:00:00:31"}


def lab_systems() -> list[SystemSpec]:
    """One emulated system per lab node, named like the node, reporting its boot MAC."""
    return [SystemSpec(host, macs=(mac,)) for host, mac in LAB_HOSTS.items()]


#: the lab's bare node (a virtual machine that PXE-boots in the lab), when a test keeps it as a system of the emulator
BARE_HOSTS = {"lab-vm01": "52:54:00:77:00:41"}


def lab_inventory(tmp_path: Path, address: str, flavour: str = "generic", bare: bool = False) -> Path:
    """A copy of inventory/lab whose BMCs answer at ``address`` (host_vars override hosts.yml)."""
    import shutil

    import yaml

    root = tmp_path / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", root)
    # the lab's bare nodes are virtual machines behind sushy-tools' libvirt driver, not systems of this emulator
    # (tests/provision/test_provision_vms.py boots them): they are left out here, unless ``bare``
    hosts = root / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    cpu = data["all"]["children"]["compute"]["children"]["cpu_nodes"]["hosts"]
    for host in [h for h, v in cpu.items() if (v or {}).get("bitten_hardware_profile") == "lab_bare"]:
        if not bare:
            del cpu[host]
    hosts.write_text(yaml.safe_dump(data, sort_keys=False))
    (root / "host_vars").mkdir(exist_ok=True)
    for host in [*LAB_HOSTS, *(BARE_HOSTS if bare else {})]:
        (root / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(
            {"bitten_bmc": {"address": address, "system_id": host, "flavour": flavour}}))
    return root
