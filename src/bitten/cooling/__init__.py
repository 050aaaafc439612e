"""Liquid cooling and heat reuse: the cooling agent, the energy ledger and the reports.

Modules, one concept each: ``physics`` (coolant properties, heat), ``modbus`` (register maps, Modbus TCP meters),
``transport`` and ``redfish`` (Redfish ThermalEquipment CoolingUnits through bitten.core.redfish), ``devices`` (the
device types: reader, view, ledger samples, metrics), ``alarms`` (readings -> raised, clear or unknown -> alarm
state), ``actions`` (drain/resume, jobs, BMC power, GPU caps; the state database), ``nodes`` (what the agent does to
Slurm, through ``helper``, its one privileged program), ``power`` (BMC power-off), ``store`` (supervised
databases), ``ledger`` (durable energy counters), ``status`` and ``serve`` (its read-only status, /status and
/metrics), ``metrics`` (Prometheus), ``agent`` (the loop), ``config`` (its configuration, built from the site
model), ``report`` (PUE/ERF/ERE/REF/WUE and the EU data-centre report). The lab's CDU simulator and meters are in
bitten.lab.doubles.
"""
