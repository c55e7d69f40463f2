"""``/v1/stations/{station_id}/drift``: how many of a station's recent photos lie beyond the models' range.

A photo is out of distribution (``ood``) when the defect model's features of it lie beyond the range of the
bundle's training photos (:mod:`inspection.ood`). When too many of a station's recent photos are, its camera or
product has moved away from what the models know, and their verdicts should not be trusted:
:func:`inspection.ood.station_warning` says so, naming what the live bundle was trained on.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from sqlalchemy.exc import SQLAlchemyError

from inspection.ingest.ids import STATION_ID_RE
from inspection.service.deps import Reader
from inspection.service.state import ServiceState, blocking, service_state
from inspection.store import RecordStore

log = logging.getLogger("inspection.service")
router = APIRouter(prefix="/v1/stations", tags=["stations"])


def station_drift(store: RecordStore, station_id: str, card: dict[str, Any]) -> dict[str, Any]:
    """The station's share of out-of-distribution photos among its newest ones, and the warning it earns.

    ``photos`` counts the station's newest records whose OOD flag is known (at most
    :data:`inspection.ood.WARN_WINDOW`), ``flagged`` those out of range; ``share`` is None without photos.
    """
    from inspection.ood import station_warning

    flagged, photos = store.ood_share(station_id)
    return {
        "station_id": station_id,
        "photos": photos,
        "flagged": flagged,
        "share": flagged / photos if photos else None,
        "warning": station_warning(flagged, photos, card),
    }


async def ood_warnings(svc: ServiceState, station_id: str) -> list[str]:
    """The warnings a station's upload answer carries: its OOD warning, if it has one (one indexed query).

    The record is stored by then, so a database that fails here costs the answer its warnings, never the record.
    """
    store = svc.ingestor.store
    try:
        drift = await blocking(station_drift, store, station_id, svc.scorer.card)
    except SQLAlchemyError as e:
        log.warning("could not read station %s's share of out-of-range photos: %s", station_id, e)
        return []
    return [drift["warning"]] if drift["warning"] else []


@router.get("/{station_id}/drift", summary="A station's share of out-of-distribution photos")
async def get_station_drift(
    request: Request,
    who: Reader,
    station_id: Annotated[str, Path(pattern=STATION_ID_RE.pattern, description="The station's id.")],
) -> dict[str, Any]:
    """Readable by the station's own key or an engineer key; a station key asking about another station gets 403."""
    if not who.can_read(station_id):
        raise HTTPException(status_code=403, detail=f"a station key reads only its own station ({who.name})")
    svc = service_state(request)
    return await blocking(station_drift, svc.ingestor.store, station_id, svc.scorer.card)
