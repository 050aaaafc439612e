"""Slurm: how a config change reaches the running daemons, and accounting (QoS, accounts) through sacctmgr."""
