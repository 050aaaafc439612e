"""Pulumi front end of bitten.hardware: a dynamic resource per node (desired BIOS, one-time boot, power).

create/update apply the desired state through the same code as ``bitten hardware apply``; read (``pulumi
refresh``) observes the BMC, so that drift — a BIOS value or the power state changed behind Pulumi's back — shows
up as a diff at the next ``pulumi up``; delete forgets the node (the node keeps running: bitten never powers off a
node it stops managing). Inventory facts (MACs, serial, model) are outputs.

The provider object holds no secrets (Pulumi serialises it into the state): the BMC password travels as a secret
input, and its output copy is marked secret too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

#: inputs a change of which is applied in place
UPDATABLE = ("flavour", "username", "password", "ca_pem", "verify", "bios", "boot", "power", "boot_mac",
             "check_boot_mac", "reboot", "timeout", "power_timeout", "retries")
#: inputs a change of which means another machine: replace the resource
REPLACING = ("host", "url", "system_id")
#: outputs (besides the inputs) the provider computes
OUTPUTS = ("power_state", "observed_bios", "pending", "changes", "macs", "serial", "model", "manufacturer", "uuid")


@contextlib.contextmanager
def _ca_file(pem: str | None) -> Iterator[str | None]:
    """The CA given as PEM text in a private temporary file for the length of a call (requests wants a path)."""
    if not pem:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="bitten-bmc-ca-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        yield path
    finally:
        os.unlink(path)


class RedfishNodeProvider(ResourceProvider):
    """CRUD of one node's BMC state; every call is self-contained (inputs carry endpoint and credentials)."""

    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from pydantic import ValidationError

        from bitten.core.redfish import flavours
        from bitten.site.model import Boot

        failures = [CheckFailure(key, "required") for key in ("host", "url", "username", "password")
                    if not news.get(key)]
        try:
            Boot.model_validate(news.get("boot") or {})
        except ValidationError as exc:
            failures += [CheckFailure("boot", str(e["msg"])) for e in exc.errors()]
        if news.get("power", "On") not in ("On", "Off"):
            failures.append(CheckFailure("power", "must be On or Off"))
        known = flavours.names()
        if news.get("flavour", "hpe_ilo") not in known:
            failures.append(CheckFailure("flavour", f"must be one of {', '.join(known)} "
                                         "(the modules of bitten.core.redfish.flavours)"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        from bitten.hardware.plan import same_value

        replaces = [k for k in REPLACING if olds.get(k) != news.get(k)]
        changed = [k for k in UPDATABLE if olds.get(k) != news.get(k)]
        observed = olds.get("observed_bios")
        if isinstance(observed, Mapping):
            bios = news.get("bios") or {}
            if any(not same_value(observed.get(k), v) for k, v in bios.items()):
                changed.append("bios")
        if olds.get("power_state") and olds.get("power_state") != news.get("power", "On"):
            changed.append("power")
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, stables=[],
                          delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._converge(props)
        return CreateResult(f"{props['url']}/redfish/v1/Systems/{props.get('system_id', '1')}", outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._converge(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        result = self._run(props, "plan")
        return ReadResult(id_, self._outputs(props, result))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget the node; its BMC keeps the state it has."""

    # --- the core ---------------------------------------------------------------------------------------
    def _converge(self, props: dict[str, Any]) -> dict[str, Any]:
        return self._outputs(props, self._run(props, "apply"))

    def _run(self, props: Mapping[str, Any], action: str) -> Any:
        from bitten.hardware import Backoff, Credentials, DesiredBmcState, Endpoint, Options, Timeouts, Tls, run_node
        from bitten.hardware.fleet import Settings, Target
        from bitten.site.model import Boot

        endpoint = Endpoint(host=str(props["host"]), url=str(props["url"]),
                            system_id=str(props.get("system_id", "1")), flavour=props.get("flavour", "hpe_ilo"))
        desired = DesiredBmcState(bios=dict(props.get("bios") or {}), boot=Boot.model_validate(props.get("boot") or {}),
                          power=props.get("power", "On"), boot_mac=props.get("boot_mac") or None)
        target = Target(endpoint, desired, Credentials(str(props["username"]), str(props["password"])))
        options = Options(reboot=bool(props.get("reboot", False)),
                          check_boot_mac=bool(props.get("check_boot_mac", True)))
        timeout = float(props.get("timeout", 60))
        with _ca_file(props.get("ca_pem")) as ca:
            settings = Settings(tls=Tls(verify=bool(props.get("verify", True)), ca_file=ca),
                                timeouts=Timeouts(connect=min(10.0, timeout), read=timeout,
                                                  power=float(props.get("power_timeout", 300))),
                                retry=Backoff(attempts=int(props.get("retries", 4)) + 1))
            result = run_node(target, action, options, settings, with_inventory=True)  # type: ignore[arg-type]
        if not result.ok:
            raise RuntimeError(result.failure)
        return result

    @staticmethod
    def _outputs(props: Mapping[str, Any], result: Any) -> dict[str, Any]:
        inventory = result.inventory
        outs = {k: v for k, v in props.items() if k != "__provider"}
        outs.update({
            "power_state": result.power, "observed_bios": dict(result.bios), "pending": dict(result.pending),
            "changes": result.plan.lines() if result.plan and result.plan.changed else [],
            "macs": list(inventory.macs) if inventory else [], "serial": inventory.serial if inventory else None,
            "model": inventory.model if inventory else None,
            "manufacturer": inventory.manufacturer if inventory else None,
            "uuid": inventory.uuid if inventory else None,
        })
        return outs


@dataclass
class RedfishNodeArgs:
    """Inputs of a RedfishNode (``password`` should be a secret Output)."""

    host: pulumi.Input[str]
    url: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]
    system_id: pulumi.Input[str] = "1"
    flavour: pulumi.Input[str] = "hpe_ilo"
    bios: pulumi.Input[Mapping[str, Any]] = field(default_factory=dict)
    boot: pulumi.Input[Mapping[str, Any]] = field(default_factory=dict)
    power: pulumi.Input[str] = "On"
    boot_mac: pulumi.Input[str] | None = None
    ca_pem: pulumi.Input[str] | None = None
    verify: pulumi.Input[bool] = True
    check_boot_mac: pulumi.Input[bool] = True
    reboot: pulumi.Input[bool] = False
    timeout: pulumi.Input[float] = 60.0
    power_timeout: pulumi.Input[float] = 300.0
    retries: pulumi.Input[int] = 4

    def props(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RedfishNode(Resource, module="bitten", name="RedfishNode"):
    """One node's BMC state, managed by Pulumi (type ``pulumi-python:dynamic/bitten:RedfishNode``)."""

    power_state: pulumi.Output[str]
    observed_bios: pulumi.Output[dict[str, Any]]
    pending: pulumi.Output[dict[str, Any]]
    changes: pulumi.Output[list[str]]
    macs: pulumi.Output[list[str]]
    serial: pulumi.Output[str | None]
    model: pulumi.Output[str | None]
    manufacturer: pulumi.Output[str | None]
    uuid: pulumi.Output[str | None]
    password: pulumi.Output[str]

    def __init__(self, name: str, args: RedfishNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {**args.props(), **dict.fromkeys(OUTPUTS)}
        secret = pulumi.ResourceOptions(additional_secret_outputs=["password"])
        super().__init__(RedfishNodeProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))
