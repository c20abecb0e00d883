"""Webhook authenticity: X-Shopify-Hmac-Sha256 is the base64 HMAC-SHA256 of the raw body,
keyed with the app's client secret (shopify.dev, "Verify webhooks")."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence


def signature(secret: bytes, raw_body: bytes) -> str:
    return base64.b64encode(hmac.new(secret, raw_body, hashlib.sha256).digest()).decode()


def verify(raw_body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """True if the header matches the body under any of the secrets (current, then previous:
    after a rotation Shopify may sign with the old secret for a while). Constant-time."""
    if not header:
        return False
    given = header.strip().encode()
    matched = False
    for secret in secrets:
        # Compare against every secret, not stopping at the first match, so the time taken
        # does not reveal which one matched.
        matched |= hmac.compare_digest(signature(secret, raw_body).encode(), given)
    return matched
