"""The products the Integration Module registers on UCloud/Core at start-up, derived from its parsed config.

Mirrors the IM's Slurm integration (im2 pkg/integrations/slurm: loadComputeProducts, buildMachineName,
loadStorageProducts): one product category per machine type and per file system, one compute product per size.
Products are the JSON of Core's ProductV2 (``POST /api/products/v2``).
"""

from __future__ import annotations

import math
from typing import Any

from bitten.ucloud.im.parser import (
    MachineCategory,
    ParsedIM,
    StorageCategory,
    machine_product_name,
    resource_amount,
)

_UNIT_NAMES = {"Cpu": "Core", "Gpu": "GPU", "Memory": "GB"}
_FREQUENCIES = {"Minutely": "PERIODIC_MINUTE", "Hourly": "PERIODIC_HOUR", "Daily": "PERIODIC_DAY"}


def _machine_category(provider: str, machine: MachineCategory) -> tuple[dict[str, Any], bool]:
    payment = machine.payment
    unit: dict[str, Any]
    if payment.type == "Money":
        unit = {"name": payment.currency, "namePlural": payment.currency, "floatingPoint": True,
                "displayFrequencySuffix": False}
    else:
        name = _UNIT_NAMES.get(payment.unit, "")
        unit = {"name": name, "namePlural": name, "floatingPoint": False, "displayFrequencySuffix": True}
    category = {
        "name": machine.name, "provider": provider, "productType": "COMPUTE", "accountingUnit": unit,
        "accountingFrequency": _FREQUENCIES.get(payment.interval, "PERIODIC_MINUTE"), "freeToUse": False,
        "allowSubAllocations": True,
    }
    return category, payment.type == "Money"


def machine_products(provider: str, machine: MachineCategory) -> list[dict[str, Any]]:
    category, use_price = _machine_category(provider, machine)
    products = []
    for group in machine.groups:
        for config in group.configs:
            price = math.floor(config.price * 1_000_000) if use_price else resource_amount(machine.payment.unit, config)
            product: dict[str, Any] = {
                "type": "compute", "category": category, "name": machine_product_name(machine.name, group, config),
                "description": "A compute product", "productType": "COMPUTE", "price": price,
                "fraction": {"numerator": 1, "denominator": 1}, "hiddenInGrantApplications": False,
                "cpu": config.cpu, "memoryInGigs": config.memory_gb, "gpu": config.gpu,
            }
            for key, value in (("cpuModel", group.cpu_model), ("gpuModel", group.gpu_model),
                               ("memoryModel", group.memory_model)):
                if value:
                    product[key] = value
            products.append(product)
    return products


def storage_product(provider: str, fs: StorageCategory) -> dict[str, Any]:
    payment = fs.payment
    if payment.type == "Money":
        unit = {"name": payment.currency, "namePlural": payment.currency, "floatingPoint": True,
                "displayFrequencySuffix": False}
    else:
        unit = {"name": payment.unit, "namePlural": payment.unit, "floatingPoint": False,
                "displayFrequencySuffix": True}
    frequency = _FREQUENCIES.get(payment.interval)
    if frequency is None:
        frequency = "ONCE"
        unit["displayFrequencySuffix"] = False
    category = {"name": fs.name, "provider": provider, "productType": "STORAGE", "accountingUnit": unit,
                "accountingFrequency": frequency, "freeToUse": False, "allowSubAllocations": True}
    return {"type": "storage", "category": category, "name": fs.name, "description": "A storage product",
            "productType": "STORAGE",
            "price": math.floor(payment.price * 1_000_000) if payment.type == "Money" else 1,
            "hiddenInGrantApplications": False}


def products_of(parsed: ParsedIM) -> list[dict[str, Any]]:
    """Every product the IM registers: compute products first, then storage (the IM's order)."""
    out: list[dict[str, Any]] = []
    for machine in parsed.machines:
        out.extend(machine_products(parsed.provider_id, machine))
    out.extend(storage_product(parsed.provider_id, fs) for fs in parsed.storage)
    return out


def product_key(product: dict[str, Any]) -> tuple[str, str]:
    """(category, name): how Core identifies a product of one provider."""
    return (str(product["category"]["name"]), str(product["name"]))
