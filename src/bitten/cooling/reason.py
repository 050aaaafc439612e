"""The reason prefix the cooling agent owns: every drain reason it sets starts with it, and it only ever resumes
nodes whose reason does. A module of its own (standard library and bitten.core.scontrol only), so that what only
needs the prefix (the helper's allowed.json that `bitten render` writes) does not import the agent's runtime."""

from __future__ import annotations

from bitten.core.scontrol import ReasonPrefix

REASON = ReasonPrefix("bitten-cooling:")
