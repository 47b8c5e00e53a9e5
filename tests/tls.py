"""Certificates for TLS tests, made afresh: a CA, a server certificate for 127.0.0.1 and localhost, a client
certificate, and a second CA with a client certificate of its own, written as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes]:
        """(certificate chain, private key) as grpc takes them."""
        return self.cert.read_bytes(), self.key.read_bytes()


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: Pem
    client: Pem
    other_ca: Path
    other_client: Pem
    """A client certificate issued by other_ca, which the server does not trust."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


SERVER_NAMES = ("localhost", "127.0.0.1")


def _certificate(
    subject: str,
    key: Key,
    issuer: tuple[str, Key] | None,
    *,
    ca: bool = False,
    server: bool = False,
    server_names: tuple[str, ...] = SERVER_NAMES,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server:
        names = [_general_name(name) for name in server_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write(directory: Path, name: str, certificate: x509.Certificate, key: Key | None = None) -> Path:
    path = directory / f"{name}.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (directory / f"{name}.key").write_bytes(pem)
    return path


def make_certificates(directory: Path, server_names: tuple[str, ...] = SERVER_NAMES) -> Certificates:
    """The certificates, the server's valid for `server_names` (host names or IP addresses)."""
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "server", "client", "other", "stray")}
    ca = _certificate("fabric-jobs test CA", keys["ca"], None, ca=True)
    other = _certificate("another CA", keys["other"], None, ca=True)
    issued = {
        "server": _certificate(
            server_names[0], keys["server"], ("fabric-jobs test CA", keys["ca"]), server=True, server_names=server_names
        ),
        "client": _certificate("bridge", keys["client"], ("fabric-jobs test CA", keys["ca"])),
        "stray": _certificate("stray client", keys["stray"], ("another CA", keys["other"])),
    }
    for name, certificate in issued.items():
        _write(directory, name, certificate, keys[name])
    pem = {name: Pem(directory / f"{name}.pem", directory / f"{name}.key") for name in issued}
    return Certificates(
        ca=_write(directory, "ca", ca),
        server=pem["server"],
        client=pem["client"],
        other_ca=_write(directory, "other-ca", other),
        other_client=pem["stray"],
    )
