"""Catalog search for the storefront: words, filters, sorts, facets and keyset paging."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints

from api.access import Public
from api.schemas.pagination import PageCursor, PageLimit
from api.schemas.search import (
    SearchPage,
)
from commerce.search.backend import (
    MAX_OFFSET,
    MAX_TEXT_LENGTH,
    InvalidSearch,
    SearchBackend,
    SearchQuery,
    SearchSort,
    SearchUnavailable,
)

router = APIRouter(tags=["search"], dependencies=[Public])

OptionFilter = Annotated[str, StringConstraints(pattern=r"^[^:]+:.+$", max_length=200)]


def _backend(request: Request) -> SearchBackend:
    backend: SearchBackend | None = getattr(request.app.state, "search", None)
    if backend is None:
        raise SearchUnavailable("No search backend is configured in this process.")
    return backend


SearchBackendDep = Annotated[SearchBackend, Depends(_backend)]


def _options(values: list[str]) -> dict[str, tuple[str, ...]]:
    options: dict[str, list[str]] = {}
    for value in values:
        name, _, choice = value.partition(":")
        options.setdefault(name.strip(), []).append(choice.strip())
    return {name: tuple(choices) for name, choices in options.items()}


@router.get("/search", summary="Search the catalog")
async def search(
    backend: SearchBackendDep,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_TEXT_LENGTH,
            description='Words; "quoted phrase", -excluded. Prefixes and small typos match.',
        ),
    ] = None,
    category: Annotated[
        str | None, Query(max_length=800, description="Category path; its subtree is included")
    ] = None,
    brand: Annotated[list[str], Query(description="Any of these brands (repeat)")] = [],  # noqa: B006
    vendor: Annotated[list[str], Query(description="Any of these vendor slugs (repeat)")] = [],  # noqa: B006
    vendor_id: Annotated[list[uuid.UUID], Query(description="Any of these vendors")] = [],  # noqa: B006
    price_min: Annotated[int | None, Query(ge=0, description="Minor units, inclusive")] = None,
    price_max: Annotated[int | None, Query(ge=0, description="Minor units, inclusive")] = None,
    min_rating: Annotated[float | None, Query(ge=0, le=5)] = None,
    in_stock: Annotated[bool, Query(description="Only products available now")] = False,
    option: Annotated[
        list[OptionFilter],
        Query(description="`name:value`, repeat: values of one name are OR'ed, names AND'ed"),
    ] = [],  # noqa: B006
    tag: Annotated[list[str], Query(description="Any of these tags (repeat)")] = [],  # noqa: B006
    sort: SearchSort = SearchSort.RELEVANCE,
    limit: PageLimit = 24,
    cursor: PageCursor = None,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description="Skip this many hits to show a numbered results page (not with `cursor`)",
        ),
    ] = 0,
    facets: Annotated[bool, Query(description="Compute facets (skip them on later pages)")] = True,
) -> SearchPage:
    try:
        query = SearchQuery(
            text=q,
            category_path=category,
            brands=tuple(brand),
            vendor_ids=tuple(vendor_id),
            vendor_slugs=tuple(vendor),
            price_min=price_min,
            price_max=price_max,
            min_rating=min_rating,
            in_stock_only=in_stock,
            options=_options(option),
            tags=tuple(tag),
            sort=sort,
            page_size=limit,
            cursor=cursor,
            offset=offset,
            include_facets=facets,
        )
        result = await backend.search(query)
    except InvalidSearch as error:
        # Answered like any other bad parameter: a validation_error naming the parameter.
        raise RequestValidationError(
            [{"loc": ("query", error.field), "msg": error.detail, "type": "value_error"}]
        ) from None
    return SearchPage.from_domain(result)
