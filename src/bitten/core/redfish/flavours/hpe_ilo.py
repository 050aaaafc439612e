"""``hpe_ilo``: HPE iLO 5/6 (ProLiant and Cray XD), following HPE's iLO Redfish documentation.

- Redfish sessions only: a failed session login followed by a basic-auth attempt counts twice against iLO's
  login-failure delay, so there is no fallback.
- The boot mode is the BIOS attribute ``BootMode``: iLO refuses BootSourceOverrideMode in the boot override.
- Virtual media lives under the manager (``Managers/1/VirtualMedia``); an image is inserted by PATCHing ``Image``
  with ``Oem.Hpe.BootOnNextServerReset`` (HPE's documented way on iLO 5), or through the standard action where the
  firmware offers it.
- BIOS changes go to ``@Redfish.Settings.SettingsObject`` (``/redfish/v1/systems/1/bios/settings/`` on iLO: lower
  case, trailing slash), followed as the link says.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bitten.core.redfish.flavours import AuthMode, Flavour


class HpeIlo(Flavour):
    name: ClassVar[str] = "hpe_ilo"
    summary: ClassVar[str] = "HPE iLO 5/6: Redfish sessions, Oem.Hpe, virtual media under Managers/1"
    auth: ClassVar[AuthMode] = "session"
    boot_mode_in_override: ClassVar[bool] = False
    media_under_system: ClassVar[bool] = False

    def insert_media(self, connector: Any, path: str, device: dict[str, Any], image: str) -> None:
        if (device.get("Actions") or {}).get("#VirtualMedia.InsertMedia"):
            super().insert_media(connector, path, device, image)
            return
        if device.get("Inserted") and device.get("Image") not in (None, "", image):
            connector.patch(path, data={"Image": None})
        connector.patch(path, data={"Image": image, "Oem": {"Hpe": {"BootOnNextServerReset": True}}})


FLAVOUR = HpeIlo()
