"""The cluster model behind `bitten energy simulate`: how power, job speed, heat and the heat pump respond.

Every coefficient is a field of :class:`ClusterModel` with its source; those marked ASSUMPTION are engineering
estimates, not measurements of Bitten (published sources give none), and the simulator's report lists them.

GPU power under a cap
    A job draws ``demand`` W per GPU when uncapped (its power class, from the job trace). Capped at ``cap`` it draws
    ``min(demand, cap)``; an idle GPU draws ``gpu_idle_w``. A node draws ``host_idle_w`` plus ``host_busy_w`` while
    it runs a job, plus its GPUs.
Job speed under a cap
    Throughput scales as ``(min(demand, cap) / demand) ** speed_exponent``: GPU performance is sublinear in power
    near the top of the DVFS curve (ASSUMPTION 0.35: capping a 1000 W job to 700 W costs ~12 %).
Warm water
    Raising the coolant supply temperature raises GPU leakage: ``leakage_per_k`` of GPU power per kelvin above
    ``reference_supply_c`` (ASSUMPTION 0.3 %/K).
Heat
    Cold plates capture ``liquid_capture_ratio`` of the IT heat (the rest goes to air, not reused); it leaves the
    racks at supply + ``loop_delta_k``. Where that is hot enough for the network (return - ``approach_k`` >=
    requested supply) it is exchanged directly; otherwise a heat pump lifts it with
    ``COP = carnot_efficiency * T_hot / (T_hot - T_cold)`` (T_hot = network supply + approach, T_cold = loop return
    - approach, kelvin), clipped to [cop_min, cop_max]; its electricity is facility energy and ends up in the heat
    it delivers: ``Q_out = Q_in * COP / (COP - 1)``. The network takes at most its demand; the rest goes to the dry
    coolers.
Facility
    ``facility = IT * (1 + overhead_ratio) + heat pump electricity`` (pumps, CDUs, dry coolers, UPS losses as one
    ratio: ASSUMPTION 0.07).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from bitten.site.model import Site

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

# numpy is imported by the equations that use it, not here: `bitten render` reads the model's parameters (the
# energy configuration's nominal node power) and would otherwise pay numpy's import (~0.15 s) for nothing
KELVIN = 273.15


@dataclass(frozen=True)
class ClusterModel:
    gpus: int = 128
    gpus_per_node: int = 8
    cpu_nodes: int = 32
    gpu_max_w: float = 1000.0  # B200 (public: up to ~1000 W)
    gpu_idle_w: float = 140.0  # ASSUMPTION
    host_idle_w: float = 900.0  # ASSUMPTION: XD685 host without GPUs, idle
    host_busy_w: float = 1600.0  # ASSUMPTION: CPUs, memory, NICs of a busy XD685 beyond idle
    cpu_node_idle_w: float = 350.0  # ASSUMPTION: XD225v idle
    cpu_node_busy_w: float = 1100.0  # ASSUMPTION: XD225v at full load
    service_w: float = 6000.0  # ASSUMPTION: login, controller, storage share, switches
    speed_exponent: float = 0.35  # ASSUMPTION
    leakage_per_k: float = 0.003  # ASSUMPTION
    reference_supply_c: float = 40.0  # ASSUMPTION: the loops' normal supply temperature (W40)
    loop_delta_k: float = 10.0  # ASSUMPTION
    liquid_capture_ratio: float = 0.85  # ASSUMPTION (bitten_energy.accounting.liquid_capture_ratio)
    approach_k: float = 3.0  # ASSUMPTION: heat-exchanger approach on each side
    carnot_efficiency: float = 0.45  # ASSUMPTION
    cop_min: float = 2.0
    cop_max: float = 8.0
    overhead_ratio: float = 0.07  # ASSUMPTION
    assumptions: tuple[str, ...] = field(default=(
        "gpu_idle_w", "host_idle_w", "host_busy_w", "cpu_node_idle_w", "cpu_node_busy_w", "service_w",
        "speed_exponent", "leakage_per_k", "reference_supply_c", "loop_delta_k", "liquid_capture_ratio",
        "approach_k", "carnot_efficiency", "overhead_ratio"))

    @classmethod
    def from_site(cls, site: Site) -> ClusterModel:
        """The counts and GPU limits from the site (GPU partition's profile), the rest as documented defaults."""
        gpus = per_node = 0
        max_w = cls.gpu_max_w
        cpu_nodes = 0
        for host in site.compute_nodes:
            profile = site.profile_of(host)
            if profile is not None and profile.gpu is not None:
                gpus += profile.gpu.count
                per_node = profile.gpu.count
                max_w = float(profile.gpu.max_power_watts or max_w)
            else:
                cpu_nodes += 1
        return cls(gpus=gpus or cls.gpus, gpus_per_node=per_node or cls.gpus_per_node, cpu_nodes=cpu_nodes,
                   gpu_max_w=max_w, liquid_capture_ratio=site.energy.accounting.liquid_capture_ratio)

    @property
    def gpu_nodes(self) -> int:
        return self.gpus // self.gpus_per_node

    def describe(self) -> dict[str, object]:
        out = asdict(self)
        out["assumptions"] = list(self.assumptions)
        return out

    # --- the model's equations (vectorised) --------------------------------------------------------------------
    def gpu_power(self, demand_w: F64 | float, cap_w: F64 | float) -> F64:
        import numpy as np

        return np.minimum(demand_w, cap_w) * 1.0

    def speed(self, demand_w: F64 | float, cap_w: F64 | float) -> F64:
        import numpy as np

        ratio = np.minimum(1.0, np.asarray(cap_w, dtype=np.float64) / np.asarray(demand_w, dtype=np.float64))
        return ratio ** self.speed_exponent

    def leakage_factor(self, supply_c: F64) -> F64:
        import numpy as np

        return 1.0 + self.leakage_per_k * np.maximum(0.0, supply_c - self.reference_supply_c)

    def cop(self, loop_return_c: F64, network_supply_c: F64) -> F64:
        """Heat-pump COP; +inf where the loop's water is hot enough to exchange directly."""
        import numpy as np

        t_hot = network_supply_c + self.approach_k + KELVIN
        t_cold = loop_return_c - self.approach_k + KELVIN
        lift = t_hot - t_cold
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = self.carnot_efficiency * t_hot / lift
        cop = np.clip(raw, self.cop_min, self.cop_max)
        return np.where(lift <= 0, np.inf, cop)
