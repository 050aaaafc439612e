"""A Redfish UpdateService for the BMC emulator: FirmwareInventory, SimpleUpdate, tasks and task monitors.

Emulator extension (sushy-tools' own SimpleUpdate only bumps a BIOS version number and answers a fixed task).
What it does, as DSP0266 and the Update registry describe and iLO behaves:

- ``/redfish/v1/UpdateService/FirmwareInventory``: one SoftwareInventory member per firmware component of each
  system it serves (BMC, BIOS, GPU, NIC, ... as the system's spec names them), with ``Version``, ``Updateable``
  and ``RelatedItem`` (the system);
- ``POST .../Actions/UpdateService.SimpleUpdate`` with ``ImageURI`` (http or https) and optional ``Targets``:
  202 Accepted, a Task and a task monitor in ``Location``. The task really fetches the image from ImageURI (the
  site's HTTP server in tests), then "flashes" for ``flash_seconds``. The image's content says what it holds, in
  the shape of the ``payload.json`` of HPE's fwpkg packages: ``{"Devices": {"Device": [{"DeviceName": "BIOS",
  "Version": "1.60"}]}}`` (the emulator's convention; real images are vendor binaries);
- the task monitor answers 202 while the task runs and 200 when it is done; the Task resource has TaskState,
  TaskStatus, PercentComplete and Messages (``Update.1.1.UpdateSuccessful``, ``Update.1.1.AwaitToActivate`` when
  the new version becomes active only at the next reboot, ``Update.1.1.TransferFailed``, ...);
- the BMC's own firmware is active when the task completes; every other component's new version is staged and
  becomes the active one (the Version FirmwareInventory reports) when the system next powers on or restarts,
  as the BIOS settings do (bitten.lab.doubles.bmc_emulator's driver applies it).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

UPDATE_SERVICE = "/redfish/v1/UpdateService"
INVENTORY = f"{UPDATE_SERVICE}/FirmwareInventory"
SIMPLE_UPDATE = f"{UPDATE_SERVICE}/Actions/UpdateService.SimpleUpdate"
TASKS = "/redfish/v1/TaskService/Tasks"
MONITORS = "/redfish/v1/TaskService/TaskMonitors"
#: components whose new version is active as soon as the flash is done (the BMC restarts itself)
IMMEDIATE = frozenset({"BMC"})
TERMINAL = frozenset({"Completed", "Exception", "Killed", "Cancelled"})

#: (system name, component) -> version, and setting a staged version; the emulator's driver provides them
Firmware = Callable[[str], dict[str, str]]
Stage = Callable[[str, str, str, bool], None]


def _json(start_response: Callable[..., Any], status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> Any:
    from http import HTTPStatus

    data = json.dumps(body).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [("Content-Type", "application/json"),
                                                              ("Content-Length", str(len(data))), *headers])
    return [data]


def _error(start_response: Callable[..., Any], status: int, message_id: str, message: str) -> Any:
    return _json(start_response, status, {"error": {"code": message_id, "message": message,
                                                    "@Message.ExtendedInfo": [{"MessageId": message_id,
                                                                               "Message": message}]}})


class UpdateService:
    """WSGI middleware: the UpdateService of the systems in ``systems`` (system name -> its Redfish path)."""

    def __init__(self, app: Any, systems: dict[str, str], firmware: Firmware, stage: Stage,
                 flash_seconds: float = 0.5, fetch_timeout: float = 30.0) -> None:
        self.app = app
        self.systems = systems
        self.firmware = firmware
        self.stage = stage
        self.flash_seconds = flash_seconds
        self.fetch_timeout = fetch_timeout
        self.tasks: dict[str, dict[str, Any]] = {}
        #: every SimpleUpdate accepted, for tests: (ImageURI, targets)
        self.requests: list[tuple[str, tuple[str, ...]]] = []
        self._lock = threading.Lock()
        self._next = 1

    # --- inventory --------------------------------------------------------------------------------------
    def _member_id(self, system: str, component: str) -> str:
        return component if len(self.systems) == 1 else f"{system}.{component}"

    def _members(self) -> dict[str, tuple[str, str, str]]:
        """member id -> (system, component, version)."""
        out: dict[str, tuple[str, str, str]] = {}
        for system in self.systems:
            for component, version in sorted(self.firmware(system).items()):
                out[self._member_id(system, component)] = (system, component, version)
        return out

    def _member(self, member: str, system: str, component: str, version: str) -> dict[str, Any]:
        return {"@odata.id": f"{INVENTORY}/{member}", "@odata.type": "#SoftwareInventory.v1_10_0.SoftwareInventory",
                "Id": member, "Name": component, "Version": version, "Updateable": True,
                "Status": {"State": "Enabled", "Health": "OK"},
                "RelatedItem": [{"@odata.id": self.systems[system]}]}

    # --- WSGI -------------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "").rstrip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == UPDATE_SERVICE and method == "GET":
            return _json(start_response, 200, {
                "@odata.id": UPDATE_SERVICE, "@odata.type": "#UpdateService.v1_11_0.UpdateService",
                "Id": "UpdateService", "Name": "Update Service", "ServiceEnabled": True,
                "FirmwareInventory": {"@odata.id": INVENTORY},
                "Actions": {"#UpdateService.SimpleUpdate": {
                    "target": SIMPLE_UPDATE, "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"]}}})
        if path == INVENTORY and method == "GET":
            members = self._members()
            return _json(start_response, 200, {
                "@odata.id": INVENTORY, "@odata.type": "#SoftwareInventoryCollection.SoftwareInventoryCollection",
                "Name": "Firmware Inventory", "Members@odata.count": len(members),
                "Members": [{"@odata.id": f"{INVENTORY}/{m}"} for m in members]})
        if path.startswith(INVENTORY + "/") and method == "GET":
            member = path.rsplit("/", 1)[-1]
            found = self._members().get(member)
            if found is None:
                return _error(start_response, 404, "Base.1.0.ResourceMissingAtURI", path)
            return _json(start_response, 200, self._member(member, *found))
        if path == SIMPLE_UPDATE and method == "POST":
            return self._simple_update(environ, start_response)
        if path == TASKS and method == "GET":
            with self._lock:
                ids = list(self.tasks)
            return _json(start_response, 200, {"@odata.id": TASKS, "Name": "Tasks", "Members@odata.count": len(ids),
                                               "Members": [{"@odata.id": f"{TASKS}/{i}"} for i in ids]})
        for prefix, monitor in ((TASKS + "/", False), (MONITORS + "/", True)):
            if path.startswith(prefix) and method == "GET":
                task = self._task(path.rsplit("/", 1)[-1])
                if task is None:
                    return _error(start_response, 404, "Base.1.0.ResourceMissingAtURI", path)
                running = task["TaskState"] not in TERMINAL
                return _json(start_response, 202 if (monitor and running) else 200, task,
                             [("Location", f"{MONITORS}/{task['Id']}")] if monitor and running else [])
        return self.app(environ, start_response)

    def _task(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            task = self.tasks.get(task_id)
            return json.loads(json.dumps(task)) if task is not None else None

    def _simple_update(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError:
            return _error(start_response, 400, "Base.1.0.MalformedJSON", "the body is not JSON")
        image = body.get("ImageURI") if isinstance(body, dict) else None
        if not isinstance(image, str) or not image.startswith(("http://", "https://")):
            return _error(start_response, 400, "Base.1.0.ActionParameterMissing",
                          "ImageURI (an http or https URL) is required")
        protocol = body.get("TransferProtocol")
        if protocol is not None and protocol not in ("HTTP", "HTTPS"):
            return _error(start_response, 400, "Base.1.0.ActionParameterValueNotInList", f"TransferProtocol {protocol}")
        members = self._members()
        targets: list[tuple[str, str]] = []
        for target in body.get("Targets") or []:
            member = str(target).rstrip("/").rsplit("/", 1)[-1]
            if not str(target).rstrip("/").startswith(INVENTORY) or member not in members:
                return _error(start_response, 400, "Base.1.0.ActionParameterValueNotInList", f"Targets {target}")
            targets.append(members[member][:2])
        with self._lock:
            task_id = str(self._next)
            self._next += 1
            task = {"@odata.id": f"{TASKS}/{task_id}", "@odata.type": "#Task.v1_7_0.Task", "Id": task_id,
                    "Name": "SimpleUpdate", "TaskState": "New", "TaskStatus": "OK", "PercentComplete": 0,
                    "StartTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "TaskMonitor": f"{MONITORS}/{task_id}", "Messages": []}
            self.tasks[task_id] = task
            self.requests.append((image, tuple(str(t) for t in body.get("Targets") or [])))
        threading.Thread(target=self._run, args=(task_id, image, targets), name=f"update-{task_id}",
                         daemon=True).start()
        return _json(start_response, 202, task, [("Location", f"{MONITORS}/{task_id}")])

    # --- the task ---------------------------------------------------------------------------------------
    def _set(self, task_id: str, **values: Any) -> None:
        with self._lock:
            self.tasks[task_id].update(values)

    def _finish(self, task_id: str, state: str, status: str, message_id: str, message: str,
                extra: Sequence[dict[str, str]] = ()) -> None:
        self._set(task_id, TaskState=state, TaskStatus=status, PercentComplete=100,
                  EndTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  Messages=[*extra, {"MessageId": message_id, "Message": message}])

    def _run(self, task_id: str, image: str, targets: list[tuple[str, str]]) -> None:
        self._set(task_id, TaskState="Running", PercentComplete=10)
        try:
            with urllib.request.urlopen(image, timeout=self.fetch_timeout) as answer:  # noqa: S310 - http(s) only
                payload = json.loads(answer.read(1 << 20))
            devices = payload["Devices"]["Device"]
            versions = {str(d["DeviceName"]): str(d["Version"]) for d in devices}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._finish(task_id, "Exception", "Critical", "Update.1.1.TransferFailed",
                         f"the image at {image} could not be fetched or read: {exc.__class__.__name__}")
            return
        if not targets:  # the image says which component it is for, on every system served
            targets = [(system, component) for system in self.systems for component in self.firmware(system)
                       if component in versions]
        unfit = [component for _system, component in targets if component not in versions]
        if unfit or not targets:
            self._finish(task_id, "Exception", "Critical", "Update.1.1.ApplyFailed",
                         f"the image holds {', '.join(sorted(versions)) or 'nothing'}, not "
                         f"{', '.join(unfit) or 'a component of this system'}")
            return
        self._set(task_id, PercentComplete=50)
        time.sleep(self.flash_seconds)
        staged: list[dict[str, str]] = []
        for system, component in targets:
            immediate = component in IMMEDIATE
            self.stage(system, component, versions[component], immediate)
            if not immediate:
                staged.append({"MessageId": "Update.1.1.AwaitToActivate",
                               "Message": f"{component} {versions[component]} is staged and becomes active when "
                               "the system next restarts"})
        self._finish(task_id, "Completed", "OK", "Update.1.1.UpdateSuccessful",
                     f"{', '.join(f'{c} {versions[c]}' for _s, c in targets)} flashed", staged)
