"""Render bench: load + validate + render of synthetic sites, against `ansible-inventory --list` on the same files.

Both run as commands (a fresh Python each, as a user would run them); the ratio is bitten / ansible-inventory,
measured in the same run. A breakdown of bitten's own phases (in-process) follows.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = (16, 1_000, 10_000)


def synthetic_site(nodes: int, dest: Path) -> Path:
    """The reference site's group_vars with `nodes` compute nodes: 1 in 8 a GPU node, the rest CPU nodes."""
    shutil.copytree(ROOT / "inventory" / "bitten" / "group_vars", dest / "group_vars")
    gpu = max(1, nodes // 8)
    def host(i: int, net: int) -> dict[str, object]:
        return {"bitten_ip": f"10.{20 + net}.{i // 250}.{i % 250 + 1}",
                "bitten_bmc": {"address": f"10.{40 + net}.{i // 250}.{i % 250 + 1}"},
                "bitten_boot_mac": f"02:b1:{net:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                "bitten_cooling_loop": "dlc-a"}
    service = {"slurm_controller": "ctl01", "slurm_dbd": "dbd01", "login": "login01"}
    children: dict[str, object] = {
        group: {"hosts": {name: host(k, 0)}} for k, (group, name) in enumerate(service.items())}
    children["ucloud_frontend"] = {"hosts": {"login01": None}}
    children["compute"] = {"children": {
        "gpu_nodes": {"hosts": {f"gpu{i:05d}": host(i, 1) for i in range(gpu)}},
        "cpu_nodes": {"hosts": {f"cpu{i:05d}": host(i, 2) for i in range(nodes - gpu)}},
    }}
    (dest / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": children}}, sort_keys=False))
    return dest


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def phases(inventory: Path, out: Path) -> tuple[float, float, float]:
    from bitten.capabilities import build_site, render_tree
    from bitten.site import load_inventory

    t0 = time.perf_counter()
    data = load_inventory([inventory])
    t1 = time.perf_counter()
    site = build_site(data)
    t2 = time.perf_counter()
    render_tree(site, out)
    return t1 - t0, t2 - t1, time.perf_counter() - t2


def main() -> None:
    print(f"{'nodes':>7} {'bitten render':>14} {'ansible-inventory':>18} {'ratio':>6}   "
          f"{'load':>6} {'validate':>8} {'render':>7}  (seconds)")
    with tempfile.TemporaryDirectory(prefix="bitten-bench-") as tmp:
        for size in SIZES:
            inventory = synthetic_site(size, Path(tmp) / f"site{size}")
            out = Path(tmp) / f"out{size}"
            baseline = timed([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"])
            ours = timed([str(BIN / "bitten"), "render", str(inventory), "--out", str(out)])
            load, validate, render = phases(inventory, Path(tmp) / f"out{size}b")
            print(f"{size:>7} {ours:>14.2f} {baseline:>18.2f} {ours / baseline:>6.2f}   "
                  f"{load:>6.2f} {validate:>8.2f} {render:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
