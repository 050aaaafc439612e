"""An HPE iLO 5-shaped Redfish service: a test double for the iLO specifics the sushy-tools emulator lacks.

Test double (no iLO can run here). Its resources are HPE's own iLO 5 responses, from the JSON samples in the
proliantutils wheel (data/ilo5.json, Apache-2.0, see data/NOTICE), with the node's model, serial, MACs,
processors, memory and GPUs filled in. Behaviour follows HPE's iLO 5 Redfish documentation and redfish.md:

- sessions: ``POST /redfish/v1/SessionService/Sessions/`` answers ``X-Auth-Token`` and a Location to DELETE;
  basic auth works as well; anything else is 401;
- BIOS: ``/redfish/v1/systems/1/bios/`` (current) names ``/redfish/v1/systems/1/bios/settings/`` (lower case,
  trailing slash) in ``@Redfish.Settings``; a PATCH there stages values (unknown attributes: 400) and answers
  ``iLO.2.8.SystemResetRequired``; staged values apply at the next power-on or restart;
- boot: PATCH ``Boot`` with BootSourceOverrideTarget/Enabled; ``Once`` is consumed by the next boot;
  BootSourceOverrideMode is read-only (ASSUMPTION: iLO takes the boot mode from the BIOS attribute BootMode);
- power: ComputerSystem.Reset with the ResetTypes the sample advertises; ``On`` on a running system is refused
  with ``InvalidOperationForSystemState``; transitions land after ``power_delay`` seconds;
- virtual media: ``Managers/1/VirtualMedia/2/`` (CD/DVD), PATCH ``Image`` (+ ``Oem.Hpe.BootOnNextServerReset``)
  or the Oem.Hpe Insert/EjectVirtualMedia actions;
- Oem.Hpe everywhere the samples have it; GPUs as Oem.Hpe PCIDevices with PCI class 0x03.

Paths are matched case-insensitively and with or without the trailing slash, as iLO does.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

SYSTEM = "/redfish/v1/Systems/1/"
BIOS = "/redfish/v1/systems/1/bios/"
BIOS_SETTINGS = "/redfish/v1/systems/1/bios/settings/"
MANAGER = "/redfish/v1/Managers/1/"
VMEDIA = "/redfish/v1/Managers/1/VirtualMedia/"
CHASSIS = "/redfish/v1/Chassis/1/"
SESSIONS = "/redfish/v1/SessionService/Sessions/"
#: attributes of AMD Gen11 BIOSes that the (Intel Gen10) sample lacks; bitten's reference profiles set them
AMD_BIOS = {"ProcSMT": "Enabled", "ProcAmdIoVt": "Disabled"}


@cache
def samples() -> dict[str, Any]:
    """HPE's iLO 5 sample resources (read-only; copy before changing)."""
    text = resources.files("bitten.lab.doubles").joinpath("data/ilo5.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass
class IloSpec:
    """The node behind the iLO."""

    model: str = "ProLiant XD685"
    serial: str = "CZ2D1B0685"
    macs: tuple[str, ...] = ("94:40:c9:68:50:01",)
    power: str = "Off"
    username: str = "Administrator"
    password: str = "test-only-password"  # noqa: S105 - a test double's account
    cpus: int = 2
    cores_per_cpu: int = 64
    cpu_model: str = "AMD EPYC 9575F 64-Core Processor"
    dimms: int = 24
    dimm_mib: int = 98304
    gpus: int = 0
    gpu_name: str = "NVIDIA B200 SXM 180GB"
    power_delay: float = 0.0
    bios: Mapping[str, Any] = field(default_factory=lambda: dict(AMD_BIOS))
    #: start with the sample's own pending settings staged (as a freshly captured iLO would show)
    sample_pending: bool = False
    #: prefix of the session Location header ("" for a path, as iLO sends; a URL to test origin pinning)
    session_origin: str = ""


def _error(status: int, message_id: str, message: str = "") -> tuple[int, dict[str, Any]]:
    info: dict[str, Any] = {"MessageId": message_id}
    if message:
        info["Message"] = message
    return status, {"error": {"code": "iLO.0.10.ExtendedInfo",
                              "message": "See @Message.ExtendedInfo for more information.",
                              "@Message.ExtendedInfo": [info]}}


def _ok(message_id: str = "Base.1.4.Success") -> tuple[int, dict[str, Any]]:
    return 200, {"error": {"code": "iLO.0.10.ExtendedInfo",
                           "message": "See @Message.ExtendedInfo for more information.",
                           "@Message.ExtendedInfo": [{"MessageId": message_id}]}}


def _const(value: Any) -> Callable[[], Any]:
    def fixed() -> Any:
        return value

    return fixed


def _norm(path: str) -> str:
    return path.lower().rstrip("/")


Handler = Callable[[dict[str, Any]], tuple[int, Any]]


class IloFake:
    """One iLO (one system, one manager, one chassis) as a WSGI app; thread-safe."""

    def __init__(self, spec: IloSpec | None = None) -> None:
        self.spec = spec or IloSpec()
        data = samples()
        attrs = {k: v for k, v in data["bios"]["Attributes"].items()}
        attrs.update(self.spec.bios)
        self.bios: dict[str, Any] = attrs
        self.staged: dict[str, Any] = {}
        if self.spec.sample_pending:
            staged = data["bios_settings"]["Attributes"]
            self.staged = {k: v for k, v in staged.items() if k in attrs and attrs[k] != v}
        self.power = self.spec.power
        self.pending_power: tuple[str, float] | None = None
        self.boot_target = "None"
        self.boot_enabled = "Disabled"
        self.media_image: str | None = None
        self.boot_on_next_reset = False
        self.sessions: dict[str, str] = {}
        #: (method, normalised path) -> number of requests, for tests
        self.calls: Counter[tuple[str, str]] = Counter()
        self.boots = 0
        self._lock = threading.RLock()

    # --- state ------------------------------------------------------------------------------------------
    def _settle(self) -> None:
        """Land a power transition whose time has come; a boot applies staged BIOS and consumes Once."""
        if self.pending_power is None:
            return
        target, at = self.pending_power
        if time.time() < at:
            return
        self.pending_power = None
        if target == "Off":
            self.power = "Off"
            return
        self.power = "On"
        self.boots += 1
        self.bios.update(self.staged)
        self.staged = {}
        if self.boot_enabled == "Once":
            self.boot_enabled, self.boot_target = "Disabled", "None"
        self.boot_on_next_reset = False

    def expire_sessions(self) -> None:
        """End every session, as iLO does after its idle timeout: their tokens answer 401 from now on."""
        with self._lock:
            self.sessions.clear()

    # --- resources --------------------------------------------------------------------------------------
    def system(self) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(samples()["system"])
        spec = self.spec
        body.update({"PowerState": self.power, "Model": spec.model, "SerialNumber": spec.serial,
                     "SKU": spec.model, "UUID": str(uuid.uuid5(uuid.NAMESPACE_OID, f"hpe-ilo/{spec.serial}"))})
        body["Boot"]["BootSourceOverrideTarget"] = self.boot_target
        body["Boot"]["BootSourceOverrideEnabled"] = self.boot_enabled
        body["MemorySummary"]["TotalSystemMemoryGiB"] = spec.dimms * spec.dimm_mib // 1024
        body["ProcessorSummary"].update({"Count": spec.cpus, "Model": spec.cpu_model})
        body["Oem"]["Hpe"]["PostState"] = "FinishedPost" if self.power == "On" else "PowerOff"
        return body

    def _collection(self, path: str, members: Iterable[str], name: str) -> dict[str, Any]:
        items = [{"@odata.id": m} for m in members]
        return {"@odata.id": path, "Name": name, "Members": items, "Members@odata.count": len(items)}

    def _routes(self) -> dict[tuple[str, str], Handler]:
        data = samples()
        spec = self.spec
        r: dict[tuple[str, str], Handler] = {}

        def get(path: str, fn: Callable[[], Any]) -> None:
            r[("GET", _norm(path))] = lambda _body: (200, fn())

        get("/redfish/v1/", lambda: data["root"])
        get("/redfish/v1/SessionService/", lambda: {"@odata.id": "/redfish/v1/SessionService/", "Id": "SessionService",
                                                    "Sessions": {"@odata.id": SESSIONS}, "ServiceEnabled": True})
        get(SESSIONS, lambda: self._collection(SESSIONS, [f"{SESSIONS}{s}/" for s in self.sessions.values()],
                                               "Sessions"))
        r[("POST", _norm(SESSIONS))] = self._login
        get("/redfish/v1/Systems/", lambda: self._collection("/redfish/v1/Systems/", [SYSTEM], "Computer Systems"))
        get(SYSTEM, self.system)
        r[("PATCH", _norm(SYSTEM))] = self._patch_system
        r[("POST", _norm(SYSTEM + "Actions/ComputerSystem.Reset/"))] = self._reset
        get(BIOS, self._bios)
        get(BIOS_SETTINGS, self._bios_settings)
        r[("PATCH", _norm(BIOS_SETTINGS))] = self._patch_bios
        nics = [f"{SYSTEM}EthernetInterfaces/{i + 1}/" for i in range(len(spec.macs))]
        get(SYSTEM + "EthernetInterfaces/", lambda: self._collection(SYSTEM + "EthernetInterfaces/", nics,
                                                                     "Network Interfaces"))
        for i, mac in enumerate(spec.macs):
            get(nics[i], _const({**copy.deepcopy(data["ethernet_interface"]), "@odata.id": nics[i], "Id": str(i + 1),
                                 "MACAddress": mac}))
        cpus = [f"{SYSTEM}Processors/{i + 1}/" for i in range(spec.cpus)]
        get(SYSTEM + "Processors/", lambda: self._collection(SYSTEM + "Processors/", cpus, "Processors"))
        for i in range(spec.cpus):
            get(cpus[i], _const({
                "@odata.id": cpus[i], "@odata.type": "#Processor.v1_0_0.Processor", "Id": str(i + 1),
                "Name": "Processors", "Socket": f"Proc {i + 1}", "ProcessorType": "CPU", "Manufacturer": "AMD",
                "Model": spec.cpu_model, "TotalCores": spec.cores_per_cpu, "TotalThreads": spec.cores_per_cpu * 2,
                "Status": {"Health": "OK", "State": "Enabled"}}))
        dimms = [f"{SYSTEM}Memory/proc{i % max(spec.cpus, 1) + 1}dimm{i // max(spec.cpus, 1) + 1}/"
                 for i in range(spec.dimms)]
        get(SYSTEM + "Memory/", lambda: {**copy.deepcopy(data["memory_collection"]),
                                          **self._collection(SYSTEM + "Memory/", dimms, "Memory DIMM Collection")})
        for path in dimms:
            get(path, _const({"@odata.id": path, "@odata.type": "#Memory.v1_7_1.Memory",
                              "Id": path.rstrip("/").rsplit("/", 1)[-1], "CapacityMiB": spec.dimm_mib,
                              "MemoryDeviceType": "DDR5", "Status": {"Health": "OK", "State": "Enabled"}}))
        pci_root = SYSTEM + "PCIDevices/"
        pci = {f"{pci_root}1/": data["pci_device_nic"], f"{pci_root}6/": data["pci_device_video"]}
        for g in range(spec.gpus):
            path = f"{pci_root}{20 + g}/"
            pci[path] = {**copy.deepcopy(data["pci_device_video"]), "@odata.id": path, "Id": str(20 + g),
                         "Name": spec.gpu_name, "DeviceType": "Accelerator", "ClassCode": 3, "SubclassCode": 2,
                         "LocationString": f"OCP/SXM GPU {g + 1}", "DeviceLocation": "Baseboard", "VendorID": 4318}
        get(pci_root, lambda: {**copy.deepcopy(data["pci_device_collection"]),
                               **self._collection(pci_root, list(pci), "PciDevices")})
        for path, body in pci.items():
            get(path, _const(body))
        get("/redfish/v1/Managers/", lambda: self._collection("/redfish/v1/Managers/", [MANAGER], "Managers"))
        get(MANAGER, lambda: data["manager"])
        get(VMEDIA, lambda: data["vmedia_collection"])
        get(VMEDIA + "1/", lambda: data["vmedia_floppy"])
        get(VMEDIA + "2/", self._cd)
        r[("PATCH", _norm(VMEDIA + "2/"))] = self._patch_cd
        r[("POST", _norm(VMEDIA + "2/Actions/Oem/Hpe/HpeiLOVirtualMedia.InsertVirtualMedia/"))] = self._insert
        r[("POST", _norm(VMEDIA + "2/Actions/Oem/Hpe/HpeiLOVirtualMedia.EjectVirtualMedia/"))] = self._eject
        get("/redfish/v1/Chassis/", lambda: self._collection("/redfish/v1/Chassis/", [CHASSIS], "Chassis"))
        get(CHASSIS, lambda: {**copy.deepcopy(data["chassis"]), "SerialNumber": spec.serial, "Model": spec.model})
        # iLO 5 lists GPUs under Oem.Hpe PCIDevices; its standard PCIeDevices collection stays empty here
        get(CHASSIS + "PCIeDevices/", lambda: self._collection(CHASSIS + "PCIeDevices/", [], "PCIe Devices"))
        return r

    def _bios(self) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(samples()["bios"])
        body["Attributes"] = dict(self.bios)
        return body

    def _bios_settings(self) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(samples()["bios_settings"])
        body["Attributes"] = {**self.bios, **self.staged}
        return body

    def _cd(self) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(samples()["vmedia_cd"])
        inserted = self.media_image is not None
        body.update({"Image": self.media_image or "", "Inserted": inserted,
                     "ConnectedVia": "URI" if inserted else "NotConnected"})
        body["Oem"]["Hpe"]["BootOnNextServerReset"] = self.boot_on_next_reset
        return body

    # --- writes -----------------------------------------------------------------------------------------
    def _login(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("UserName") != self.spec.username or body.get("Password") != self.spec.password:
            return _error(401, "Base.1.4.NoValidSession")
        token = secrets.token_hex(16)
        session_id = f"{self.spec.username.lower()}{secrets.token_hex(4)}"
        self.sessions[token] = session_id
        location = f"{self.spec.session_origin}{SESSIONS}{session_id}/"
        return 201, ({"@odata.id": location, "Id": session_id, "UserName": self.spec.username},
                     {"X-Auth-Token": token, "Location": location})

    def _patch_system(self, body: dict[str, Any]) -> tuple[int, Any]:
        boot = body.get("Boot")
        if not isinstance(boot, dict) or set(body) - {"Boot", "AssetTag", "IndicatorLED"}:
            return _error(400, "Base.1.4.PropertyNotWritable", "only Boot, AssetTag and IndicatorLED can be patched")
        allowed = samples()["system"]["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
        if "BootSourceOverrideMode" in boot:
            return _error(400, "Base.1.4.PropertyNotWritable", "BootSourceOverrideMode is read-only; set the BIOS "
                          "attribute BootMode")
        target = boot.get("BootSourceOverrideTarget", self.boot_target)
        enabled = boot.get("BootSourceOverrideEnabled", self.boot_enabled)
        if target not in allowed:
            return _error(400, "Base.1.4.PropertyValueNotInList", f"BootSourceOverrideTarget {target}")
        if enabled not in ("Disabled", "Once", "Continuous"):
            return _error(400, "Base.1.4.PropertyValueNotInList", f"BootSourceOverrideEnabled {enabled}")
        self.boot_target, self.boot_enabled = target, enabled
        return _ok()

    def _reset(self, body: dict[str, Any]) -> tuple[int, Any]:
        reset = body.get("ResetType")
        allowed = samples()["system"]["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
        if reset not in allowed:
            return _error(400, "Base.1.4.ActionParameterValueNotInList", f"ResetType {reset}")
        on = self.power == "On" and self.pending_power is None
        if reset == "On" and on:
            return _error(400, "iLO.2.8.InvalidOperationForSystemState", "the server is already on")
        if reset == "ForceOff" and not on:
            return _error(400, "iLO.2.8.InvalidOperationForSystemState", "the server is already off")
        when = time.time() + self.spec.power_delay
        if reset == "ForceRestart":
            self.power = "Off"
            self.pending_power = ("On", when)
        elif reset == "PushPowerButton":
            self.pending_power = ("Off" if on else "On", when)
        elif reset == "ForceOff":
            self.pending_power = ("Off", when)
        elif reset == "On":
            self.pending_power = ("On", when)
        return _ok()

    def _patch_bios(self, body: dict[str, Any]) -> tuple[int, Any]:
        attrs = body.get("Attributes")
        if not isinstance(attrs, dict) or not attrs:
            return _error(400, "Base.1.4.PropertyMissing", "Attributes")
        unknown = sorted(set(attrs) - set(self.bios))
        if unknown:
            return _error(400, "Base.1.4.PropertyUnknown", f"{', '.join(unknown)} is not in the attribute registry")
        self.staged.update(attrs)
        return _ok("iLO.2.8.SystemResetRequired")

    def _patch_cd(self, body: dict[str, Any]) -> tuple[int, Any]:
        if "Image" in body:
            image = body["Image"]
            self.media_image = image or None
        hpe = ((body.get("Oem") or {}).get("Hpe") or {})
        if "BootOnNextServerReset" in hpe:
            self.boot_on_next_reset = bool(hpe["BootOnNextServerReset"])
        return _ok()

    def _insert(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("Image"):
            return _error(400, "Base.1.4.ActionParameterMissing", "Image")
        self.media_image = body["Image"]
        return _ok()

    def _eject(self, body: dict[str, Any]) -> tuple[int, Any]:
        self.media_image = None
        self.boot_on_next_reset = False
        return _ok()

    # --- WSGI -------------------------------------------------------------------------------------------
    def _authorised(self, headers: Mapping[str, str]) -> bool:
        token = headers.get("X-Auth-Token")
        if token:
            return token in self.sessions
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return user == self.spec.username and password == self.spec.password
        return False

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        key = (method, _norm(path))
        with self._lock:
            self.calls[key] += 1
            self._settle()
            public = key in (("GET", "/redfish/v1"), ("POST", _norm(SESSIONS)))
            if method == "DELETE" and key[1].startswith(_norm(SESSIONS) + "/"):
                if not self._authorised(headers):
                    status, payload = _error(401, "Base.1.4.NoValidSession")
                    return status, payload, {}
                session_id = key[1].rsplit("/", 1)[-1]
                for token, sid in list(self.sessions.items()):
                    if sid.lower() == session_id:
                        del self.sessions[token]
                        return 200, _ok()[1], {}
                return 404, _error(404, "Base.1.4.ResourceMissingAtURI")[1], {}
            if not public and not self._authorised(headers):
                status, payload = _error(401, "Base.1.4.NoValidSession")
                return status, payload, {}
            routes = self._route_table()
            handler = routes.get(key)
            if handler is None:
                if any(p == key[1] for _, p in routes):
                    return 405, _error(405, "iLO.0.10.MethodNotAllowed")[1], {}
                return 404, _error(404, "Base.1.4.ResourceMissingAtURI", path)[1], {}
            status, payload = handler(body if isinstance(body, dict) else {})
            extra: dict[str, str] = {}
            if isinstance(payload, tuple):
                payload, extra = payload
            return status, payload, extra

    def _route_table(self) -> dict[tuple[str, str], Handler]:
        table: dict[tuple[str, str], Handler] | None = getattr(self, "_table", None)
        if table is None:
            table = self._table = self._routes()
        return table

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        from werkzeug.wrappers import Request

        request = Request(environ)
        body: Any = None
        if request.method in ("POST", "PATCH") and request.content_length:
            try:
                body = json.loads(request.get_data())
            except ValueError:
                status, payload = _error(400, "Base.1.4.MalformedJSON")
                return self._respond(start_response, status, payload, {})
        headers = {k: v for k, v in request.headers.items()}
        status, payload, extra = self.handle(request.method, request.path, headers, body)
        return self._respond(start_response, status, payload, extra)

    @staticmethod
    def _respond(start_response: Callable[..., Any], status: int, payload: Any,
                 extra: Mapping[str, str]) -> list[bytes]:
        from http import HTTPStatus

        data = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data))),
                   ("OData-Version", "4.0"), *extra.items()]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [data]
