"""bitten's per-user cache (a large inventory file's parse, compiled templates): one place says where it is and
that BITTEN_NO_CACHE turns it off. What is cached only saves time; every user of it works without it."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(kind: str) -> Path | None:
    """$XDG_CACHE_HOME/bitten/<kind> (default ~/.cache), or None under BITTEN_NO_CACHE. Not created here."""
    if os.environ.get("BITTEN_NO_CACHE"):
        return None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bitten" / kind
