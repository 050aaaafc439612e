"""Render bench: bitten render and the site model (load + validate) on synthetic sites, against
`ansible-inventory --list` on the same files.

Commands run as a user runs them (a fresh Python each); CPU time and peak memory are the command's own (rusage of
the child), the ratio is bitten / ansible-inventory measured in the same run, median of RUNS. bitten's render is
measured cold (an empty parse cache, as on a fresh clone or after hosts.yml changed) and warm (the cache a previous
run left; each warm run replaces the tree the one before wrote, as a re-run does).

The site model figure is load + validate: cold in a fresh Python with an empty parse cache (its imports, the YAML
parse, validation; the imports are also shown alone), warm in this process with the cache (median of RUNS).

The baseline is `ansible-inventory --list` on the same inventory without group_vars/all/fabric.yml: --list writes
every group variable into every host's variables, so with the cabling plan (1.7 MB at 10,000 nodes) it would print
17 GB. Without it the baseline does less than it would on the full inventory: the ratio errs in Ansible's favour.
100,000 nodes run without the baseline (it would take most of an hour) and with one warm run; the slope is render
CPU per 1,000 nodes between sizes: linear growth keeps it flat.

bitten's modules are byte-compiled first, as pip compiles an installed wheel's (and Ansible's, in site-packages):
the checkout is installed editable, and where PYTHONDONTWRITEBYTECODE is set every command would otherwise compile
its ~90 modules from source (~0.2 s), a cost no installed bitten pays.
"""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _figures import figure

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = tuple(int(n) for n in os.environ.get("BITTEN_BENCH_SIZES", "16,1000,10000,100000").split(","))
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


COLD_MODEL = """
import sys, time
t0 = time.process_time()
from bitten.capabilities import build_site
from bitten.site import load_inventory
t1 = time.process_time()
build_site(load_inventory([sys.argv[1]]))
print(time.process_time() - t0, t1 - t0)
"""


def cold_model(inventory: Path, cache: Path) -> tuple[float, float]:
    """Load + validate in a fresh Python with an empty parse cache: (CPU seconds in all, of them the imports)."""
    shutil.rmtree(cache, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", COLD_MODEL, str(inventory)], check=True, capture_output=True,
                         text=True, env={**os.environ, "XDG_CACHE_HOME": str(cache)}).stdout.split()
    return float(out[0]), float(out[1])


def model_seconds(inventory: Path) -> float:
    """Load + validate in this process (CPU), the site model figure."""
    from bitten.capabilities import build_site
    from bitten.site import load_inventory

    start = time.process_time()
    build_site(load_inventory([inventory]))
    return time.process_time() - start


def without_fabric(inventory: Path, dest: Path) -> Path:
    """The inventory the baseline reads: the same files but the cabling plan (see the module's docstring)."""
    shutil.copytree(inventory, dest, ignore=lambda _d, names: [n for n in names if n == "fabric.yml"])
    return dest


def main() -> None:
    compileall.compile_dir(str(ROOT / "src" / "bitten"), quiet=1)
    print(f"{'nodes':>7} {'model cold':>10} {'(imports)':>9} {'warm':>5} {'render cold':>11} {'warm':>6} {'MiB':>5} "
          f"{'ansible-inv':>11} {'ratio':>6} {'warm':>6} {'s/1000 nodes':>12}  (CPU seconds, medians of {RUNS})")
    previous: tuple[int, float] | None = None
    rows: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bitten-bench-") as tmp:
        for size in SIZES:
            inventory = synthetic_site(size, Path(tmp) / f"site{size}")
            runs = RUNS if size < NO_BASELINE else 1
            colds = [cold_model(inventory, Path(tmp) / "cold-cache") for _ in range(runs)]
            model_cold = statistics.median(c[0] for c in colds)
            imports = statistics.median(c[1] for c in colds)
            cold_env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / f"cache{size}")}
            render = [str(BIN / "bitten"), "render", str(inventory), "--out", str(Path(tmp) / f"out{size}")]
            cold, mib = measured(render, cold_env)
            warm_runs = [measured(render, cold_env) for _ in range(runs)]
            warm = statistics.median(r[0] for r in warm_runs)
            mib = max(mib, *(r[1] for r in warm_runs))
            shutil.rmtree(Path(tmp) / f"out{size}")
            os.environ["XDG_CACHE_HOME"] = cold_env["XDG_CACHE_HOME"]
            model = statistics.median(model_seconds(inventory) for _ in range(RUNS))
            row = {"model_cold": model_cold, "imports": imports, "model": model, "cold": cold, "warm": warm,
                   "mib": mib}
            if size < NO_BASELINE:
                base_inventory = without_fabric(inventory, Path(tmp) / f"base{size}")
                baseline = statistics.median(
                    measured([str(BIN / "ansible-inventory"), "-i", str(base_inventory), "--list"])[0]
                    for _ in range(RUNS if size <= 1_000 else 1))
                shutil.rmtree(base_inventory)
                row["baseline"] = baseline
                ratio, ratio_warm = f"{cold / baseline:>6.3f}", f"{warm / baseline:>6.3f}"
                base = f"{baseline:>11.2f}"
            else:
                ratio, ratio_warm, base = f"{'-':>6}", f"{'-':>6}", f"{'-':>11}"
            slope = ""
            if previous is not None:
                row["slope"] = (cold - previous[1]) / (size - previous[0]) * 1000
                slope = f"{row['slope']:>12.3f}"
            previous = (size, cold)
            rows[size] = row
            print(f"{size:>7} {model_cold:>10.2f} {imports:>9.2f} {model:>5.2f} {cold:>11.2f} {warm:>6.2f} "
                  f"{mib:>5.0f} {base} {ratio} {ratio_warm} {slope}", flush=True)
            shutil.rmtree(inventory)
    if 10_000 in rows and 16 in rows:
        figures(rows)


def figures(rows: dict[int, dict[str, float]]) -> None:
    ten, small = rows[10_000], rows[16]
    figure("site model 10,000 nodes, warm (cached parse)", f"{ten['model']:.2f} s", f"<= {TARGET_MODEL_S:g} s",
           ten["model"] <= TARGET_MODEL_S)
    figure("site model 10,000 nodes, cold (fresh process, empty cache)",
           f"{ten['model_cold']:.2f} s (imports {ten['imports']:.2f} s)", f"<= {TARGET_MODEL_S:g} s",
           ten["model_cold"] <= TARGET_MODEL_S)
    for kind in ("cold", "warm"):
        value = ten[kind] / ten["baseline"]
        figure(f"render 10,000 nodes, {kind} / ansible-inventory --list", f"{value:.3f}x "
               f"({ten[kind]:.1f} s / {ten['baseline']:.1f} s)", f"<= {TARGET_RATIO:g}x", value <= TARGET_RATIO)
    figure("render 10,000 nodes, peak memory", f"{ten['mib']:.0f} MiB", f"<= {TARGET_MIB} MiB",
           ten["mib"] <= TARGET_MIB)
    value = small["cold"] / small["baseline"]
    figure("render 16 nodes, cold / ansible-inventory --list", f"{value:.2f}x ({small['cold']:.2f} s / "
           f"{small['baseline']:.2f} s)", "<= 1.0x", value <= 1.0)
    if NO_BASELINE in rows and "slope" in rows[NO_BASELINE]:
        growth = rows[NO_BASELINE]["slope"] / ten["slope"]
        figure("render slope 10,000-100,000 / 1,000-10,000 nodes (CPU per 1,000 nodes)",
               f"{growth:.2f} ({rows[NO_BASELINE]['slope']:.2f} / {ten['slope']:.2f} s)", "<= 1.5 (linear)",
               growth <= 1.5)


if __name__ == "__main__":
    main()
