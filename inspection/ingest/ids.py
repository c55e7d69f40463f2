"""Station and part ids: one rule each, checked the same way by the service, the watch folder and ``score``.

Ids end up in file names, URLs, metric labels and dashboard text, so they are short, printable and free of
path separators: a part id may not contain ``/``, ``\\`` or ``..``.
"""

from __future__ import annotations

import re

from inspection.results import Rejection

STATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PART_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Attempts with no valid key are recorded under this name: it is not a valid station id, so no real station
# can ever own it, and the dashboard can keep it out of the station charts.
UNAUTHENTICATED_STATION = "(unauthenticated)"
STATION_ID_RULE = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def valid_station_id(station_id: str) -> bool:
    """Station ids are 1-64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit."""
    return bool(STATION_ID_RE.fullmatch(station_id))


def valid_part_id(part_id: str) -> bool:
    """Part ids are 1-128 letters, digits, ``.``, ``_``, ``:`` or ``-``, starting with a letter or digit, no ``..``."""
    return bool(PART_ID_RE.fullmatch(part_id)) and ".." not in part_id


def check_part_id(part_id: str | None) -> str:
    """``part_id`` if valid, else a ``bad_part_id`` :class:`Rejection`."""
    if part_id is None or not valid_part_id(part_id):
        raise Rejection(
            "bad_part_id",
            f"part id {(part_id or '')[:80]!r} is not valid; use 1-128 letters, digits, '.', '_', ':' or '-' "
            "(no slashes or '..')",
        )
    return part_id
