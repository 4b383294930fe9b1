"""`debar certs dev`: a local CA and certificates for development and tests. Never for production: the CA key sits
beside the certificates it signs.

Every service certificate serves (SAN localhost, 127.0.0.1, ::1 and the Kubernetes service names) and calls
(client certificate whose CN is the service's name, which is the caller's identity). Client-only certificates only
call, one per demo actor, each its own identity: two reviewers, a registry clerk, a platform per domain service,
the person-facing portal, the web console (which serves HTTP), envoy (the proxy that asks authz) and the benchmark.
Files: ca.pem, ca-key.pem, NAME.pem, NAME-key.pem (NAME is the identity, colon included: reviewer:li.pem)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICES = ("sanction", "railway", "hotel", "realestate", "procurement", "authz")
REVIEWERS = ("reviewer:li", "reviewer:zhang")
CLERKS = ("clerk:wang",)
# The platform that calls each domain service in the demo (a ticketing site, a booking site, a land registry office,
# a tender platform).
PLATFORMS = {"railway": "platform:12306", "hotel": "platform:trip", "realestate": "platform:landreg",
             "procurement": "platform:ccgp"}  # fmt: skip
CLIENTS = (*REVIEWERS, *CLERKS, *PLATFORMS.values(), "portal", "console", "envoy", "bench")
NAMESPACES = ("debar", "debar-dev")
CA_DAYS = 3650
CERT_DAYS = 825

Key = ec.EllipticCurvePrivateKey
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False,
)  # fmt: skip


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "debar dev"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def make_ca(common_name: str = "debar dev CA") -> tuple[x509.Certificate, Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def service_dns_names(name: str, namespaces: Iterable[str] = NAMESPACES) -> list[str]:
    names = ["localhost", name]
    for ns in namespaces:
        names += [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]
    return names


def issue(
    ca: tuple[x509.Certificate, Key], common_name: str, dns_names: Sequence[str] = ()
) -> tuple[x509.Certificate, Key]:
    """A certificate for `common_name`, signed by `ca`: a client certificate, and a server one too when
    `dns_names` are given (with the loopback addresses)."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if dns_names else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if dns_names:
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path: Path, data: bytes, private: bool = False) -> None:
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def _save(directory: Path, stem: str, cert: x509.Certificate, key: Key) -> None:
    _write(directory / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(directory / f"{stem}-key.pem", key_pem, private=True)


def load_or_make_ca(directory: Path) -> tuple[x509.Certificate, Key]:
    """The CA in `directory` if there is one (so that certificates issued later trust the same root), else a new one."""
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: not an EC key made by `debar certs dev`")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    _save(directory, "ca", *ca)
    return ca


def write_dev_certs(directory: Path, services: Iterable[str] = SERVICES, clients: Iterable[str] = CLIENTS) -> list[str]:
    """Issues a certificate per service and per client into `directory`; returns the names issued."""
    ca = load_or_make_ca(directory)
    issued = []
    for name in services:
        _save(directory, name, *issue(ca, name, service_dns_names(name)))
        issued.append(name)
    for name in clients:
        _save(directory, name, *issue(ca, name))
        issued.append(name)
    return issued
