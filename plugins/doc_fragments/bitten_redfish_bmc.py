"""Documentation of the ``bmc`` option of bitten_redfish, with the flavours the registry holds.

ansible-doc imports doc fragments (it does not read them as text), so the flavour list here is the registry's
(bitten.core.redfish.flavours): a new flavour module shows up without editing this file or the module.
"""

from __future__ import annotations

import json


def _flavours() -> dict[str, str]:
    try:
        from bitten.core.redfish import flavours
    except ImportError:  # documentation read without bitten importable: name the two flavours bitten ships
        return {"hpe_ilo": "HPE iLO 5/6", "generic": "plain Redfish"}
    return flavours.describe()


def _documentation() -> str:
    known = _flavours()
    described = "; ".join(f"C({name}): {summary}" for name, summary in known.items())
    flavour = {"description": [f"How the BMC speaks Redfish, a module of bitten.core.redfish.flavours: {described}."],
               "type": "str", "default": "hpe_ilo", "choices": list(known)}
    options = {"bmc": {
        "description": "Where the BMC answers (the node's C(bitten_bmc)).", "type": "dict", "required": True,
        "suboptions": {
            "address": {"description": "host[:port] of the BMC", "type": "str", "required": True},
            "scheme": {"description": "https or http", "type": "str", "default": "https",
                       "choices": ["https", "http"]},
            "system_id": {"description": "id under /redfish/v1/Systems/", "type": "str", "default": "1"},
            "flavour": flavour,
        }}}
    # JSON is YAML: ansible-doc parses the fragment as YAML
    return json.dumps({"options": options}, indent=2)


class ModuleDocFragment:
    DOCUMENTATION = _documentation()
