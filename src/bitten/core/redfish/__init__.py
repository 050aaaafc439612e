"""The one Redfish client of bitten: BMCs (bitten.hardware), CDUs (ThermalEquipment), PDUs and chassis power.

Modules, one concept each:

- ``endpoint``: Endpoint (where a service answers, what it is: BMC, CDU, PDU), Tls, Timeouts, Limits, origins;
- ``connector``: RedfishConnector, sushy's connector made strict (origin pinning, a wall-clock deadline and a size
  cap per request, bitten.core.retry's backoff, persistent connections, session re-creation on expiry);
- ``connection``: Connection, an authenticated service root (``get_json``, ``get``, ``follow``, ``members``,
  ``patch``/``post``/``delete``, ``root`` for sushy resources; the session deleted on close);
- ``flavours``: BMC vendor flavours, one module each, in a registry every front end derives its choices from;
- ``thermal``: sushy resources for ThermalEquipment CoolingUnits (sushy has none);
- ``errors``: RedfishError and its kinds, one hierarchy for every device; ``credentials``: Credentials;
- ``document``: reading links and collection members out of Redfish documents.
"""
