"""``generic``: plain DMTF Redfish (the sushy-tools emulator, most BMCs that follow the standard).

A session when the service root links a SessionService, else basic auth (without a failed login first); virtual
media under the system when it has any, else under its manager; the standard InsertMedia action; the boot mode
in the boot override; BIOS changes to the object ``@Redfish.Settings`` names.
"""

from __future__ import annotations

from bitten.core.redfish.flavours import Flavour

FLAVOUR = Flavour()
