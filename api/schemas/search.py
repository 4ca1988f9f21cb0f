"""Request and response schemas of ``api/routes/search.py``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.money import Money
from api.schemas.pagination import Page
from commerce.search.backend import (
    Facets,
    SearchHit,
    SearchResult,
)


class SearchHitRead(BaseModel):
    product_id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    vendor_id: uuid.UUID
    vendor_slug: str
    category_path: str | None
    price_min: Money = Field(description="The cheapest active variant's price")
    price_max: Money = Field(description="The dearest active variant's price")
    rating_avg: float | None
    rating_count: int
    in_stock: bool
    options: dict[str, list[str]] = Field(description='e.g. {"size": ["M", "L"]}')
    published_at: datetime | None
    score: float | None = Field(description="Relevance, only when sorting by relevance")

    @classmethod
    def from_domain(cls, hit: SearchHit) -> SearchHitRead:
        plain = {"price_min", "price_max", "options"}
        return cls(
            **{name: getattr(hit, name) for name in cls.model_fields if name not in plain},
            price_min=Money.of(hit.price_min, hit.currency),
            price_max=Money.of(hit.price_max, hit.currency),
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


class SearchPage(Page[SearchHitRead]):
    """A page of hits, with the count and facets of every match."""

    total: int = Field(description="Products matching, over all pages")
    facets: FacetsRead | None

    @classmethod
    def from_domain(cls, result: SearchResult) -> SearchPage:
        return cls(
            items=[SearchHitRead.from_domain(hit) for hit in result.hits],
            total=result.total,
            facets=FacetsRead.from_domain(result.facets) if result.facets else None,
            next_cursor=result.next_cursor,
        )
