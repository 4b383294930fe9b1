"""The two lists of keys an operator writes as settings about witnesses, parsed: the witnesses a log asks for
cosignatures (DEBAR_LOG_WITNESSES) and the logs a witness follows (DEBAR_WITNESS_LOGS).

Formats:
- DEBAR_LOG_WITNESSES: entries separated by commas, each `<cosigner verifier key> <URL>` (one or more spaces
  between): the witness's verifier key in the c2sp.org/tlog-cosignature form `<name>+<key id>+<base64(0x04 ||
  public key)>`, as `debar witness keygen` prints it, and its submission prefix, an http:// or https:// URL (the
  request goes to `<URL>/add-checkpoint`). Witness names are unique. Empty: no witness.
- DEBAR_WITNESS_LOGS: log verifier keys separated by commas, in the signed-note Ed25519 form `<name>+<key id>+
  <base64(0x01 || public key)>`; the key's name is the log's origin (c2sp.org/tlog-checkpoint asks a log to name
  its key so). Several keys with one name are all accepted for that origin (a key rotation).
Neither form can hold a comma (base64 and key names have none), so a comma always separates entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from debar.tlog.cosignature import CosignatureVerifier, parse_cosigner_key
from debar.tlog.keys import Ed25519Verifier, InvalidKey, parse_verifier_key


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness a log asks: its cosigner key and its submission prefix."""

    verifier: CosignatureVerifier
    url: str

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def add_checkpoint_url(self) -> str:
        return self.url.rstrip("/") + "/add-checkpoint"

    def setting(self) -> str:
        """This witness as one entry of DEBAR_LOG_WITNESSES."""
        return f"{self.verifier.verifier_key()} {self.url}"


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",") if entry.strip()]


def parse_log_witnesses(text: str) -> tuple[WitnessEndpoint, ...]:
    """DEBAR_LOG_WITNESSES; ValueError says which entry is wrong (by position: a key is no secret, but short)."""
    witnesses: list[WitnessEndpoint] = []
    for position, entry in enumerate(_entries(text), start=1):
        parts = entry.split()
        if len(parts) != 2:
            raise ValueError(f"entry {position}: not '<witness verifier key> <URL>'")
        key, url = parts
        try:
            verifier = parse_cosigner_key(key)
        except InvalidKey as error:
            raise ValueError(f"entry {position}: {error}") from None
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
            raise ValueError(f"entry {position}: the URL must be http:// or https://, with a host, no query")
        if any(w.name == verifier.name for w in witnesses):
            raise ValueError(f"entry {position}: a second witness named {verifier.name}")
        witnesses.append(WitnessEndpoint(verifier, url))
    return tuple(witnesses)


def parse_witnessed_logs(text: str) -> Mapping[str, tuple[Ed25519Verifier, ...]]:
    """DEBAR_WITNESS_LOGS, as origin -> the log's verifier keys."""
    logs: dict[str, list[Ed25519Verifier]] = {}
    for position, entry in enumerate(_entries(text), start=1):
        try:
            verifier = parse_verifier_key(entry)
        except InvalidKey as error:
            raise ValueError(f"entry {position}: {error}") from None
        logs.setdefault(verifier.name, []).append(verifier)
    return {origin: tuple(keys) for origin, keys in logs.items()}
