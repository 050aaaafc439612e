"""The sushy-tools Redfish emulator as bitten's BMC test peer and lab BMC, with the fake driver extended.

sushy-tools (OpenStack's Redfish emulator, the peer Bifrost and Ironic test against) serves the real Redfish
API; its fake driver keeps systems in a small database. bitten extends that driver where it falls short:

- BIOS: ``/BIOS`` shows the current attributes and ``/BIOS/Settings`` the pending ones; a PATCH stages values
  (an attribute the BIOS does not have is refused with 400, as a BMC does) and they apply when the system is
  next powered on or restarted — so "pending until the next reboot" behaves as on hardware.
- processors and total memory from the system's spec (the stock fake driver answers 501).
- the power-transition delay is a setting (0 for fast tests; the stock driver picks 1-11 s at random).
- a system is reachable by its name as well as its UUID (no 307 redirect per request).
- its state is kept in memory for the life of the process (sushy-tools' sqlite store locks up under tens of
  concurrent clients).
- a SessionService (DMTF requires one of every service; sushy-tools has none): ``POST
  /redfish/v1/SessionService/Sessions`` checks the account against the htpasswd file once and answers
  ``X-Auth-Token`` and a Location to DELETE; requests with a valid token skip the per-request basic-auth check
  (a bcrypt hash each time, as sushy-tools does); idle sessions end after ``SESSION_TIMEOUT``. With
  ``sessions=False`` the emulator is sushy-tools as it is (basic auth only).
- an UpdateService with FirmwareInventory, SimpleUpdate, tasks and task monitors
  (bitten.lab.doubles.update_service): staged firmware becomes active at the next power-on, like BIOS settings;
  ``boots`` counts power-ons and restarts so that tests see a reboot happen.

Known differences from hardware, kept as they are: ``BootSourceOverrideEnabled`` always reads back
``Continuous``; virtual media lives under the system; there is no Model or SerialNumber.

The emulator's Flask app is a module-level singleton in sushy-tools, so one process serves one emulator at a
time (``EmulatorServer`` enforces that); every run gets its own state directory.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import secrets
import signal
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitten.lab.doubles.update_service import UpdateService
from bitten.lab.serve import WsgiServer

LOG = logging.getLogger(__name__)

#: BIOS attributes every emulated system starts with (HPE Gen11 AMD names, factory-like values)
DEFAULT_BIOS: dict[str, Any] = {
    "BootMode": "Uefi",
    "WorkloadProfile": "GeneralPowerEfficientCompute",
    "ProcSMT": "Enabled",
    "ProcAmdIoVt": "Disabled",
    "Sriov": "Disabled",
    "NumaGroupSizeOpt": "Clustered",
    "PowerRegulator": "DynamicPowerSavings",
    "ThermalConfig": "OptimalCooling",
    "SecureBootStatus": "Disabled",
    "BootOrderPolicy": "RetryIndefinitely",
}

#: firmware every emulated system starts with (component -> version)
DEFAULT_FIRMWARE: dict[str, str] = {"BMC": "1.00", "BIOS": "1.00"}

#: a uuid namespace so that a system's UUID follows from its name
SYSTEM_NS = uuidlib.UUID("6a1c5d2e-6f0b-4a57-9a4e-0b1773b17e00")


@dataclass(frozen=True)
class SystemSpec:
    """One emulated system (one node's BMC view)."""

    name: str
    macs: tuple[str, ...] = ()
    power_state: str = "Off"
    bios: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_BIOS))
    cpus: int = 2
    cores_per_cpu: int = 8
    cpu_model: str = "AMD EPYC (emulated)"
    memory_gib: int = 64
    #: firmware component -> version, as the UpdateService's FirmwareInventory reports them
    firmware: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIRMWARE))

    @property
    def uuid(self) -> str:
        return str(uuidlib.uuid5(SYSTEM_NS, self.name))

    def record(self) -> dict[str, Any]:
        """The fake driver's record for this system."""
        return {
            "uuid": self.uuid, "name": self.name, "power_state": self.power_state,
            "nics": [{"mac": mac, "ip": None} for mac in self.macs],
            "bios": dict(self.bios), "bios_pending": {},
            "processors": [{"id": f"CPU{i + 1}", "Id": f"CPU{i + 1}", "socket": f"CPU {i + 1}",
                            "vendor": "AMD", "model": self.cpu_model, "cores": self.cores_per_cpu,
                            "threads": self.cores_per_cpu * 2} for i in range(self.cpus)],
            "memory_gib": self.memory_gib,
            "firmware": dict(self.firmware), "firmware_pending": {},
        }

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "macs": list(self.macs), "power_state": self.power_state, "bios": dict(self.bios),
                "cpus": self.cpus, "cores_per_cpu": self.cores_per_cpu, "cpu_model": self.cpu_model,
                "memory_gib": self.memory_gib, "firmware": dict(self.firmware)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SystemSpec:
        values = dict(data)
        values["macs"] = tuple(values.get("macs", ()))
        return cls(**values)


def _driver_class() -> Any:
    """The extended fake driver (imported lazily: sushy-tools is a test and lab dependency)."""
    import flask
    from sushy_tools import error
    from sushy_tools.emulator.resources.systems.fakedriver import FakeDriver

    class BittenFakeDriver(FakeDriver):  # type: ignore[misc]
        """sushy-tools' fake driver with BIOS (pending until power-on), processors, memory, a set power delay."""

        _systems: Any

        def __init__(self) -> None:
            super().__init__()
            # state in memory, for the life of the emulator process: sushy-tools' sqlite store answers
            # "database is locked" (HTTP 500) under tens of concurrent clients, which would measure the
            # emulator rather than the client (BITTEN_PERSISTENT_STATE keeps the sqlite store)
            if not self._config.get("BITTEN_PERSISTENT_STATE"):
                self._systems = dict(self._systems.items())

        def _get(self, identity: str) -> dict[str, Any]:
            uuid = self._by_name.get(identity, identity)
            try:
                system = self._systems[uuid]
            except KeyError:
                raise error.NotFound(f"Fake system {identity} was not found") from None
            return self._update_if_needed(system)

        def _update_if_needed(self, system: dict[str, Any]) -> dict[str, Any]:
            pending = system.get("pending_power")
            if pending and time.time() >= pending["apply_time"]:
                state = "On" if "Restart" in pending["power_state"] else pending["power_state"]
                changes: dict[str, Any] = {"power_state": state, "pending_power": None}
                if state == "On" and system.get("bios_pending"):
                    # the firmware applies staged BIOS settings while it boots
                    changes["bios"] = {**system.get("bios", {}), **system["bios_pending"]}
                    changes["bios_pending"] = {}
                if state == "On" and system.get("firmware_pending"):
                    # staged firmware (BIOS, GPU, NIC) becomes the running version at the next boot
                    changes["firmware"] = {**system.get("firmware", {}), **system["firmware_pending"]}
                    changes["firmware_pending"] = {}
                if state == "On":
                    changes["boots"] = int(system.get("boots", 0)) + 1
                    changes["last_boot"] = time.time()
                self._update(system, **changes)
            return system

        def set_power_state(self, identity: str, state: str) -> None:
            system = self._get(identity)
            delay = float(self._config.get("BITTEN_POWER_DELAY", 0.0))
            if state in ("On", "ForceOn"):
                target = "On"
            elif state == "GracefulShutdown" and self._config.get("BITTEN_GRACEFUL_IGNORED"):
                return  # an operating system that ignores the ACPI request (a fault to test against)
            elif state in ("ForceOff", "GracefulShutdown"):
                target = "Off"
            elif "Restart" in state or state == "PowerCycle":
                system["power_state"] = "Off"
                target = "ForceRestart"
            elif state == "PushPowerButton":
                target = "Off" if system["power_state"] == "On" else "On"
            else:
                raise error.NotSupportedError(f"Power state {state} is not supported")
            if system["power_state"] != target:
                self._update(system, pending_power={"power_state": target, "apply_time": time.time() + delay})

        def get_bios(self, identity: str) -> dict[str, Any]:
            system = self._get(identity)
            current = dict(system.get("bios") or DEFAULT_BIOS)
            if flask.has_request_context() and flask.request.path.rstrip("/").endswith("/Settings"):
                return {**current, **(system.get("bios_pending") or {})}
            return current

        def set_bios(self, identity: str, attributes: Mapping[str, Any]) -> None:
            system = self._get(identity)
            current = system.get("bios") or DEFAULT_BIOS
            if not isinstance(attributes, Mapping) or not attributes:
                raise error.BadRequest("PATCH needs Attributes with at least one attribute")
            unknown = sorted(set(attributes) - set(current))
            if unknown:
                raise error.BadRequest(f"BIOS attribute(s) {', '.join(unknown)} are not in the attribute registry")
            self._update(system, bios_pending={**(system.get("bios_pending") or {}), **attributes})

        def reset_bios(self, identity: str) -> None:
            self._update(identity, bios_pending=dict(DEFAULT_BIOS))

        def get_firmware(self, identity: str) -> dict[str, str]:
            return dict(self._get(identity).get("firmware") or {})

        def stage_firmware(self, identity: str, component: str, version: str, immediate: bool) -> None:
            system = self._get(identity)
            if immediate:
                self._update(system, firmware={**(system.get("firmware") or {}), component: version})
            else:
                self._update(system, firmware_pending={**(system.get("firmware_pending") or {}), component: version})

        def get_versions(self, identity: str) -> dict[str, str]:
            bios = self.get_firmware(identity).get("BIOS")
            return {"BiosVersion": bios} if bios else {}

        def boots(self, identity: str) -> int:
            """How often the system has powered on or restarted (tests see a reboot happen)."""
            return int(self._get(identity).get("boots", 0))

        def last_boot(self, identity: str) -> float | None:
            """When (time.time()) the system last powered on or restarted."""
            value = self._get(identity).get("last_boot")
            return float(value) if value is not None else None

        def get_processors(self, identity: str) -> list[dict[str, Any]]:
            return list(self._get(identity).get("processors") or [])

        def get_total_cpus(self, identity: str) -> int:
            return sum(int(p["threads"]) for p in self.get_processors(identity))

        def get_total_memory(self, identity: str) -> int:
            return int(self._get(identity).get("memory_gib") or 0)

    return BittenFakeDriver


_RUNNING = threading.Lock()
SESSION_SERVICE = "/redfish/v1/SessionService"
SESSIONS = f"{SESSION_SERVICE}/Sessions"
#: seconds a session may stay idle (iLO's default is 30 minutes)
SESSION_TIMEOUT = 1800.0


class SessionService:
    """DMTF sessions in front of sushy-tools' basic-auth middleware (one per emulated BMC).

    ``app`` is the emulator without authentication, ``auth_file`` the htpasswd file that basic auth checks too.
    A request with a valid ``X-Auth-Token`` goes to ``app`` directly; one with an unknown or expired token gets
    401; one without goes to ``basic`` (sushy-tools' middleware), as before.
    """

    def __init__(self, app: Any, basic: Any, auth_file: Path, timeout: float = SESSION_TIMEOUT) -> None:
        self.app = app
        self.basic = basic
        self.auth_file = auth_file
        self.timeout = timeout
        #: token -> [session id, user, last use]
        self.sessions: dict[str, list[Any]] = {}
        self.logins = 0
        self._lock = threading.Lock()

    def expire(self) -> None:
        """End every session now (as an idle timeout would)."""
        with self._lock:
            self.sessions.clear()

    def _valid(self, token: str) -> list[Any] | None:
        with self._lock:
            entry = self.sessions.get(token)
            if entry is None or time.monotonic() - entry[2] > self.timeout:
                self.sessions.pop(token, None)
                return None
            entry[2] = time.monotonic()
            return entry

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "").rstrip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path in ("/redfish/v1", "") and method == "GET":
            return self._root(environ, start_response)
        if path == SESSIONS and method == "POST":
            return self._login(environ, start_response)
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if token is None:
            return self.basic(environ, start_response)
        entry = self._valid(token)
        if entry is None:
            return _json(start_response, 401, _redfish_error("Base.1.0.NoValidSession", "no valid session"))
        if path == SESSION_SERVICE and method == "GET":
            return _json(start_response, 200, {"@odata.id": SESSION_SERVICE, "@odata.type":
                                               "#SessionService.v1_1_8.SessionService", "Id": "SessionService",
                                               "ServiceEnabled": True, "SessionTimeout": int(self.timeout),
                                               "Sessions": {"@odata.id": SESSIONS}})
        if path == SESSIONS and method == "GET":
            with self._lock:
                ids = [e[0] for e in self.sessions.values()]
            return _json(start_response, 200, {"@odata.id": SESSIONS, "Name": "Sessions",
                                               "Members": [{"@odata.id": f"{SESSIONS}/{i}"} for i in ids],
                                               "Members@odata.count": len(ids)})
        if path.startswith(SESSIONS + "/") and method == "DELETE":
            wanted = path.rsplit("/", 1)[-1]
            with self._lock:
                found = [t for t, e in self.sessions.items() if e[0] == wanted]
                for t in found:
                    del self.sessions[t]
            if not found:
                return _json(start_response, 404, _redfish_error("Base.1.0.ResourceMissingAtURI", path))
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        environ["REMOTE_USER"] = entry[1]
        return self.app(environ, start_response)

    def _root(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = status
            return lambda _data: None

        body = json.loads(b"".join(self.app(environ, capture)) or b"{}")
        body["SessionService"] = {"@odata.id": SESSION_SERVICE}
        body.setdefault("Links", {})["Sessions"] = {"@odata.id": SESSIONS}
        return _json(start_response, int(str(captured.get("status", "200")).split()[0]), body)

    def _login(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from sushy_tools.emulator import auth_basic

        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            user, password = str(body["UserName"]), str(body["Password"])
        except (ValueError, KeyError, TypeError):
            return _json(start_response, 400, _redfish_error("Base.1.0.PropertyMissing", "UserName, Password"))
        try:
            auth_basic.authenticate(str(self.auth_file), user, password.encode())
        except Exception:  # sushy-tools raises its Unauthorized for a wrong account
            return _json(start_response, 401, _redfish_error("Base.1.0.NoValidSession", "wrong user or password"))
        token = secrets.token_hex(16)
        session_id = base64.b32encode(secrets.token_bytes(5)).decode().lower()
        with self._lock:
            self.sessions[token] = [session_id, user, time.monotonic()]
            self.logins += 1
        location = f"{SESSIONS}/{session_id}"
        data = json.dumps({"@odata.id": location, "@odata.type": "#Session.v1_3_0.Session", "Id": session_id,
                           "UserName": user}).encode()
        start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                       ("X-Auth-Token", token), ("Location", location)])
        return [data]


def _redfish_error(message_id: str, message: str) -> dict[str, Any]:
    return {"error": {"code": message_id, "message": message,
                      "@Message.ExtendedInfo": [{"MessageId": message_id, "Message": message}]}}


class SingleSystem:
    """WSGI view of the emulator as one BMC: its Systems collection lists one system, others are not found.

    sushy-tools serves every system from one service root, as a chassis manager would; a fleet of servers has one
    BMC per node. Serving each system on its own port through this view gives every node its own "BMC", so that
    clients which scan the Systems collection (community.general's redfish modules GET every member until the Id
    matches) do the work they would do against a real server's BMC.
    """

    def __init__(self, app: Any, spec: SystemSpec) -> None:
        self.app = app
        self.ids = {spec.uuid, spec.name}
        self.member = f"/redfish/v1/Systems/{spec.uuid}"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "").rstrip("/")
        if path == "/redfish/v1/Systems" and environ.get("REQUEST_METHOD") == "GET":
            return _json(start_response, 200, {
                "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                "Name": "Computer System Collection", "Members@odata.count": 1,
                "Members": [{"@odata.id": self.member}], "@odata.id": "/redfish/v1/Systems"})
        parts = path.split("/")
        if len(parts) > 4 and parts[3] == "Systems" and parts[4] not in self.ids:
            return _json(start_response, 404, {"error": {"code": "Base.1.0.ResourceMissingAtURI",
                                                          "message": f"{path} is not on this BMC"}})
        return self.app(environ, start_response)


def _json(start_response: Callable[..., Any], status: int, body: Any) -> list[bytes]:
    from http import HTTPStatus

    data = json.dumps(body).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [("Content-Type", "application/json"),
                                                              ("Content-Length", str(len(data)))])
    return [data]


class EmulatorServer:
    """sushy-tools' emulator with bitten's driver, served by werkzeug in a thread (or in the foreground).

    ``graceful_ignored`` makes GracefulShutdown a no-op (an OS that ignores the request). With
    ``port_per_system`` every system gets its own port (and a SingleSystem view): one BMC per node, at
    ``ports[name]``; otherwise all systems share ``port``, as in the lab.
    """

    def __init__(self, systems: Sequence[SystemSpec], state_dir: Path, host: str = "127.0.0.1", port: int = 0,
                 cert: tuple[Path, Path] | None = None, auth_file: Path | None = None, power_delay: float = 0.0,
                 wrap: Callable[[Any], Any] | None = None, port_per_system: bool = False,
                 graceful_ignored: bool = False, sessions: bool = True, flash_seconds: float = 0.5) -> None:
        self.systems = list(systems)
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.cert = cert
        self.auth_file = auth_file
        self.power_delay = power_delay
        self.wrap = wrap
        self.port_per_system = port_per_system
        self.graceful_ignored = graceful_ignored
        self.sessions = sessions
        self.flash_seconds = flash_seconds
        #: one SessionService per served BMC (with an auth file and sessions on)
        self.session_services: list[SessionService] = []
        #: one UpdateService per served BMC
        self.update_services: list[Any] = []
        self.driver: Any = None
        #: system name -> port, when each system has its own
        self.ports: dict[str, int] = {}
        self._servers: list[WsgiServer] = []
        self._owns_lock = False

    @property
    def url(self) -> str:
        scheme = "https" if self.cert else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url_of(self, name: str) -> str:
        scheme = "https" if self.cert else "http"
        return f"{scheme}://{self.host}:{self.ports.get(name, self.port)}"

    def _app(self) -> Any:
        from sushy_tools.emulator import main as emulator

        app = emulator.app
        self.state_dir.mkdir(parents=True, exist_ok=True)
        app.config.update({
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_STATE_DIR": str(self.state_dir),
            "SUSHY_EMULATOR_FAKE_SYSTEMS": [s.record() for s in self.systems],
            "SUSHY_EMULATOR_FEATURE_SET": "full",
            "BITTEN_POWER_DELAY": self.power_delay,
            "BITTEN_GRACEFUL_IGNORED": self.graceful_ignored,
        })
        app.config.pop("SUSHY_EMULATOR_AUTH_FILE", None)
        # a fresh driver for this run: sushy-tools memoizes its drivers on the app object
        app._cache = {}
        driver = _driver_class().initialize(app.config, app.logger)()
        self.driver = driver
        systems_getter = type(app).systems.fget.__wrapped__
        app._cache[systems_getter] = {(frozenset(), frozenset()): driver}
        if app.systems is not driver:  # pragma: no cover - sushy-tools changed its memoization
            raise RuntimeError("cannot install bitten's fake driver into this sushy-tools version")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        return app

    def _stack(self, app: Any, systems: Sequence[SystemSpec]) -> Any:
        from sushy_tools.emulator import main as emulator

        driver = self.driver
        inner = UpdateService(app, {s.name: f"/redfish/v1/Systems/{s.name}" for s in systems}, driver.get_firmware,
                              driver.stage_firmware, flash_seconds=self.flash_seconds)
        self.update_services.append(inner)
        wsgi: Any = inner
        if self.auth_file is not None:
            wsgi = emulator.RedfishAuthMiddleware(wsgi, str(self.auth_file))
            if self.sessions:
                wsgi = SessionService(inner, wsgi, self.auth_file)
                self.session_services.append(wsgi)
        if self.wrap is not None:
            wsgi = self.wrap(wsgi)
        return wsgi

    def expire_sessions(self) -> None:
        for service in self.session_services:
            service.expire()

    def start(self) -> EmulatorServer:
        if not _RUNNING.acquire(blocking=False):
            raise RuntimeError("a sushy-tools emulator already runs in this process (its app is a singleton)")
        self._owns_lock = True
        try:
            app = self._app()
            if self.port_per_system:
                for spec in self.systems:
                    server = WsgiServer(self._stack(SingleSystem(app, spec), [spec]), self.host, 0, self.cert,
                                        poll_interval=0.5).start()
                    self._servers.append(server)
                    self.ports[spec.name] = server.port
                self.port = self._servers[0].port if self._servers else 0
            else:
                server = WsgiServer(self._stack(app, self.systems), self.host, self.port, self.cert).start()
                self._servers.append(server)
                self.port = server.port
        except BaseException:
            self.stop()
            raise
        return self

    def wait(self) -> None:
        """Block until interrupted (foreground services)."""
        if self._servers:
            self._servers[0].wait()

    def serve_forever(self) -> None:
        """Serve in the foreground (the lab service)."""
        self.start()
        try:
            self.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        if len(self._servers) > 1:
            from concurrent.futures import ThreadPoolExecutor

            # each server's loop notices the shutdown within its poll interval: stop them all at once
            with ThreadPoolExecutor(max_workers=min(64, len(self._servers))) as pool:
                list(pool.map(WsgiServer.stop, self._servers))
        for server in self._servers:
            server.stop()
        self._servers = []
        self._release()

    def _release(self) -> None:
        if self._owns_lock:
            self._owns_lock = False
            _RUNNING.release()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_htpasswd(path: Path, username: str, password: str, rounds: int = 10) -> None:
    """An htpasswd file with one bcrypt entry (the only digest sushy-tools accepts), mode 0600."""
    import bcrypt

    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(f"{username}:{digest}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bitten.lab.doubles.bmc_emulator --config FILE``: serve the emulator described by a JSON file.

    The file holds ``host``, ``port``, ``state_dir``, ``cert``, ``key``, ``auth_file``, ``power_delay``,
    ``systems`` (a list of SystemSpec fields), and optionally ``port_per_system`` with ``ports_file`` (where the
    system -> port map is written once all listen). The lab writes it under .lab/bmc/.
    """
    parser = argparse.ArgumentParser(prog="python -m bitten.lab.doubles.bmc_emulator")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, _exit_on_term)
    cert = (Path(config["cert"]), Path(config["key"])) if config.get("cert") else None
    server = EmulatorServer(
        [SystemSpec.from_dict(s) for s in config["systems"]], Path(config["state_dir"]), host=config["host"],
        port=int(config["port"]), cert=cert, auth_file=Path(config["auth_file"]) if config.get("auth_file") else None,
        power_delay=float(config.get("power_delay", 0.0)), port_per_system=bool(config.get("port_per_system")),
        sessions=bool(config.get("sessions", True)), flash_seconds=float(config.get("flash_seconds", 0.5)))
    server.start()
    if config.get("ports_file"):
        # written once every port listens: a waiting client may start when the file appears
        tmp = Path(str(config["ports_file"]) + ".tmp")
        tmp.write_text(json.dumps(server.ports or {s.name: server.port for s in server.systems}))
        tmp.replace(config["ports_file"])
    LOG.info("Redfish emulator with %d system(s) on %s", len(server.systems), config["host"])
    try:
        server.wait()
    finally:
        server.stop()
    return 0


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
