"""A private CA and server certificates for test doubles (the lab's Core double, Molecule, tests).

Only for addresses of this machine and its own container networks: production Core has a public certificate.
Keys are written 0600. Existing files are kept, so re-running ``make lab`` does not change what hosts trust.
``python -m bitten.ucloud.labca DIR NAME-OR-IP...`` writes DIR/ca.pem, DIR/server.pem, DIR/server.key.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bitten test doubles"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def ensure_ca(directory: Path, names: list[str], days: int = 825) -> dict[str, Path]:
    """Create (once) a CA and a server certificate for ``names`` (DNS names or IP addresses) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"ca": directory / "ca.pem", "ca_key": directory / "ca.key", "cert": directory / "server.pem",
             "key": directory / "server.key"}
    if all(p.exists() for p in paths.values()):
        return paths
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("bitten test-double CA")
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(paths["ca_key"], ca_key)
    _write_key(paths["key"], key)
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python -m bitten.ucloud.labca DIR NAME-OR-IP...")
    for kind, path in ensure_ca(Path(sys.argv[1]), sys.argv[2:]).items():
        print(f"{kind}: {path}")
