"""The trail archive as one Avro object container file (the Avro specification's `.avro`
file: the writer schema in its header, deflate blocks), for tools that read Avro files and
nothing of ours (Spark, Hive, avro-tools, fastavro).

Its schema is the union of the archive's three kinds of frame, `px.trail.SegmentHeader`,
`px.trail.TrailRecord` and `px.trail.Seal`, each standalone; its values are the archive's
frames in archive order (chain by chain, segment by segment), decoded (a frame written with
an earlier release's schema read as the current one). Avro's binary encoding of a value under
a schema is unique, so a record written with the current schema, its entry encoded again, is
the bytes its SM3 `hash` covers. The archive files stay the evidence (`replay verify --source
archive` checks them, whatever schema wrote them); the container is a copy to read, made only
of an archive whose frames all read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import fastavro

from gateway.errors import TRAIL_ARCHIVE_CORRUPT, ArchiveError
from gateway.trail.archive import HEADER_SCHEMA, FramingProblem, read_archive
from gateway.trail.writer import RECORD_SCHEMA, SEAL_SCHEMA
from message_formats import AvroSchemas, FormatError

CONTAINER_SCHEMAS: Final = (HEADER_SCHEMA, RECORD_SCHEMA, SEAL_SCHEMA)
CONTAINER_CODEC: Final = "deflate"


def write_archive_container(directory: Path, schemas: AvroSchemas, out: BinaryIO) -> int:
    """Writes the archive of `directory` to `out` as one container file; the number of
    frames written. ArchiveError (TRAIL_ARCHIVE_CORRUPT) at the first frame that does not
    read, or bytes of a segment that are not frames."""
    counted = [0]

    def frames() -> Iterator[tuple[str, Any]]:
        for item in read_archive(directory):
            if isinstance(item, FramingProblem):
                raise ArchiveError(f"{item.where}: {item.problem}", code=TRAIL_ARCHIVE_CORRUPT)
            try:
                name, value = schemas.decode(item.payload)
            except FormatError as exc:
                raise ArchiveError(f"{item.where}: {exc.code}: {exc.message}",
                                   code=TRAIL_ARCHIVE_CORRUPT) from None
            if name not in CONTAINER_SCHEMAS:
                raise ArchiveError(f"{item.where}: a {name} is not a trail archive frame",
                                   code=TRAIL_ARCHIVE_CORRUPT)
            counted[0] += 1
            yield name, value  # fastavro's tuple notation: the union branch by name

    union = fastavro.parse_schema([schemas.standalone(name) for name in CONTAINER_SCHEMAS])
    fastavro.writer(out, union, frames(), codec=CONTAINER_CODEC)
    return counted[0]
