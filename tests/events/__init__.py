"""Recorded real event payloads per provider: tests/events/<provider>/<name>.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).parent


def load_event(provider: str, name: str) -> Any:
    path = EVENTS_DIR / provider / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))
