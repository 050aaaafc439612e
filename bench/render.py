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


def _address(net: int, i: int, base: int) -> str:
    """The i-th address of ``net`` (0 service, 1 GPU, 2 CPU nodes): 62,500 per second octet, 4 second octets per
    net, so 100,000 nodes stay valid IPv4 (bitten validate refuses 10.24.256.1) and never end in .0 or .255."""
    return f"10.{base + 4 * net + i // 62500}.{i // 250 % 250}.{i % 250 + 1}"


def synthetic_site(nodes: int, dest: Path) -> Path:
    """The reference site's group_vars with ``nodes`` compute nodes: 1 in 8 a GPU node, the rest CPU nodes.

    What a site of that size needs besides more hosts: the cluster network (bitten_provision) is a /12 so that
    every node gets a DHCP reservation in it (gateway and DNS stay where the reference site has them), the IPoIB
    subnet a /12 as large; the fabric cables every node, one line per node as hosts.yml lists them (GPU nodes: their
    eight HCAs, four nodes to a leaf; CPU nodes one HCA, 32 to a leaf; the service nodes on a leaf of their own),
    each port with its GUID (the partitions name them), the leaves trunked to spines in pods (8 GPU leaves or 32 CPU
    leaves per 4 spines), every switch a QM9700 with 64 ports.
    """
    shutil.copytree(ROOT / "inventory" / "bitten" / "group_vars", dest / "group_vars")
    safe_load, dumper = yaml.safe_load, getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    gpu = max(1, nodes // 8)

    def host(i: int, net: int) -> dict[str, object]:
        return {"bitten_ip": _address(net, i, 20), "bitten_bmc": {"address": _address(net, i, 60)},
                "bitten_boot_mac": f"02:b1:{net:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                "bitten_cooling_loop": "dlc-a"}

    service = {"slurm_controller": "ctl01", "slurm_dbd": "dbd01", "login": "login01"}
    children: dict[str, object] = {"provisioners": {"hosts": {"ctl01": None}}}
    children.update({group: {"hosts": {name: host(10 + k, 0)}} for k, (group, name) in enumerate(service.items())})
    children["ucloud_frontend"] = {"hosts": {"login01": None}}
    gpu_names = [f"gpu{i:06d}" for i in range(gpu)]
    cpu_names = [f"cpu{i:06d}" for i in range(nodes - gpu)]
    children["compute"] = {"children": {
        "gpu_nodes": {"hosts": {name: host(i, 1) for i, name in enumerate(gpu_names)}},
        "cpu_nodes": {"hosts": {name: host(i, 2) for i, name in enumerate(cpu_names)}},
    }}
    (dest / "hosts.yml").write_text(yaml.dump({"all": {"children": children}}, Dumper=dumper, sort_keys=False))

    provision_file = dest / "group_vars" / "all" / "provision.yml"
    provision = safe_load(provision_file.read_text())
    provision["bitten_provision"]["network"]["subnet"] = "10.16.0.0/12"
    provision_file.write_text(yaml.dump(provision, Dumper=dumper, sort_keys=False))

    fabric_file = dest / "group_vars" / "all" / "fabric.yml"
    document = safe_load(fabric_file.read_text())
    fabric = document["bitten_fabric"]
    fabric["ipoib"]["subnet"] = "10.128.0.0/12"
    switches: dict[str, dict[str, object]] = {}
    cables: list[dict[str, object]] = []
    trunks: list[dict[str, object]] = []
    serial = iter(range(1, 1 << 24))

    def switch(name: str, role: str) -> str:
        switches[name] = {"role": role, "guid": f"0xb83fd20300{next(serial):06x}"}
        return name

    def leaves(kind: str, names: list[str], per_leaf: int, hcas: int, net: int, uplinks: str, pod: int) -> None:
        spines: list[str] = []
        for leaf_index, first in enumerate(range(0, len(names), per_leaf)):
            leaf = switch(f"ib-{kind}-leaf{leaf_index:04d}", "leaf")
            if leaf_index % pod == 0:
                spines = [switch(f"ib-{kind}-spine{leaf_index // pod:04d}-{s}", "spine") for s in range(4)]
            for slot, name in enumerate(names[first:first + per_leaf]):
                number = first + slot
                cables.append({"node": name, "hca": f"mlx5_[0-{hcas - 1}]" if hcas > 1 else "mlx5_0",
                               "switch": leaf, "switch_port": f"{slot * hcas + 1}-{slot * hcas + hcas}",
                               "guids": [f"0x946dae03{net:02x}{number:05x}{h:01x}" for h in range(hcas)]})
            first_up, last_up = (int(x) for x in uplinks.split("-"))
            width = (last_up - first_up + 1) // 4
            for s, spine in enumerate(spines):
                down = leaf_index % pod * width + 1
                trunks.append({"switch": leaf, "ports": f"{first_up + s * width}-{first_up + (s + 1) * width - 1}",
                               "peer": spine, "peer_ports": f"{down}-{down + width - 1}"})

    leaves("gpu", gpu_names, 4, 8, 1, "33-64", 8)
    leaves("cpu", cpu_names, 32, 1, 2, "57-64", 32)
    leaves("svc", list(service.values()), 32, 1, 0, "57-64", 32)
    fabric.update(switches=switches, cables=cables, trunks=trunks)
    fabric_file.write_text(yaml.dump(document, Dumper=dumper, sort_keys=False))
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
