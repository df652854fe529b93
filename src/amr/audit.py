"""Reading the gateway's connection audit log (AMR_HOME/logs/connections*.jsonl).

The gateway writes one JSON object per line, per worker file, rotated by size; this reads the recent
events of one database back for `amr redisenterprise database connection-events`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from amr.settings import Settings


def _audit_files(settings: Settings) -> list[Path]:
    base = settings.audit_file
    files = sorted(base.parent.glob(base.stem + "*" + base.suffix + "*"))
    return [f for f in files if f.is_file()]


def read_connection_events(settings: Settings, database_id: str, top: int) -> list[dict[str, Any]]:
    """The newest ``top`` events of ``database_id``, oldest first. Unreadable lines are skipped."""
    wanted = database_id.lower()
    events: list[dict[str, Any]] = []
    for path in _audit_files(settings):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and str(event.get("databaseId", "")).lower() == wanted:
                events.append(event)
    events.sort(key=lambda e: str(e.get("time", "")))
    return events[-top:] if top > 0 else []
