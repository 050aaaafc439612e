"""Pulumi program: the BMC state of every node of a bitten site (see README.md)."""

from pathlib import Path

from bmc_program import program

program(Path(__file__).resolve().parent)
