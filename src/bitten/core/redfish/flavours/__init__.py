"""BMC vendor flavours: what a vendor's Redfish does differently, one module per vendor, found by name.

Each module of this package defines ``FLAVOUR``, an instance of a :class:`Flavour` subclass; the registry finds them
by listing the package (no list to edit). Everything that names a flavour derives from here: the site check of
``bitten_bmc.flavour`` (bitten.hardware.checks), the Ansible module's choices and documentation
(plugins/modules/bitten_redfish.py, plugins/doc_fragments/bitten_redfish_bmc.py), the Pulumi provider's check
and ``bitten hardware flavours``.

**Adding a vendor** touches one module and its tests: ``bitten/core/redfish/flavours/<name>.py`` with a subclass
that overrides what differs from plain Redfish (:class:`Flavour` documents each hook), and ``FLAVOUR = ...``.
:func:`register` adds a flavour at run time (tests, site plugins).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from bitten.core.redfish.document import link

AuthMode = Literal["session", "auto", "basic", "none"]
GetJson = Callable[[str], dict[str, Any]]


class Flavour:
    """Plain DMTF Redfish. A vendor's module subclasses it and overrides what its BMCs do differently."""

    #: the name sites write in ``bitten_bmc.flavour``
    name: ClassVar[str] = "generic"
    #: one line for documentation and choices
    summary: ClassVar[str] = "plain Redfish"
    #: ``session``: Redfish sessions only (a failed login is never followed by basic auth, which would count twice
    #: against a lock-out); ``auto``: a session when the service root links a SessionService, else basic auth
    #: without trying (no failed login on services that have none); ``basic``: basic auth only; ``none``: no
    #: credentials at all (read-only services on a closed network, mockups)
    auth: ClassVar[AuthMode] = "auto"
    #: the boot override carries BootSourceOverrideMode; False where the firmware takes the mode from a BIOS
    #: attribute and refuses it in the override
    boot_mode_in_override: ClassVar[bool] = True
    #: look for virtual media under the system first (DSP2046 2019+), then under its manager
    media_under_system: ClassVar[bool] = True

    def bios_settings(self, bios_path: str, bios: dict[str, Any]) -> tuple[str, str | None, bool]:
        """Where BIOS changes are PATCHed, the ETag to send, and whether that is a separate settings object.

        DMTF: the object ``@Redfish.Settings.SettingsObject`` names (followed, never guessed); a BIOS without one
        takes the PATCH itself.
        """
        settings = bios.get("@Redfish.Settings") or {}
        path = link(settings, "SettingsObject")
        if path is None:
            return bios_path, None, False
        etag = settings.get("ETag")
        return path, etag if isinstance(etag, str) and etag else None, True

    def media_collection(self, system: dict[str, Any], get_json: GetJson) -> str | None:
        """The VirtualMedia collection that serves this system, or None when it has none."""
        if self.media_under_system:
            own = link(system, "VirtualMedia")
            if own:
                return own
        manager = link(system, "Links", "ManagedBy")
        if manager is None:
            return None
        return link(get_json(manager), "VirtualMedia")

    def insert_media(self, connector: Any, path: str, device: dict[str, Any], image: str) -> None:
        """Insert ``image`` into the CD device at ``path`` (its document ``device``), ejecting another image first.

        DMTF: the InsertMedia/EjectMedia actions; sushy's VirtualMedia falls back to PATCH for BMCs that want it.
        """
        from sushy.resources.manager.virtual_media import VirtualMedia  # only for boots from virtual media

        connector.preload(path, device)
        media = VirtualMedia(connector, path)
        if device.get("Inserted") and device.get("Image") not in (None, "", image):
            media.eject_media()
            media.refresh(force=True)
        media.insert_media(image, inserted=True, write_protected=True)


_REGISTRY: dict[str, Flavour] = {}
_LOADED = False
_LOCK = threading.Lock()


def _load() -> None:
    """Import every module of this package once; each registers its FLAVOUR."""
    global _LOADED
    with _LOCK:
        if _LOADED:
            return
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            flavour = getattr(module, "FLAVOUR", None)
            if isinstance(flavour, Flavour):
                _REGISTRY.setdefault(flavour.name, flavour)
        _LOADED = True


def register(flavour: Flavour) -> Flavour:
    """Add a flavour (refusing a second one of the same name); returns it."""
    _load()
    with _LOCK:
        if flavour.name in _REGISTRY and _REGISTRY[flavour.name] is not flavour:
            raise ValueError(f"a Redfish flavour named {flavour.name!r} is registered already")
        _REGISTRY[flavour.name] = flavour
    return flavour


def unregister(name: str) -> None:
    _load()
    with _LOCK:
        _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered flavour name, sorted."""
    _load()
    return tuple(sorted(_REGISTRY))


def get(name: str) -> Flavour:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        # imported here: the errors module loads sushy and requests, which validating a site (the flavour names
        # only) does not need, and `bitten validate`/`render` start faster without them
        from bitten.core.redfish.errors import UnknownFlavour

        raise UnknownFlavour(f"unknown Redfish flavour {name!r}; known: {', '.join(names())}") from None


def describe() -> dict[str, str]:
    """name -> summary of every flavour (for documentation)."""
    _load()
    return {name: _REGISTRY[name].summary for name in names()}
