"""Reviewers' personal accounts, for deployments without an authenticating proxy (and `debar up`): a JSON file of
argon2id password hashes (argon2-cffi), never a password in clear.

    {"reviewers": {"li": {"display_name": "Judge Li", "password_hash": "$argon2id$v=19$..."}}}

A reviewer acts at the sanction service as the identity `reviewer:<login>`."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

LOGIN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")
IDENTITY_KIND = "reviewer"
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a sign-in from costing more than the hash itself
DEMO_REVIEWERS = (("li", "Judge Li (demo)"), ("zhang", "Clerk Zhang (demo)"))
# argon2id at OWASP's suggested cost (19 MiB, 2 passes): a sign-in must not need the 64 MiB of the library's
# default in a pod limited to 256 MiB. Each hash records its parameters, so stronger ones can follow.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified when the login is unknown, so that a wrong login costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class AccountsError(ValueError):
    """The accounts file cannot be used; the message names the file and what is wrong (never a hash)."""


@dataclass(frozen=True, slots=True)
class Reviewer:
    login: str
    display_name: str
    # The reviewer's own signed token, as the authenticating proxy passed it (proxy sign-in), forwarded unchanged to
    # the sanction service as their proof; empty in accounts sign-in (the console signs one: sanction_client.py).
    proof: str = field(default="", repr=False, compare=False)

    @property
    def identity(self) -> str:
        """The name the sanction service knows this person by."""
        return f"{IDENTITY_KIND}:{self.login}"


def reviewer_of(login: str, display_name: str = "", proof: str = "") -> Reviewer | None:
    """A reviewer by login name (as an authenticating proxy names them), or None for a name that is not one."""
    login = login.strip()
    return Reviewer(login, display_name or login, proof.strip()) if LOGIN.match(login) else None


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AccountsError(f"{path}: no such accounts file (`debar console add-reviewer` makes one)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AccountsError(f"{path}: cannot read the accounts file: {error}") from None
    reviewers = data.get("reviewers") if isinstance(data, dict) else None
    if not isinstance(reviewers, dict):
        raise AccountsError(f'{path}: expected {{"reviewers": {{LOGIN: {{...}}}}}}')
    for login, entry in reviewers.items():
        if not LOGIN.match(login):
            raise AccountsError(f"{path}: login {login!r} must match {LOGIN.pattern}")
        if not isinstance(entry, dict) or not str(entry.get("password_hash", "")).startswith("$argon2"):
            raise AccountsError(f"{path}: reviewer {login} has no argon2 password_hash")
    return reviewers


class Accounts:
    """The accounts file as loaded at start-up."""

    def __init__(self, reviewers: dict[str, dict[str, str]]) -> None:
        self._reviewers = reviewers

    @classmethod
    def load(cls, path: Path) -> Accounts:
        return cls(_read(path))

    def __len__(self) -> int:
        return len(self._reviewers)

    def sign_in(self, login: str, password: str) -> Reviewer | None:
        """The reviewer when the password is theirs; None otherwise, whether the login or the password was wrong."""
        entry = self._reviewers.get(login.strip()) if LOGIN.match(login.strip()) else None
        stored = entry["password_hash"] if entry else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        if entry is None or len(password) > MAX_PASSWORD:
            return None
        return Reviewer(login.strip(), entry.get("display_name") or login.strip())

    def stamp(self, login: str) -> str:
        """What a session keeps of the account it was signed in to ("" for no account): a digest of its password
        hash (argon2 salts each hash, so a new password, even the same one again, is a new stamp). The cookie is
        readable by its holder; the digest of a salted hash tells nothing of the password."""
        entry = self._reviewers.get(login)
        return hashlib.sha256(entry["password_hash"].encode()).hexdigest()[:32] if entry else ""

    def still_signed_in(self, login: object, stamp: object) -> Reviewer | None:
        """The reviewer a session names, while the account is in the file as it was at sign-in; None once it was
        removed or given a new password (the file is read at start: from the console's next start)."""
        if not isinstance(login, str) or not isinstance(stamp, str) or not stamp:
            return None
        current = self.stamp(login)
        if not current or not hmac.compare_digest(current.encode(), stamp.encode()):
            return None
        entry = self._reviewers[login]
        return Reviewer(login, entry.get("display_name") or login)


def _write(path: Path, reviewers: dict[str, dict[str, str]]) -> None:
    """Atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"reviewers": reviewers}, indent=2, ensure_ascii=False) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_reviewer(path: Path, login: str, password: str, display_name: str = "") -> Reviewer:
    """Adds (or replaces) one reviewer in the file, making the file if needed."""
    if not LOGIN.match(login):
        raise AccountsError(f"login {login!r} must match {LOGIN.pattern}")
    if not 12 <= len(password) <= MAX_PASSWORD:
        raise AccountsError(f"a password must have 12 to {MAX_PASSWORD} characters")
    reviewers = _read(path) if path.exists() else {}
    reviewers[login] = {"display_name": display_name or login, "password_hash": _HASHER.hash(password)}
    _write(path, reviewers)
    return Reviewer(login, display_name or login)


def write_demo_reviewers(path: Path) -> list[tuple[Reviewer, str]]:
    """`debar up`: the two demo reviewers with fresh random passwords (other accounts in the file are kept)."""
    made = []
    for login, display_name in DEMO_REVIEWERS:
        password = secrets.token_urlsafe(12)
        made.append((add_reviewer(path, login, password, display_name), password))
    return made
