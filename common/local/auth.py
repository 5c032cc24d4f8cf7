"""Credentials of a local endpoint: two keys (auth_mode key) or signed tokens with an expiry (aml_token, aad_token)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
from typing import Any

TOKEN_LIFETIME_SECONDS = 24 * 3600  # as Azure ML tokens


# what each regenerate key type replaces in keys.json ("token" rotates the secret tokens are signed with)
KEY_FIELDS = {"primary": "primary_key", "secondary": "secondary_key", "token": "token_secret"}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_keys() -> dict[str, str]:
    return {field: new_secret() for field in KEY_FIELDS.values()}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def issue_token(endpoint: str, secret: str, now: float | None = None) -> tuple[str, float]:
    """A token for this endpoint and its expiry (epoch seconds)."""
    expires = (time.time() if now is None else now) + TOKEN_LIFETIME_SECONDS
    payload = _b64(json.dumps({"endpoint": endpoint, "exp": expires}).encode())
    return f"{payload}.{_sign(secret, payload)}", expires


def _token_valid(token: str, endpoint: str, secret: str, now: float) -> bool:
    """Signed by `secret`, for `endpoint`, not expired. Anything malformed is simply not valid (never an error)."""
    payload, _, signature = token.partition(".")
    try:
        if not hmac.compare_digest(signature.encode(), _sign(secret, payload).encode()):
            return False
        claims: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(claims, dict) or claims.get("endpoint") != endpoint:
            return False
        expires = claims.get("exp")
        if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
            return False
        return float(expires) > now
    except (ValueError, TypeError, OverflowError, RecursionError, UnicodeError):
        return False


def check(authorization: str | None, auth_mode: str, endpoint: str, keys: dict[str, str]) -> str | None:
    """None when the Authorization header is accepted, else why not (for the 401 body)."""
    scheme, _, credential = (authorization or "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return "missing credential: send Authorization: Bearer <key or token>"
    if auth_mode == "key":
        # Both comparisons always run, in constant time, so timing reveals neither key.
        given = credential.encode("utf-8", "backslashreplace")
        primary = hmac.compare_digest(given, keys["primary_key"].encode())
        secondary = hmac.compare_digest(given, keys["secondary_key"].encode())
        return None if primary or secondary else "invalid key"
    if _token_valid(credential, endpoint, keys["token_secret"], time.time()):
        return None
    return "invalid or expired token"
