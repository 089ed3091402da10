"""The lab's TLS certificate, made at start: no key material in the repository.

Rule: test infrastructure only. Let's Encrypt does not verify the certificate of
a server it validates, so any self-signed certificate will do; a fresh EC key is
made once per process (milliseconds) and kept in memory and a private temporary
file only for as long as ``ssl`` needs to load it.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import ssl
import tempfile
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.x509.oid import NameOID

__all__ = ["lab_certificate", "lab_ssl_context"]


Algorithm = Literal["ec", "rsa", "ed448"]


#: The lab certificate's validity: a day ago to 89 days ahead (a 90-day certificate).
_VALIDITY = (-86400.0, 89 * 86400.0)


def lab_certificate(
    algorithm: Algorithm = "ec", validity: tuple[float, float] = _VALIDITY
) -> tuple[bytes, bytes]:
    """A self-signed certificate for the lab's names: ``(cert PEM, key PEM)``.

    ``ec`` (P-256, the default) is quick to make; ``rsa`` (2048 bits) is for servers that
    must offer RSA key exchange suites (ECDHE-RSA-...); ``ed448`` for a server whose
    signature Go's client cannot accept (Go offers no Ed448). ``validity``: notBefore and
    notAfter in seconds from now (rounded to the minute, so that the cache can serve it).
    """
    return _certificate(algorithm, validity)


@functools.cache  # keyed on both arguments, however the caller passed them
def _certificate(algorithm: Algorithm, validity: tuple[float, float]) -> tuple[bytes, bytes]:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed448.Ed448PrivateKey
    if algorithm == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ed448":
        key = ed448.Ed448PrivateKey.generate()
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-http01-exporter lab")])
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(seconds=validity[0]))
        .not_valid_after(now + dt.timedelta(seconds=validity[1]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("*.example.com"), x509.DNSName("lab")]),
            critical=False,
        )
        # Its own issuer: a test can trust it as a root to see a chain that verifies.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None if algorithm == "ed448" else hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def lab_ssl_context(
    algorithm: Algorithm = "ec", validity: tuple[float, float] = _VALIDITY
) -> ssl.SSLContext:
    """A server context with the lab's certificate (of that validity, from now)."""
    cert_pem, key_pem = lab_certificate(algorithm, validity)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl loads a key from a file only; the file lives for the duration of this call,
    # readable by this user alone.
    fd, path = tempfile.mkstemp(prefix="lab-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(cert_pem + key_pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx
