"""Cross-site request forgery: every form carries a token that only this site's pages hand out (synchroniser
token, kept in the signed session cookie). A POST whose token is missing or not the session's changes nothing.
Pure."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

FIELD = "csrf_token"
_SESSION_KEY = "csrf"


def token(session: MutableMapping[str, Any]) -> str:
    """The session's token, made on first use (a page that shows a form calls this)."""
    current = session.get(_SESSION_KEY)
    if not isinstance(current, str) or not current:
        current = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = current
    return current


def renew(session: MutableMapping[str, Any]) -> str:
    """A fresh token, when who the session belongs to changes (sign-in, sign-out)."""
    session.pop(_SESSION_KEY, None)
    return token(session)


def valid(session: MutableMapping[str, Any], given: str | None) -> bool:
    expected = session.get(_SESSION_KEY)
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
