"""The one shape of every list the API answers (README, "The API's conventions").

Every list is ``{"items": [...], "next_cursor": ...}``. A client asks for the next page by
passing ``next_cursor`` back as ``cursor`` with the same filters, until it is ``null``. Lists
whose length the server bounds (a user's addresses, a vendor's warehouses) use the same shape
and come whole, with ``next_cursor`` always ``null``; a client that follows cursors needs no
special case for them. Some lists carry facts about the whole list next to ``items``
(``total`` and ``facets`` of a search, ``balances`` of a ledger).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Generic, Self, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from core.pagination import MAX_CURSOR_LENGTH

T = TypeVar("T")

#: The largest page any list gives.
MAX_PAGE_SIZE = 100

#: The ``limit`` query parameter of every paged list; each route gives its default.
PageLimit = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}")
]
#: The ``cursor`` query parameter of every paged list.
PageCursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="`next_cursor` of the previous page, unchanged; omit for the first page",
    ),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; `null` on the "
        "last page"
    )

    @classmethod
    def whole(cls, items: Iterable[T]) -> Self:
        """A list the server bounds, given in one page."""
        return cls(items=list(items), next_cursor=None)
