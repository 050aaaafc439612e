"""GPU facts from NVIDIA's own tools, and the health check that gates Slurm nodes on them.

This package runs in two places: on the controller (tests, the role's validation filters) and on every compute
node, where the gpu role installs a small tree of bitten (NODE_MODULES: this package, and the core modules it
uses to talk to Slurm) next to the ``bitten-gpu-health`` command. The project's venv is not on compute nodes, so
every module of that tree uses the standard library and the tree's own modules only
(tests/gpu/test_gpu_package.py keeps it that way).
"""

#: the files the gpu role copies to compute nodes, relative to the bitten package (capability.py, the site model's
#: side, stays on the controller). The lookup bitten_gpu_package gives the role each one's source and destination.
NODE_MODULES: tuple[str, ...] = (
    "__init__.py",
    "core/__init__.py", "core/process.py", "core/scontrol.py",
    "gpu/__init__.py", "gpu/check.py", "gpu/containers.py", "gpu/drain.py", "gpu/drivers.py", "gpu/health.py",
    "gpu/nvlink.py", "gpu/power.py", "gpu/smi.py", "gpu/topology.py", "gpu/xid.py",
)
