"""A small certificate authority for test and lab services: a CA and server certificates it signs.

Emulated BMCs, the UCloud Core double, simulated CDUs (every lab and test service) speak TLS with certificates from
this CA, and clients verify them against the CA file — the same code path as a site's own CA, with verification on.
Only for addresses of this machine and its own container networks: a site's devices come with their own
certificates. Keys are written 0600; existing files are kept, so a re-run does not change what hosts trust.

``python -m bitten.core.pki DIR NAME-OR-IP...`` writes DIR/ca.pem, DIR/ca.key, DIR/server.pem and DIR/server.key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # before the key is written: never readable by others, not even for a moment
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bitten"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class CertificateAuthority:
    """``<dir>/ca.pem`` and ``<dir>/ca.key``, created on first use and reused afterwards."""

    def __init__(self, directory: Path, name: str = "bitten test CA") -> None:
        self.directory = directory
        self.name = name

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "ca.key"

    def ensure(self) -> CertificateAuthority:
        if self.cert_path.exists() and self.key_path.exists():
            return self
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(self.name)).issuer_name(_name(self.name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write_key(self.key_path, key)
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return self

    def issue(self, name: str, hosts: Sequence[str], directory: Path | None = None) -> CertPair:
        """A server certificate for ``hosts`` (names or IP addresses), as ``<name>.pem`` and ``<name>.key``."""
        self.ensure()
        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(hosts[0] if hosts else name))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=397))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        out = directory or self.directory
        pair = CertPair(cert=out / f"{name}.pem", key=out / f"{name}.key")
        _write_key(pair.key, key)
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair


@dataclass(frozen=True)
class ServerTls:
    """A CA file for clients, and the certificate and key of the one server it vouches for."""

    ca: Path
    cert: Path
    key: Path


def server_tls(directory: Path, hosts: Sequence[str], ca_name: str = "bitten test CA") -> ServerTls:
    """The CA in ``directory`` and its ``server`` certificate for ``hosts``; both made once and then kept."""
    ca = CertificateAuthority(directory, ca_name).ensure()
    pair = CertPair(cert=directory / "server.pem", key=directory / "server.key")
    if not (pair.cert.exists() and pair.key.exists()):
        pair = ca.issue("server", hosts, directory)
    return ServerTls(ca=ca.cert_path, cert=pair.cert, key=pair.key)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python -m bitten.core.pki DIR NAME-OR-IP...")
    made = server_tls(Path(sys.argv[1]), sys.argv[2:])
    print(f"ca: {made.ca}\ncert: {made.cert}\nkey: {made.key}")
