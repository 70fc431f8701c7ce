"""A test certificate chain for C2PA signing, made with ``cryptography``: no network, no files from elsewhere.

:func:`make_chain` writes a root CA, a leaf signing certificate issued by it (with the key usage
and extended key usage the C2PA certificate profile asks of a claim signer), the leaf's private key,
and the chain file a signer is given (leaf first, then the root). Keys: EC P-256 (ES256) by
default; P-384, P-521, RSA (PS256) and Ed25519 on request, to test how the algorithm is inferred.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ec256", "ec384", "ec521", "rsa", "ed25519")


@dataclass(frozen=True)
class Chain:
    """The files :func:`make_chain` wrote."""

    chain: Path  # leaf certificate, then the root: what ``SignerFiles.cert_chain`` names
    key: Path  # the leaf's private key (PKCS#8 PEM, unencrypted)
    root: Path  # the root CA alone: a trust anchor for a verifier
    leaf_cn: str
    root_cn: str


def new_key(key_type: str = "ec256"):
    """A private key of ``key_type`` (one of KEY_TYPES)."""
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ec521":
        return ec.generate_private_key(ec.SECP521R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r}: one of {KEY_TYPES}")


def _hash_for(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gencli tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def root_certificate(key, common_name: str = "gencli test root CA") -> x509.Certificate:
    """A self-signed CA certificate: basic constraints CA, key usage certificate and CRL signing."""
    now = datetime.datetime.now(datetime.UTC)
    name = _name(common_name)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _hash_for(key))
    )


def leaf_certificate(
    key, issuer_key, issuer: x509.Certificate, common_name: str = "gencli test signer"
) -> x509.Certificate:
    """An end-entity signing certificate: digital signature, EKU emailProtection + documentSigning."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, _hash_for(issuer_key))
    )


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_chain(directory: Path, key_type: str = "ec256", prefix: str = "") -> Chain:
    """Write ``chain.pem``, ``key.pem`` and ``root.pem`` under ``directory`` (names after ``prefix``)."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = root_certificate(root_key)
    key = new_key(key_type)
    leaf = leaf_certificate(key, root_key, root)
    chain_path = directory / f"{prefix}chain.pem"
    key_path = directory / f"{prefix}key.pem"
    root_path = directory / f"{prefix}root.pem"
    chain_path.write_bytes(_pem(leaf) + _pem(root))
    key_path.write_bytes(key_pem(key))
    root_path.write_bytes(_pem(root))
    return Chain(chain_path, key_path, root_path, "gencli test signer", "gencli test root CA")
