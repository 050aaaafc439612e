"""Which NVLink software a GPU generation on an NVSwitch baseboard needs, and the packages that carry it.

From NVIDIA's Fabric Manager User Guide (release 2.3, May 2025: "NVSwitch Core Software Stack", sections 1.3.1 and
1.3.2) and NVIDIA's gpu-driver-container install scripts (which package names per driver branch):

- first to third generation NVSwitch (HGX-2/V100, HGX A100, HGX H100/H200): the NVSwitches are PCI devices of the
  host; Fabric Manager (with NSCQ) programs them.
- fourth generation NVSwitch (HGX B200/B100, "NVLink5"): the NVSwitches sit behind ConnectX-7 bridges and are
  managed as an InfiniBand subnet; NVIDIA's NVLink Subnet Manager (NVLSM, package ``nvlsm``, with ``libnvsdm``)
  routes them, and Fabric Manager's start wrapper (``nvidia-fabricmanager-start.sh``) starts NVLSM before
  ``nv-fabricmanager``. The wrapper needs ``ibstat`` (Debian's infiniband-diags) and NVLSM the ``ib_umad`` module.
- Ada (L40S) has no NVSwitch baseboard; GB200/GB300 NVL72 racks (NVLink switch trays running NVOS, IMEX on the
  hosts) are not modelled here.

Fabric Manager, NSCQ and NVSDM must be exactly the driver's version (same pin); from branch 580 their packages
are unversioned (``nvidia-fabricmanager``), before it they carry the branch (``nvidia-fabricmanager-570``). NVLSM
is versioned on its own. Standard library only (the health check reads the table on compute nodes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NvlinkStack:
    #: NVSwitch generation of the baseboard
    nvswitch_generation: int
    #: Fabric Manager (nvidia-fabricmanager) and NSCQ
    fabric_manager: bool = True
    #: NVIDIA's NVLink Subnet Manager (nvlsm) with NVSDM (libnvsdm), started by Fabric Manager's wrapper
    nvlsm: bool = False
    example: str = ""


#: GPU architecture on an NVSwitch baseboard -> what its NVLink fabric needs
STACKS: dict[str, NvlinkStack] = {
    "volta": NvlinkStack(1, example="HGX-2 (V100)"),
    "ampere": NvlinkStack(2, example="HGX A100"),
    "hopper": NvlinkStack(3, example="HGX H100/H200"),
    "blackwell": NvlinkStack(4, nvlsm=True, example="HGX B200/B100"),
}
#: the process Fabric Manager's wrapper starts on fourth-generation NVSwitch systems
NVLSM_PROCESS = "nvlsm"


def stack_for(architecture: str, nvswitch: bool) -> NvlinkStack | None:
    """What an NVSwitch baseboard of this GPU generation needs; None without NVSwitch (or for Ada)."""
    if not nvswitch:
        return None
    return STACKS.get(architecture.lower())


def _versioned(name: str, branch: int) -> str:
    return name if branch >= 580 else f"{name}-{branch}"


def packages(architecture: str, nvswitch: bool, branch: int) -> dict[str, list[str]]:
    """The NVLink packages of a node, by where their version comes from.

    ``fabric_manager``: Fabric Manager and NSCQ, exactly the driver's version; ``nvlsm``: NVSDM (the driver's
    version) and NVLSM (its own); ``debian``: what Fabric Manager's wrapper needs from Debian (ibstat).

    >>> packages("blackwell", True, 580)
    {'fabric_manager': ['nvidia-fabricmanager', 'libnvidia-nscq'], 'nvlsm': ['libnvsdm', 'nvlsm'], \
'debian': ['infiniband-diags']}
    >>> packages("hopper", True, 570)["fabric_manager"]
    ['nvidia-fabricmanager-570', 'libnvidia-nscq-570']
    """
    stack = stack_for(architecture, nvswitch)
    out: dict[str, list[str]] = {"fabric_manager": [], "nvlsm": [], "debian": []}
    if stack is None:
        return out
    if stack.fabric_manager:
        out["fabric_manager"] = [_versioned("nvidia-fabricmanager", branch), _versioned("libnvidia-nscq", branch)]
    if stack.nvlsm:
        out["nvlsm"] = [_versioned("libnvsdm", branch), "nvlsm"]
        out["debian"] = ["infiniband-diags"]
    return out
