"""BMC vendor flavours: modules in a registry, and every front end's choices derived from it.

The throwaway flavour below is what a new vendor module would be; registering it is the only change, and the site
check, the Ansible module (argument spec and documentation), the Pulumi provider and the fleet all accept it.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
import yaml

from bitten.capabilities import load_site
from bitten.core.redfish import flavours
from bitten.core.redfish.flavours import AuthMode, Flavour
from bitten.hardware import run_node
from bitten.hardware.fleet import Target
from bitten.hardware.plan import DesiredBmcState
from bitten.hardware.pulumi_provider import RedfishNodeProvider
from bitten.lab.doubles.bmc_emulator import SystemSpec
from bitten.site import SiteError

from .conftest import CREDS, PASSWORD, REPO, USER, Emulator, Pki


class Acme(Flavour):
    """A vendor whose BMCs want basic auth only and keep virtual media under the manager."""

    name: ClassVar[str] = "acme_bmc"
    summary: ClassVar[str] = "ACME BMCs (a test's throwaway flavour)"
    auth: ClassVar[AuthMode] = "basic"
    media_under_system: ClassVar[bool] = False


@pytest.fixture
def acme() -> Iterator[Flavour]:
    flavour = flavours.register(Acme())
    yield flavour
    flavours.unregister(flavour.name)


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _site_with_flavour(tmp_path: Path, flavour: str) -> Path:
    root = tmp_path / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", root)
    (root / "host_vars").mkdir(exist_ok=True)
    (root / "host_vars" / "lab-gpu01.yml").write_text(yaml.safe_dump(
        {"bitten_bmc": {"address": "10.77.0.1:8443", "system_id": "lab-gpu01", "flavour": flavour}}))
    return root


def test_the_shipped_flavours_are_found_by_listing_the_package() -> None:
    assert {"generic", "hpe_ilo"} <= set(flavours.names())
    ilo = flavours.get("hpe_ilo")
    assert (ilo.auth, ilo.boot_mode_in_override, ilo.media_under_system) == ("session", False, False)
    with pytest.raises(ValueError, match=r"unknown Redfish flavour 'nope'; known: .*generic.*hpe_ilo"):
        flavours.get("nope")
    with pytest.raises(ValueError, match="registered already"):
        flavours.register(type("Other", (Flavour,), {"name": "generic"})())


def test_an_unknown_flavour_is_a_site_problem_with_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SiteError) as failure:
        load_site(_site_with_flavour(tmp_path, "acme_bmc"))
    problem = next(p for p in failure.value.problems if p.field == "bitten_bmc.flavour")
    assert problem.host == "lab-gpu01" and "lab-gpu01.yml" in problem.file
    assert "unknown Redfish flavour 'acme_bmc'" in problem.message
    assert "generic, hpe_ilo" in (problem.fix or "") and "bitten/core/redfish/flavours/" in (problem.fix or "")


def test_a_registered_flavour_is_accepted_everywhere(acme: Flavour, tmp_path: Path, pki: Pki,
                                                     start_emulator: Callable[..., Emulator]) -> None:
    # the site model (through the hardware capability's check)
    site = load_site(_site_with_flavour(tmp_path, "acme_bmc"))
    bmc = site.nodes["lab-gpu01"].bmc
    assert bmc is not None and bmc.flavour == "acme_bmc"

    # the Ansible module: its argument spec and its documentation (the doc fragment ansible-doc imports)
    module = _load(REPO / "plugins" / "modules" / "bitten_redfish.py", "bitten_redfish_under_test")
    choices = module.argument_spec()["bmc"]["options"]["flavour"]["choices"]
    assert "acme_bmc" in choices and "hpe_ilo" in choices
    fragment = _load(REPO / "plugins" / "doc_fragments" / "bitten_redfish_bmc.py", "bitten_fragment_under_test")
    documented = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]["bmc"]["suboptions"]["flavour"]
    assert "acme_bmc" in documented["choices"] and "ACME BMCs" in documented["description"][0]

    # the Pulumi provider's check
    props: dict[str, Any] = {"host": "n1", "url": "https://127.0.0.1:1", "username": USER, "password": PASSWORD,
                             "flavour": "acme_bmc"}
    assert RedfishNodeProvider().check({}, props).failures == []
    refused = RedfishNodeProvider().check({}, {**props, "flavour": "nope"}).failures
    assert [f.property for f in refused] == ["flavour"] and "acme_bmc" in refused[0].reason

    # and the fleet drives a BMC with it (basic auth, as the flavour says)
    emu = start_emulator([SystemSpec("n1")])
    endpoint = emu.endpoint("n1")
    target = Target(type(endpoint)(endpoint.host, endpoint.url, endpoint.system_id, "acme_bmc"),
                    DesiredBmcState(power="On"), CREDS)
    result = run_node(target, "apply", settings=pki.settings)
    assert result.ok and result.power == "On", result.error


def test_the_fleet_reports_an_unregistered_flavour_per_node(pki: Pki, start_emulator: Callable[..., Emulator]) -> None:
    emu = start_emulator([SystemSpec("n1")])
    endpoint = emu.endpoint("n1")
    target = Target(type(endpoint)(endpoint.host, endpoint.url, endpoint.system_id, "acme_bmc"), DesiredBmcState(),
                    CREDS)
    result = run_node(target, "plan", settings=pki.settings)
    assert result.error_kind == "UnknownFlavour" and "known: generic, hpe_ilo" in (result.error or "")
