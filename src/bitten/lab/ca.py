"""The lab's certificate authority under .lab/ca/ (never committed): lab services get TLS certificates from it."""

from __future__ import annotations

from pathlib import Path

from bitten.core.pki import CertificateAuthority


def lab_ca(state: Path) -> CertificateAuthority:
    """The CA in ``<state>/ca`` (``state`` is the lab's .lab directory), created on first use."""
    return CertificateAuthority(state / "ca", name="bitten lab CA").ensure()
