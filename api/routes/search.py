"""Catalog search for the storefront: words, filters, sorts, facets and keyset paging."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, StringConstraints

from api.access import Public
from commerce.search.backend import (
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    MAX_TEXT_LENGTH,
    Facets,
    InvalidSearch,
    SearchBackend,
    SearchHit,
    SearchQuery,
    SearchResult,
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


class SearchHitRead(BaseModel):
    product_id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    vendor_id: uuid.UUID
    vendor_slug: str
    category_path: str | None
    price_min: int = Field(description="Cheapest active variant, minor units of `currency`")
    price_max: int
    currency: str
    rating_avg: float | None
    rating_count: int
    in_stock: bool
    options: dict[str, list[str]] = Field(description='e.g. {"size": ["M", "L"]}')
    published_at: datetime | None
    score: float | None = Field(description="Relevance, only when sorting by relevance")

    @classmethod
    def from_domain(cls, hit: SearchHit) -> SearchHitRead:
        return cls(
            **{name: getattr(hit, name) for name in cls.model_fields if name != "options"},
            options={name: list(values) for name, values in hit.options.items()},
        )


class FacetValue(BaseModel):
    value: str
    count: int


def _values(counts: Mapping[str, int]) -> list[FacetValue]:
    return [FacetValue(value=value, count=count) for value, count in counts.items()]


class OptionFacetRead(BaseModel):
    name: str
    values: list[FacetValue]


class PriceBucketRead(BaseModel):
    min: int = Field(description="Inclusive, minor units")
    max: int | None = Field(description="Exclusive; null: and above")
    count: int


class RatingBucketRead(BaseModel):
    min_rating: int = Field(description="Average rating at least this (4: '4 stars & up')")
    count: int


class FacetsRead(BaseModel):
    """Counts over every product matching the whole request (filters included)."""

    categories: list[FacetValue] = Field(
        description="Category path -> products in its subtree, most first"
    )
    brands: list[FacetValue]
    prices: list[PriceBucketRead]
    ratings: list[RatingBucketRead]
    options: list[OptionFacetRead]

    @classmethod
    def from_domain(cls, facets: Facets) -> FacetsRead:
        return cls(
            categories=_values(facets.categories),
            brands=_values(facets.brands),
            prices=[
                PriceBucketRead(min=b.lower, max=b.upper, count=b.count) for b in facets.prices
            ],
            ratings=[
                RatingBucketRead(min_rating=b.min_rating, count=b.count) for b in facets.ratings
            ],
            options=[
                OptionFacetRead(name=name, values=_values(counts))
                for name, counts in facets.options.items()
            ],
        )


class SearchResultRead(BaseModel):
    hits: list[SearchHitRead]
    total: int = Field(description="Products matching, over all pages")
    facets: FacetsRead | None
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")

    @classmethod
    def from_domain(cls, result: SearchResult) -> SearchResultRead:
        return cls(
            hits=[SearchHitRead.from_domain(hit) for hit in result.hits],
            total=result.total,
            facets=FacetsRead.from_domain(result.facets) if result.facets else None,
            next_cursor=result.next_cursor,
        )


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
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 24,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    facets: Annotated[bool, Query(description="Compute facets (skip them on later pages)")] = True,
) -> SearchResultRead:
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
    return SearchResultRead.from_domain(result)
