"""GPU facts from NVIDIA's own tools, and the health check that gates Slurm nodes on them.

This package runs in two places: on the controller (tests, the role's validation filters) and on every compute
node, where the gpu role installs it as the stand-alone package ``bitten_gpu`` next to the ``bitten-gpu-health``
command. The project's venv is not on compute nodes, so every module here uses the standard library only and
imports its siblings relatively (tests/gpu/test_gpu_package.py keeps it that way).
"""

#: the modules the gpu role copies to compute nodes (capability.py, the site model's side, stays on the controller)
NODE_MODULES: tuple[str, ...] = ("__init__.py", "check.py", "drivers.py", "health.py", "run.py", "slurm.py", "smi.py",
                                 "topology.py", "xid.py")
