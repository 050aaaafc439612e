"""Render bench: bitten render and the site model (load + validate) on synthetic sites, against
`ansible-inventory --list` on the same files.

Commands run as a user runs them (a fresh Python each); CPU time and peak memory are the command's own (rusage of
the child), the ratio is bitten / ansible-inventory measured in the same run, median of RUNS. bitten's render is
measured cold (an empty parse cache, as on a fresh clone) and warm (the cache a previous run left). The site model
figure is load + validate in this process (median of RUNS, warm). 100,000 nodes run without the baseline (it would
take most of an hour); the slope is CPU per 1,000 nodes between sizes: linear growth keeps it flat.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = (16, 1_000, 10_000, 100_000)
NO_BASELINE = 100_000
RUNS = 3
#: issue 16 targets
TARGET_MODEL_S = 1.0
TARGET_RATIO = 0.05
TARGET_MIB = 300


def synthetic_site(nodes: int, dest: Path) -> Path:
    """The reference site's group_vars with `nodes` compute nodes: 1 in 8 a GPU node, the rest CPU nodes."""
    shutil.copytree(ROOT / "inventory" / "bitten" / "group_vars", dest / "group_vars")
    gpu = max(1, nodes // 8)

    def host(i: int, net: int) -> dict[str, object]:
        # 62,500 addresses per second octet, so 100,000 nodes stay valid IPv4 (bitten validate refuses 10.22.256.1)
        low = f"{i // 250 % 250}.{i % 250 + 1}"
        return {"bitten_ip": f"10.{20 + 4 * net + i // 62500}.{low}",
                "bitten_bmc": {"address": f"10.{60 + 4 * net + i // 62500}.{low}"},
                "bitten_boot_mac": f"02:b1:{net:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                "bitten_cooling_loop": "dlc-a"}
    service = {"slurm_controller": "ctl01", "slurm_dbd": "dbd01", "login": "login01"}
    children: dict[str, object] = {
        group: {"hosts": {name: host(k, 0)}} for k, (group, name) in enumerate(service.items())}
    children["ucloud_frontend"] = {"hosts": {"login01": None}}
    children["compute"] = {"children": {
        "gpu_nodes": {"hosts": {f"gpu{i:06d}": host(i, 1) for i in range(gpu)}},
        "cpu_nodes": {"hosts": {f"cpu{i:06d}": host(i, 2) for i in range(nodes - gpu)}},
    }}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    (dest / "hosts.yml").write_text(yaml.dump({"all": {"children": children}}, Dumper=dumper, sort_keys=False))
    return dest


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """CPU seconds and peak MiB of one command (measured by a wrapper process, so only that command counts)."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime, r.ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True,
                         env=env).stdout.split()
    return float(out[0]), float(out[1]) / 1024


def model_seconds(inventory: Path) -> float:
    """Load + validate in this process (CPU), the site model figure."""
    from bitten.capabilities import build_site
    from bitten.site import load_inventory

    start = time.process_time()
    build_site(load_inventory([inventory]))
    return time.process_time() - start


def main() -> None:
    print(f"{'nodes':>7} {'model':>6} {'render cold':>11} {'warm':>6} {'MiB':>5} {'ansible-inv':>11} "
          f"{'ratio':>6} {'s/1000 nodes':>12}  (CPU seconds, medians of {RUNS})")
    previous: tuple[int, float] | None = None
    with tempfile.TemporaryDirectory(prefix="bitten-bench-") as tmp:
        for size in SIZES:
            inventory = synthetic_site(size, Path(tmp) / f"site{size}")
            cold_env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / f"cache{size}")}
            render = [str(BIN / "bitten"), "render", str(inventory), "--out", str(Path(tmp) / f"out{size}")]
            cold, mib = measured(render, cold_env)
            warm_runs = [measured(render, cold_env) for _ in range(RUNS)]
            warm = statistics.median(r[0] for r in warm_runs)
            mib = max(mib, *(r[1] for r in warm_runs))
            os.environ["XDG_CACHE_HOME"] = cold_env["XDG_CACHE_HOME"]
            model = statistics.median(model_seconds(inventory) for _ in range(RUNS))
            if size < NO_BASELINE:
                runs = RUNS if size <= 1_000 else 1
                baseline = statistics.median(
                    measured([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"])[0] for _ in range(runs))
                ratio = f"{cold / baseline:>6.3f}"
                base = f"{baseline:>11.2f}"
            else:
                ratio, base = f"{'-':>6}", f"{'-':>11}"
            slope = ""
            if previous is not None:
                slope = f"{(cold - previous[1]) / (size - previous[0]) * 1000:>12.3f}"
            previous = (size, cold)
            print(f"{size:>7} {model:>6.2f} {cold:>11.2f} {warm:>6.2f} {mib:>5.0f} {base} {ratio} {slope}",
                  flush=True)
            shutil.rmtree(inventory)
    print(f"targets: model at 10,000 nodes <= {TARGET_MODEL_S} s; render <= {TARGET_RATIO}x ansible-inventory at "
          f"10,000 nodes and no slower at 16; <= {TARGET_MIB} MiB")


if __name__ == "__main__":
    main()
