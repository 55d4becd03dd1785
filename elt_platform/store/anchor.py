"""Ledger anchors: the ledger's head written outside the metadata store (an append-only file of
JSON lines, by default beside the warehouse; point it at append-only or remote storage), each
line signed with the ledger key when one is configured. A chain that was truncated, emptied or
recomputed no longer contains the anchored heads, and without the key no valid line is forged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from elt_platform.store.metadata import utc_now

KeySource = Callable[[], bytes | None]


def sign(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A public fingerprint telling keys apart (never the key itself)."""
    return hashlib.sha256(b"elt-ledger-key-id:" + key).hexdigest()[:12]


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str
    key_id: str | None = None
    mac: str | None = None
    line: int = 0

    def message(self) -> str:
        return f"{self.seq}:{self.hash}:{self.at}"


class LedgerAnchor:
    """Where heads are anchored and with which key (read when needed, never at import)."""

    def __init__(self, path: Path, key: KeySource = lambda: None) -> None:
        self.path = Path(path)
        self.key = key

    def write(self, seq: int, digest: str) -> Anchor:
        """Append the head (seq, hash) as one line; O_APPEND keeps concurrent writers whole."""
        anchor = Anchor(seq, digest, utc_now())
        key = self.key()
        if key:
            anchor = Anchor(seq, digest, anchor.at, key_id(key), sign(key, anchor.message()))
        record = {"seq": seq, "hash": digest, "at": anchor.at}
        if anchor.mac:
            record.update(key_id=anchor.key_id, mac=anchor.mac)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)
        return anchor

    def read(self) -> tuple[list[Anchor], list[str]]:
        """(anchors, problems with lines that cannot be read or whose signature is wrong)."""
        if not self.path.exists():
            return [], []
        anchors, problems = [], []
        key = self.key()
        signing = False
        for n, text in enumerate(self.path.read_text().splitlines(), start=1):
            try:
                raw = json.loads(text)
                anchor = Anchor(
                    int(raw["seq"]), str(raw["hash"]), str(raw["at"]),
                    raw.get("key_id"), raw.get("mac"), n,
                )  # fmt: skip
            except (ValueError, KeyError, TypeError):
                problems.append(f"anchor line {n} of {self.path} is not a valid anchor")
                continue
            if key:
                problem = _signature_problem(anchor, key, signing)
                signing = signing or anchor.mac is not None
                if problem:
                    problems.append(f"anchor line {n} of {self.path} {problem}")
                    continue
            anchors.append(anchor)
        return anchors, problems


def _signature_problem(anchor: Anchor, key: bytes, signing: bool) -> str | None:
    """With a key, every anchor after the first signed one must carry a valid signature."""
    if anchor.mac is None:
        return "is not signed (written without the ledger key)" if signing else None
    expected = sign(key, anchor.message())
    if anchor.key_id != key_id(key) or not hmac.compare_digest(anchor.mac, expected):
        return "has a wrong signature (forged or edited without the ledger key)"
    return None
