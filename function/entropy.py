"""The one place the function draws randomness from: keys, serial numbers, passwords.

With the clock (`clock.py`) it is the only input a call does not find in its request.
Everything random is generated once and then read back from the observed resources, so
a settled server's answer never changes; tests pass a seeded source to make even a
first answer reproducible.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec


class Entropy(Protocol):
    """Where new key material comes from."""

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """A new ECDSA P-256 key."""
        ...

    def serial_number(self) -> int:
        """A new certificate serial number (positive, at most 159 bits)."""
        ...

    def password(self) -> str:
        """A new password: 32 URL-safe characters, 192 bits."""
        ...


class SystemEntropy:
    """The operating system's randomness."""

    def private_key(self) -> ec.EllipticCurvePrivateKey:  # noqa: D102
        return ec.generate_private_key(ec.SECP256R1())

    def serial_number(self) -> int:  # noqa: D102
        return x509.random_serial_number()

    def password(self) -> str:  # noqa: D102
        return secrets.token_urlsafe(24)


system_entropy = SystemEntropy()
