"""bitten: infrastructure as code for an energy-aware AI supercomputer."""

__version__ = "0.1.0"
