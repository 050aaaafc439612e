"""Firmware baseline as code: what the BMC reports (FirmwareInventory), the drift from the hardware profile, and
updates through Redfish UpdateService (SimpleUpdate with an image from the site's own HTTP server).

- ``read_components``: the BMC's ``UpdateService/FirmwareInventory`` members (Name, Version, Updateable), only
  those of this node's system where members name one (``RelatedItem``): a chassis manager serving several systems
  reports each system's parts.
- ``drift``: per expected component (``HardwareProfile.firmware``, matched by Name): the version reported, or
  "not reported" (nothing is updated on a guess: a component the BMC does not show is a problem to look at, not
  an update to try).
- ``update``: one SimpleUpdate per drifted component (``ImageURI`` under the site's firmware repository,
  ``Targets`` the inventory member), sent once (a POST is never repeated blindly), then the task is followed
  (task monitor or Task resource) until it ends or ``timeout`` passes. Afterwards the inventory is read back: a
  component that reports the new version is done; one whose task said the version activates at the next reboot
  (Update.AwaitToActivate), or that still reports the old version after a successful task, waits for a reboot —
  which bitten.hardware.rollout gives it, in a wave, and then checks the version again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from sushy.resources.updateservice import constants as update_constants

from bitten.core.redfish.connection import Connection
from bitten.core.redfish.document import link
from bitten.core.redfish.errors import RedfishError, RedfishUnsupported
from bitten.core.retry import Deadline
from bitten.site.model import Firmware

TERMINAL = frozenset({"Completed", "Exception", "Killed", "Cancelled"})
#: message ids (without registry version) that say the update is staged until a reset
AWAIT_ACTIVATE = ("AwaitToActivate", "UpdateSuccessfulPendingReboot", "ResetRequired", "SystemResetRequired")


@dataclass(frozen=True)
class Component:
    """One member of the BMC's FirmwareInventory."""

    id: str
    name: str
    version: str | None
    updateable: bool
    path: str


@dataclass(frozen=True)
class Drift:
    """An expected component whose reported version differs (or that the BMC does not report)."""

    label: str
    name: str
    expected: str
    #: the version the BMC reports; None: it reports no component of this name
    current: str | None
    image: str
    #: the inventory member to target, when the BMC reports the component
    path: str | None = None

    def __str__(self) -> str:
        if self.current is None:
            return f"firmware {self.label} ({self.name}): not reported by the BMC, expected {self.expected}"
        return f"firmware {self.label} ({self.name}): {self.current} -> {self.expected}"


@dataclass
class Outcome:
    """What one update did."""

    drift: Drift
    #: active (the BMC reports the new version), staged (active after the next reboot), failed
    state: str
    message: str = ""
    task: str | None = None


@dataclass
class UpdateResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def staged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "staged"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "failed"]


def image_url(repository: str | None, firmware: Firmware) -> str:
    """The image's URL: a path under the site's firmware repository, or an absolute URL (checked to be under it)."""
    if firmware.image.startswith(("http://", "https://")):
        return firmware.image
    if not repository:
        raise ValueError(f"firmware image {firmware.image!r} is a path, but bitten_rollout.firmware_repository is "
                         "not set")
    return urljoin(repository.rstrip("/") + "/", firmware.image.lstrip("/"))


def read_components(conn: Connection, system_path: str) -> list[Component]:
    """The FirmwareInventory of the BMC (only this system's members where members name their system)."""
    root = conn.root_json
    service_path = link(root, "UpdateService")
    if service_path is None:
        raise RedfishUnsupported(conn.endpoint.where, "the BMC offers no UpdateService (no firmware inventory)")
    service = conn.get_json(service_path)
    inventory = link(service, "FirmwareInventory")
    if inventory is None:
        raise RedfishUnsupported(conn.endpoint.where, "the UpdateService has no FirmwareInventory")
    system = system_path.rstrip("/").lower()
    found: list[Component] = []
    for body in conn.members(inventory):
        related = [str(r.get("@odata.id", "")).rstrip("/").lower() for r in body.get("RelatedItem") or []
                   if isinstance(r, dict)]
        related_systems = [r for r in related if "/systems/" in r]
        if related_systems and system not in related_systems:
            continue
        version = body.get("Version")
        found.append(Component(id=str(body.get("Id", "")), name=str(body.get("Name", "")),
                               version=str(version) if version is not None else None,
                               updateable=bool(body.get("Updateable", True)), path=str(body.get("@odata.id", ""))))
    return found


def drift(expected: Mapping[str, Firmware], components: Sequence[Component],
          repository: str | None) -> list[Drift]:
    """Expected components whose version the BMC does not report as expected (sorted by label)."""
    by_name = {c.name: c for c in components}
    out: list[Drift] = []
    for label, firmware in sorted(expected.items()):
        component = by_name.get(firmware.name)
        current = component.version if component is not None else None
        if current == firmware.version:
            continue
        out.append(Drift(label=label, name=firmware.name, expected=firmware.version, current=current,
                         image=image_url(repository, firmware), path=component.path if component else None))
    return out


def update(conn: Connection, drifts: Sequence[Drift], system_path: str, timeout: float = 1800.0,
           poll: float = 2.0, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> UpdateResult:
    """SimpleUpdate each drifted component the BMC reports, follow its task, then read the versions back."""
    result = UpdateResult()
    root = conn.root
    for item in drifts:
        if item.path is None:
            result.outcomes.append(Outcome(item, "failed", "the BMC reports no such component: nothing was sent"))
            continue
        protocol = (update_constants.UpdateTransferProtocolType.HTTPS if item.image.startswith("https://")
                    else update_constants.UpdateTransferProtocolType.HTTP)
        try:
            with conn.translated(f"UpdateService.SimpleUpdate {item.label}"):
                service = root.get_update_service()
                monitor = service.simple_update(item.image, targets=[item.path], transfer_protocol=protocol)
            task, messages = _follow(conn, monitor.response, timeout, poll, sleep, clock)
        except (RedfishError, TimeoutError) as exc:
            result.outcomes.append(Outcome(item, "failed", str(exc)))
            continue
        state = task.get("TaskState", "Completed") if task else "Completed"
        if state != "Completed" or (task and task.get("TaskStatus") not in (None, "OK", "Warning")):
            text = "; ".join(messages) or f"task {state}"
            result.outcomes.append(Outcome(item, "failed", f"the update ended {state}: {text}",
                                           task=task.get("@odata.id") if task else None))
            continue
        awaits = any(any(m in text for m in AWAIT_ACTIVATE) for text in messages)
        result.outcomes.append(Outcome(item, "staged" if awaits else "active", "; ".join(messages),
                                       task=task.get("@odata.id") if task else None))
    if result.outcomes:
        reported = {c.name: c.version for c in read_components(conn, system_path)}
        for outcome in result.outcomes:
            if outcome.state == "failed":
                continue
            now = reported.get(outcome.drift.name)
            if now == outcome.drift.expected:
                outcome.state = "active"
            elif outcome.state == "active":
                # the task succeeded, the BMC still reports the old version: it activates at the next reset
                outcome.state = "staged"
    return result


def _follow(conn: Connection, response: Any, timeout: float, poll: float, sleep: Callable[[float], None],
            clock: Callable[[], float]) -> tuple[dict[str, Any], list[str]]:
    """Follow a 202's task until it ends: the Task resource when there is one, else the task monitor."""
    deadline = Deadline(timeout, clock)
    body: dict[str, Any] = {}
    if response is not None and response.content:
        try:
            parsed = response.json()
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            body = {}
    monitor = response.headers.get("Location") if response is not None else None
    task_path = body.get("@odata.id") if isinstance(body.get("@odata.id"), str) else None
    if response is not None and response.status_code != 202 and not task_path and not monitor:
        return body, _messages(body)  # done at once
    task = body
    while True:
        if task_path:
            task = conn.get_json(task_path)
            if task.get("TaskState") in TERMINAL:
                return task, _messages(task)
        elif monitor:
            with conn.translated(f"GET {monitor}"):
                answer = conn.connector.get(monitor)
            parsed = answer.json() if answer.content else {}
            task = parsed if isinstance(parsed, dict) else {}
            if answer.status_code != 202:
                return task, _messages(task)
            if isinstance(task.get("@odata.id"), str):
                task_path = task["@odata.id"]
        else:
            return task, _messages(task)
        if deadline.remaining() <= 0:
            raise TimeoutError(f"{conn.endpoint.where}: the update task did not end within {timeout:g} s")
        sleep(min(poll, max(0.01, deadline.remaining())))


def _messages(task: Mapping[str, Any]) -> list[str]:
    out = []
    for message in task.get("Messages") or []:
        if isinstance(message, dict):
            text = " ".join(str(message.get(k)) for k in ("MessageId", "Message") if message.get(k))
            if text:
                out.append(text)
    return out
