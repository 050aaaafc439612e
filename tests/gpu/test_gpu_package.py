"""bitten.gpu is installed on compute nodes as a small tree of bitten (NODE_MODULES): stdlib and the tree only."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

from gpu_fixtures import DOUBLES, FIXTURES

import bitten.gpu

PACKAGE = Path(bitten.__file__).parent
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
#: the modules of the tree, as import names (bitten, bitten.core, bitten.core.scontrol, ...)
TREE = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in bitten.gpu.NODE_MODULES}
TREE = {"bitten" if n == "__init__" else f"bitten.{n}" for n in TREE}


def test_only_standard_library_and_siblings() -> None:
    for source in sorted(PACKAGE / name for name in bitten.gpu.NODE_MODULES):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
                if node.module in TREE:  # from bitten.gpu import health: a module of the tree too
                    names += [f"{node.module}.{alias.name}" for alias in node.names
                              if f"{node.module}.{alias.name}" in TREE]
            elif isinstance(node, ast.ImportFrom):
                raise AssertionError(f"{source}: relative import (the tree uses absolute imports)")
            else:
                continue
            outside = [n for n in names if n.split(".")[0] not in STDLIB and n not in TREE]
            assert not outside, (f"{source.relative_to(PACKAGE)} imports {outside}: compute nodes have only the "
                                 "standard library and bitten.gpu.NODE_MODULES")


def test_runs_as_a_copied_package_with_the_system_python(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    for name in bitten.gpu.NODE_MODULES:
        (lib / "bitten" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGE / name, lib / "bitten" / name)
    state = tmp_path / "double"
    state.mkdir()
    shutil.copy(FIXTURES / "smi-q-b200x2.xml", state / "query.xml")
    shutil.copy(FIXTURES / "topo-b200x2.txt", state / "topo.txt")
    (state / "kernel.log").write_text("")
    node = tmp_path / "gpu-node.json"
    node.write_text(json.dumps({"gpu": {"count": 2, "slurm_type": "b200", "nvswitch": True}}))
    conf = tmp_path / "gpu-health.json"
    conf.write_text(json.dumps({"nvidia_smi": str(DOUBLES / "nvidia-smi"), "state_dir": str(tmp_path / "s"),
                                "kernel_log_command": [str(DOUBLES / "kernel-log")]}))
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    proc = subprocess.run([python, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                           "from bitten.gpu.check import main; sys.exit(main(sys.argv[2:]))", str(lib),
                           "--mode", "report", "--node", "gpu01", "--node-file", str(node), "--config", str(conf)],
                          capture_output=True, text=True, check=False,
                          env={"NVIDIA_SMI_DOUBLE_DIR": str(state), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gpu01: healthy" in proc.stdout
    assert "nvlink       ok    every GPU pair on >= 18 NVLinks" in proc.stdout
