"""Liquid cooling and heat reuse: the cooling agent, the energy ledger and the reports.

Modules, one concept each: ``physics`` (coolant properties, heat), ``modbus`` (register maps, Modbus TCP meters),
``redfish`` (Redfish ThermalEquipment CDUs), ``alarms`` (readings -> alarm state), ``actions`` (Slurm drain/resume,
GPU power caps), ``ledger`` (durable energy counters), ``metrics`` (Prometheus), ``agent`` (the loop), ``report``
(PUE/ERF/ERE/REF/WUE and the EU data-centre report), ``simulator``/``mockup`` (the lab's CDU and meters).
"""
