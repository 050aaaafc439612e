"""The lab: the whole site on one machine (podman containers with systemd, emulated BMCs and plant)."""
