"""The report stage: the only stage that writes result files (results.json, index.html)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(results: dict[str, Any], path: Path) -> Path:
    """Write results atomically (a half-written results.json is never seen)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=1, allow_nan=False, sort_keys=False)
        out.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the report is meant to be shared
    os.replace(tmp, path)
    return path
