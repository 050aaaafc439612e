"""What can go wrong reading or writing a cooling device (one home for both device kinds)."""

from __future__ import annotations


class DeviceError(RuntimeError):
    """A device did not answer, or answered something that is not a valid reading."""


class WriteRefused(PermissionError):
    """A write the configuration does not allow (writes disabled, read-only register, out of range)."""
