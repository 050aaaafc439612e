"""``python -m bitten.lab mockup|simulate``: the lab's stand-ins without the rest of the bitten command line."""

from bitten.lab.commands import app

app(prog_name="python -m bitten.lab")
