"""Secrets taken out of text before it is shown: API keys, proxy credentials, tokens.

Everything hubasync prints, logs or records passes through :func:`redact` with the secrets the
run holds; ``apikey=`` values in URLs are taken out whatever the key.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

REDACTED = "REDACTED"
_APIKEY_VALUE_RE = re.compile(r"apikey=[^&#\s\"'<>]*", re.IGNORECASE)


def redact(text: str, *secrets: str | None) -> str:
    """Text safe to print: apikey=... values in URLs and every occurrence of each secret
    (the API key, a proxy's password and credential) replaced."""
    text = _APIKEY_VALUE_RE.sub(f"apikey={REDACTED}", text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = _redact_one(text, secret)
    return text


def _redact_one(text: str, secret: str) -> str:
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    # The marker itself, or the marker next to the text around it, may spell the secret again.
    while secret in text:
        text = text.replace(secret, "")
    return text
