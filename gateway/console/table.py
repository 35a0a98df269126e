"""What the console's indexes share: an SQLite table in this process's memory, read a page
at a time, newest first."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    rows: tuple[R, ...]
    total: int
    number: int  # from 1
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


class MemoryTable:
    """`table` made by `schema`, its `columns` read in `order`."""

    __slots__ = ("_columns", "_order", "_table", "db")

    def __init__(self, schema: str, table: str, columns: str, order: str) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=True)
        self.db.executescript(schema)
        self._table = table
        self._columns = columns
        self._order = order

    def close(self) -> None:
        self.db.close()

    def page(self, where: str, args: tuple[str, ...], number: int, size: int,
             row: Callable[[tuple[Any, ...]], R]) -> Page[R]:
        """Page `number` (from 1; past the last: the last) of the rows `where` (SQL after
        WHERE, with `args`; empty: all) selects."""
        condition = f" WHERE {where}" if where else ""
        total = self.db.execute(f"SELECT COUNT(*) FROM {self._table}{condition}",
                                args).fetchone()[0]
        number = max(1, min(number, max(1, -(-total // size))))
        rows = self.db.execute(
            f"SELECT {self._columns} FROM {self._table}{condition} ORDER BY {self._order} "
            "LIMIT ? OFFSET ?", (*args, size, (number - 1) * size))
        return Page(tuple(row(values) for values in rows), total, number, size)


def page_of(items: Sequence[R], number: int, size: int) -> Page[R]:
    """Page `number` (from 1; past the last: the last) of a list held in memory."""
    total = len(items)
    number = max(1, min(number, max(1, -(-total // size))))
    return Page(tuple(items[(number - 1) * size : number * size]), total, number, size)
