"""The manifest of a run: ``manifest.jsonl`` in ``--out``, one JSON record per line."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

__all__ = ["MANIFEST", "read_previous"]

MANIFEST = "manifest.jsonl"


def read_previous(path: Path) -> dict:
    """The finished records (``ok`` or ``skipped``) of an earlier manifest, by key."""
    records = {}
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = json.loads(line)
                if record["status"] in ("ok", "skipped"):
                    records[record["key"]] = record
    return records
