"""Which NVIDIA driver branches can drive which GPU generation, checked before anything is installed.

From NVIDIA's data-center driver release notes: the first branch that supports each generation, the last one
(Volta ends with R580), and which kernel modules are allowed (the open modules need Turing or newer; Blackwell
works with the open modules only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Support:
    first_branch: int
    last_branch: int | None = None
    open_modules: bool = True
    proprietary_modules: bool = True
    example: str = ""


SUPPORT: dict[str, Support] = {
    "volta": Support(first_branch=384, last_branch=580, open_modules=False, example="V100"),
    "ampere": Support(first_branch=450, example="A100"),
    "hopper": Support(first_branch=525, example="H100"),
    "ada": Support(first_branch=525, example="L40S"),
    "blackwell": Support(first_branch=570, proprietary_modules=False, example="B200"),
}
KERNEL_MODULES = ("open", "proprietary")
_VERSION = re.compile(r"^(?:\d+:)?(?P<branch>\d{3})(?:\.|$)")


def branch_of(version: str | int) -> int:
    """Driver branch of a version or package version: "580.65.06", "550.163.01-2", "1:580.82.07-1" -> 580/550/580."""
    if isinstance(version, int):
        return version
    match = _VERSION.match(str(version).strip())
    if not match:
        raise ValueError(f"{version!r} is not an NVIDIA driver version or branch (expected e.g. 580 or 580.65.06)")
    return int(match["branch"])


def driver_problems(architecture: str, version: str | int, kernel_modules: str = "open",
                    what: str = "gpu_driver_branch") -> list[str]:
    """Why ``version`` (a branch or full version) with these kernel modules cannot drive ``architecture``.

    Each problem names the setting (``what``) and how to fix it; an empty list means the combination works.
    """
    arch = architecture.lower()
    support = SUPPORT.get(arch)
    if support is None:
        return [f"unknown GPU architecture {architecture!r}: bitten knows {', '.join(SUPPORT)}"]
    if kernel_modules not in KERNEL_MODULES:
        return [f"gpu_driver_kernel_modules is {kernel_modules!r}; use one of {', '.join(KERNEL_MODULES)}"]
    try:
        branch = branch_of(version)
    except ValueError as exc:
        return [f"{what}: {exc}"]
    gpu = f"{arch} GPUs (e.g. {support.example})"
    problems: list[str] = []
    if branch < support.first_branch:
        problems.append(f"{what} {version} is too old for {gpu}: they need driver branch {support.first_branch} "
                        f"or newer; set {what} to a supported branch (e.g. 580)")
    if support.last_branch is not None and branch > support.last_branch:
        problems.append(f"{what} {version} no longer supports {gpu}: R{support.last_branch} is the last branch "
                        f"for them; set {what} to {support.last_branch} or older")
    if kernel_modules == "open" and not support.open_modules:
        problems.append(f"the open kernel modules do not support {gpu}; set gpu_driver_kernel_modules: proprietary")
    if kernel_modules == "proprietary" and not support.proprietary_modules:
        problems.append(f"{gpu} work only with the open kernel modules; set gpu_driver_kernel_modules: open")
    return problems
