"""What contracts are checked against: the document types, their canonical field paths, which
of those are personal, and each type's data classification.

Both facts about fields come from the canonical Avro schemas themselves, so a schema change
cannot leave the contracts' view of it behind: a field carrying ``"personal": true`` is
personal information (names, document numbers, dates of birth); a record schema carrying
``"classification": "important"`` is of that grade (default ``general``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.projection import field_paths_of_avro, personal_paths_of_avro
from message_formats import AvroSchemas

# The grades of the Data Security Law (数据安全法 art. 21), lowest first: 一般数据, 重要数据,
# 核心数据. A contract names the highest grade it may carry.
CLASSIFICATIONS = ("general", "important", "core")


def classification_rank(grade: str) -> int:
    return CLASSIFICATIONS.index(grade)


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    document_type: str
    schema_name: str
    schema: Mapping[str, Any]
    field_paths: frozenset[str]
    personal_paths: frozenset[str]
    classification: str

    @property
    def top_fields(self) -> tuple[str, ...]:
        return tuple(str(f["name"]) for f in self.schema["fields"])


class DocumentCatalog:
    __slots__ = ("_by_type",)

    def __init__(self, documents: Mapping[str, DocumentInfo]) -> None:
        self._by_type = dict(documents)

    @classmethod
    def from_schemas(cls, schemas: AvroSchemas, schema_names: Mapping[str, str]) -> DocumentCatalog:
        """`schema_names`: document type → full name of its canonical record."""
        return cls({doc_type: _info(schemas, doc_type, name)
                    for doc_type, name in schema_names.items()})

    def __contains__(self, document_type: object) -> bool:
        return document_type in self._by_type

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_type)

    def get(self, document_type: str) -> DocumentInfo | None:
        return self._by_type.get(document_type)

    def __getitem__(self, document_type: str) -> DocumentInfo:
        return self._by_type[document_type]


def _info(schemas: AvroSchemas, document_type: str, schema_name: str) -> DocumentInfo:
    schema = schemas.schema(schema_name)
    grade = str(schema.get("classification", "general"))
    if grade not in CLASSIFICATIONS:
        raise ValueError(f"{schema_name}: classification {grade!r} is not one of "
                         f"{', '.join(CLASSIFICATIONS)}")
    return DocumentInfo(
        document_type=document_type,
        schema_name=schema_name,
        schema=schema,
        field_paths=field_paths_of_avro(schema),
        personal_paths=personal_paths_of_avro(schema),
        classification=grade,
    )
