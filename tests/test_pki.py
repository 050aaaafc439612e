"""The lab and test CA: key modes, kept files, and certificates a TLS client accepts for the named hosts only."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from bitten.core.pki import server_tls


def test_keys_are_private_and_a_rerun_keeps_every_file(tmp_path: Path) -> None:
    first = server_tls(tmp_path, ["127.0.0.1", "cdu.lab"])
    for key in (first.key, tmp_path / "ca.key"):
        assert key.stat().st_mode & 0o777 == 0o600
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    again = server_tls(tmp_path, ["127.0.0.1", "cdu.lab"])
    assert again == first
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_the_server_certificate_verifies_for_its_hosts_only(tmp_path: Path) -> None:
    tls = server_tls(tmp_path, ["127.0.0.1", "cdu.lab"])
    context = ssl.create_default_context(cafile=str(tls.ca))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(tls.cert), str(tls.key))
    for host in ("127.0.0.1", "cdu.lab"):
        _handshake(context, server, host)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(context, server, "other.lab")


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, host: str) -> None:
    """A TLS handshake in memory, so no port is needed."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=host)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        done = 0
        for side, out, peer_in in ((c, c_out, s_in), (s, s_out, c_in)):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
            peer_in.write(out.read())
        if done == 2:
            return
    raise AssertionError("handshake did not finish")
