"""The one ingestion path shared by the service, the watch folder and ``score`` (see :mod:`.core`)."""

from inspection.ingest.core import Admission, Ingested, Ingestor, Submission, score_photos
from inspection.ingest.ids import (
    UNAUTHENTICATED_STATION,
    check_part_id,
    valid_part_id,
    valid_station_id,
)

__all__ = [
    "UNAUTHENTICATED_STATION",
    "Admission",
    "Ingested",
    "Ingestor",
    "Submission",
    "check_part_id",
    "score_photos",
    "valid_part_id",
    "valid_station_id",
]
