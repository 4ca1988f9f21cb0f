"""What every search backend offers, and the values that cross that line.

Two implementations answer the same contract (tests/contract/test_search_contract.py):
``PostgresSearch`` (full-text search in the database we already run) and
``ElasticsearchSearch`` (when ``ELASTICSEARCH_URL`` is set).

Semantics shared by both:
- Text: every word must match, as a whole word, as the start of a word ("meri" finds
  "merino") or, failing both, as a close misspelling ("mernio" finds "merino"). A title match
  ranks above a brand or tag match, which ranks above a description match. Accents fold
  ("creme" finds "Crème"). ``"quoted phrases"`` and ``-excluded`` words work too.
- Filters: a list means any of its values; different filters must all hold. ``options`` is
  ``{"size": ("M", "L"), "colour": ("black",)}``: (M or L) and black. The category filter takes
  the whole subtree. Prices are minor units compared with the product's lowest active variant
  price (its "from" price), as are the price sorts and buckets.
- Facets count the filtered set (every filter applied, the facet's own included).
- Paging is keyset: ``next_cursor`` continues after the last hit whatever was indexed in
  between (no duplicates, no gaps); ``offset`` (up to 10,000) jumps ahead on a first page.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from commerce.errors import DomainError

MAX_PAGE_SIZE = 100
# Elasticsearch's default max_result_window; deeper than this, use the cursor.
MAX_OFFSET = 10_000
MAX_TEXT_LENGTH = 200
# Fixed so that the storefront can label them and both backends agree: "under 10.00",
# "10.00-25.00", ..., "250.00 and over" (minor units of the product's currency).
PRICE_BUCKET_EDGES: tuple[int, ...] = (1_000, 2_500, 5_000, 10_000, 25_000)
# "4 stars and up", ...: each bucket includes the higher ones.
RATING_THRESHOLDS: tuple[int, ...] = (4, 3, 2, 1)
# How many values a facet lists at most (most frequent first).
FACET_SIZE = 100
OPTION_FACET_SIZE = 50


class InvalidSearch(DomainError):
    """A search request that cannot be answered as asked (a stale or foreign cursor, ...)."""

    status, code, title = 422, "invalid_search", "The search request is not valid"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class SearchUnavailable(DomainError):
    """The search server cannot be reached; the storefront may retry or fall back."""

    status, code, title = 503, "search_unavailable", "Search is unavailable"


class SearchSort(enum.StrEnum):
    RELEVANCE = "relevance"  # without text: newest first
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    RATING = "rating"  # best average first, more reviews first among equals; unrated last
    NEWEST = "newest"


@dataclass(frozen=True)
class ProductDocument:
    """A product as search sees it: built from the catalog by ``commerce.search.documents``."""

    product_id: uuid.UUID
    vendor_id: uuid.UUID
    vendor_slug: str
    category_id: uuid.UUID | None
    category_path: str | None
    brand: str | None
    tags: tuple[str, ...]
    title: str
    slug: str
    description: str
    price_min: int
    price_max: int
    currency: str
    rating_avg: float | None
    rating_count: int
    in_stock: bool
    # Every value each option takes over the active variants, sorted.
    options: Mapping[str, tuple[str, ...]]
    attributes: Mapping[str, str]
    published_at: datetime | None

    @property
    def category_ancestors(self) -> list[str]:
        """The category's path and each ancestor's: what the subtree filter matches."""
        if not self.category_path:
            return []
        parts = self.category_path.split("/")
        return ["/".join(parts[: i + 1]) for i in range(len(parts))]

    def to_json(self) -> dict[str, Any]:
        """The document as JSON values, the same for every backend."""
        return {
            "product_id": str(self.product_id),
            "vendor_id": str(self.vendor_id),
            "vendor_slug": self.vendor_slug,
            "category_id": str(self.category_id) if self.category_id else None,
            "category_path": self.category_path,
            "category_ancestors": self.category_ancestors,
            "brand": self.brand,
            "tags": list(self.tags),
            "title": self.title,
            "slug": self.slug,
            "description": self.description,
            "price_min": self.price_min,
            "price_max": self.price_max,
            "currency": self.currency,
            "rating_avg": self.rating_avg,
            "rating_count": self.rating_count,
            "in_stock": self.in_stock,
            "options": {name: list(values) for name, values in self.options.items()},
            "attributes": dict(self.attributes),
            "published_at": self.published_at.isoformat() if self.published_at else None,
        }


@dataclass(frozen=True)
class SearchQuery:
    """One search request. Invalid combinations raise ``InvalidSearch`` on construction."""

    text: str | None = None
    category_path: str | None = None
    brands: tuple[str, ...] = ()
    vendor_ids: tuple[uuid.UUID, ...] = ()
    vendor_slugs: tuple[str, ...] = ()
    price_min: int | None = None
    price_max: int | None = None
    min_rating: float | None = None
    in_stock_only: bool = False
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    sort: SearchSort = SearchSort.RELEVANCE
    page_size: int = 24
    cursor: str | None = None
    offset: int = 0
    include_facets: bool = True

    def __post_init__(self) -> None:
        text = (self.text or "").strip() or None
        if text is not None and len(text) > MAX_TEXT_LENGTH:
            raise InvalidSearch(f"At most {MAX_TEXT_LENGTH} characters.", field="q")
        if text is not None and any(ord(ch) < 32 for ch in text):
            raise InvalidSearch("Control characters are not allowed.", field="q")
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "category_path", (self.category_path or "").strip("/") or None)
        object.__setattr__(self, "sort", SearchSort(self.sort))
        for name in ("brands", "vendor_ids", "vendor_slugs", "tags"):
            object.__setattr__(self, name, tuple(dict.fromkeys(getattr(self, name))))
        options = {
            name: tuple(sorted(set(values))) for name, values in self.options.items() if values
        }
        object.__setattr__(self, "options", dict(sorted(options.items())))
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise InvalidSearch(f"Between 1 and {MAX_PAGE_SIZE}.", field="limit")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise InvalidSearch(
                f"Between 0 and {MAX_OFFSET}; page on with the cursor.", field="offset"
            )
        if self.offset and self.cursor:
            raise InvalidSearch("Give either a cursor or an offset, not both.", field="offset")
        for name in ("price_min", "price_max"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidSearch("Must not be negative.", field=name)
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise InvalidSearch("price_min is above price_max.", field="price_min")
        if self.min_rating is not None and not 0 <= self.min_rating <= 5:
            raise InvalidSearch("Between 0 and 5.", field="min_rating")

    @property
    def effective_sort(self) -> SearchSort:
        """Relevance needs words to be relevant to; without text it means newest first."""
        if self.sort == SearchSort.RELEVANCE and self.text is None:
            return SearchSort.NEWEST
        return self.sort

    def fingerprint(self) -> str:
        """What a cursor is bound to: the same words, filters and sort (not the page)."""
        identity = [
            self.text,
            self.category_path,
            self.brands,
            [str(v) for v in self.vendor_ids],
            self.vendor_slugs,
            self.price_min,
            self.price_max,
            self.min_rating,
            self.in_stock_only,
            self.options,
            self.tags,
            str(self.sort),
        ]
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).digest()
        return base64.urlsafe_b64encode(digest[:9]).decode()


@dataclass(frozen=True)
class SearchHit:
    product_id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    vendor_id: uuid.UUID
    vendor_slug: str
    category_path: str | None
    price_min: int
    price_max: int
    currency: str
    rating_avg: float | None
    rating_count: int
    in_stock: bool
    options: Mapping[str, tuple[str, ...]]
    published_at: datetime | None
    # Backend-specific relevance score (None when not sorting by relevance); compare only
    # within one result.
    score: float | None = None


@dataclass(frozen=True)
class PriceBucket:
    """Products whose "from" price is in [lower, upper); upper None: and above."""

    lower: int
    upper: int | None
    count: int


@dataclass(frozen=True)
class RatingBucket:
    """Products rated ``min_rating`` stars or more on average."""

    min_rating: int
    count: int


@dataclass(frozen=True)
class Facets:
    # Path -> products in that category's subtree ("clothing" counts "clothing/t-shirts" too).
    categories: Mapping[str, int]
    brands: Mapping[str, int]
    prices: tuple[PriceBucket, ...]
    ratings: tuple[RatingBucket, ...]
    # Option name -> value -> products having a variant with it.
    options: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    total: int
    facets: Facets | None
    next_cursor: str | None


class SearchBackend(Protocol):
    """Where product documents are indexed and searched."""

    async def index(self, documents: Sequence[ProductDocument]) -> None:
        """Add or replace these documents (idempotent)."""

    async def delete(self, product_ids: Sequence[uuid.UUID]) -> None:
        """Remove these products; ids not in the index are ignored."""

    async def search(self, query: SearchQuery) -> SearchResult:
        """Hits, total and facets for the query."""
        ...

    async def reset(self) -> None:
        """Empty the index (and create it as currently defined), before a full reindex."""

    async def close(self) -> None:
        """Release connections (the Elasticsearch client's pool)."""


def price_buckets(counts: Sequence[int]) -> tuple[PriceBucket, ...]:
    """The fixed price buckets labelled with their edges, from counts in edge order."""
    lowers = (0, *PRICE_BUCKET_EDGES)
    uppers: tuple[int | None, ...] = (*PRICE_BUCKET_EDGES, None)
    return tuple(
        PriceBucket(lower, upper, count)
        for lower, upper, count in zip(lowers, uppers, counts, strict=True)
    )


def rating_buckets(counts: Sequence[int]) -> tuple[RatingBucket, ...]:
    return tuple(
        RatingBucket(threshold, count)
        for threshold, count in zip(RATING_THRESHOLDS, counts, strict=True)
    )


def ranked(counts: Mapping[str, int], limit: int) -> dict[str, int]:
    """Most frequent first, then by value, at most ``limit``: the one facet order."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ordered[:limit])


def encode_cursor(backend: str, query: SearchQuery, after: Sequence[Any]) -> str:
    """An opaque cursor: which backend, for which query, after which sort values."""
    payload = {"b": backend, "f": query.fingerprint(), "a": list(after)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(backend: str, query: SearchQuery, *, size: int) -> list[Any] | None:
    """The sort values a cursor continues after, or None without one.

    A cursor from another query (other words, filters or sort) or another backend is refused:
    continuing it would silently skip or repeat products.
    """
    if query.cursor is None:
        return None
    try:
        padded = query.cursor + "=" * (-len(query.cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = payload["a"]
        valid = payload["b"] == backend and isinstance(after, list) and len(after) == size
    except (ValueError, KeyError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidSearch("Not a cursor this search gave out.", field="cursor")
    if payload["f"] != query.fingerprint():
        raise InvalidSearch(
            "This cursor belongs to another search (other words, filters or sort); "
            "start again without it.",
            field="cursor",
        )
    return after


@dataclass(frozen=True)
class TextParts:
    """Free text split as the storefront's search box means it."""

    words: tuple[str, ...]
    phrases: tuple[str, ...]
    excluded: tuple[str, ...]


_TEXT_TOKEN = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')


def split_text(text: str) -> TextParts:
    """``merino "crew neck" -wool`` -> words (merino), phrases (crew neck), excluded (wool).

    The Elasticsearch backend builds its query from this; PostgreSQL's websearch_to_tsquery
    reads the same syntax itself.
    """
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    for match in _TEXT_TOKEN.finditer(text):
        negated = bool(match.group(1) or match.group(3))
        phrase, word = match.group(2), match.group(4)
        value = (phrase if phrase is not None else word).strip()
        if not value or value == "-":
            continue
        if negated:
            excluded.append(value)
        elif phrase is not None:
            phrases.append(value)
        else:
            words.append(value)
    return TextParts(tuple(words), tuple(phrases), tuple(excluded))
