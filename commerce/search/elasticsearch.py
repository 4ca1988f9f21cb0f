"""Catalog search in Elasticsearch, with the official async client.

Analysis: the standard tokenizer, lowercase and ASCII folding everywhere ("creme" finds
"Crème"), no stemming (as the PostgreSQL backend; brand names stay intact). Prefixes come
from edge n-grams (2-20) indexed on title, brand and tags and searched with the plain
analyzer; typos from ``fuzziness: AUTO`` (one edit from 3 letters, two from 6) with the first
letter fixed. Per word: exact, prefix or fuzzy must match; exact title hits weigh most.

One shard: a catalog of millions of products fits, and facet counts and scores are then exact
(terms aggregations and IDF are per shard). Replicas 0 by default (a single-node server would
stay yellow otherwise); pass ``replicas=1`` on a cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError, TransportError
from elasticsearch.helpers import async_bulk

from commerce.search.backend import (
    FACET_SIZE,
    OPTION_FACET_SIZE,
    PRICE_BUCKET_EDGES,
    RATING_THRESHOLDS,
    Facets,
    ProductDocument,
    SearchHit,
    SearchQuery,
    SearchResult,
    SearchSort,
    SearchUnavailable,
    decode_cursor,
    encode_cursor,
    price_buckets,
    ranked,
    rating_buckets,
    split_text,
)

BACKEND = "elasticsearch"
DEFAULT_INDEX = "emporium-products"
# option_pairs holds "size:M"; names cannot contain ':' (the API's option=size:M says so).
OPTION_SEPARATOR = ":"
# Enough (name, value) pairs that every option keeps its top OPTION_FACET_SIZE values.
OPTION_PAIRS_SIZE = 2_000

ANALYSIS: dict[str, Any] = {
    "filter": {"prefix_edge": {"type": "edge_ngram", "min_gram": 2, "max_gram": 20}},
    "analyzer": {
        "folded": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding"],
        },
        "folded_prefix": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "prefix_edge"],
        },
    },
}

_KEYWORD = {"type": "keyword"}
_SEARCHABLE_KEYWORD = {
    "type": "keyword",
    "fields": {
        "text": {"type": "text", "analyzer": "folded"},
        "prefix": {"type": "text", "analyzer": "folded_prefix", "search_analyzer": "folded"},
    },
}

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "product_id": _KEYWORD,
        "vendor_id": _KEYWORD,
        "vendor_slug": _KEYWORD,
        "category_id": _KEYWORD,
        "category_path": _KEYWORD,
        "category_ancestors": _KEYWORD,
        "brand": _SEARCHABLE_KEYWORD,
        "tags": _SEARCHABLE_KEYWORD,
        "title": {
            "type": "text",
            "analyzer": "folded",
            "fields": {
                "prefix": {
                    "type": "text",
                    "analyzer": "folded_prefix",
                    "search_analyzer": "folded",
                }
            },
        },
        "slug": {"type": "keyword", "index": False},
        "description": {"type": "text", "analyzer": "folded"},
        "price_min": {"type": "long"},
        "price_max": {"type": "long"},
        "currency": _KEYWORD,
        "rating_avg": {"type": "scaled_float", "scaling_factor": 100},
        "rating_count": {"type": "integer"},
        "in_stock": {"type": "boolean"},
        "option_pairs": _KEYWORD,
        "options": {"type": "object", "enabled": False},
        "attributes": {"type": "object", "enabled": False},
        "published_at": {"type": "date"},
    },
}

_EXACT_FIELDS = ["title^3", "brand.text^2", "tags.text^2", "description"]
_PREFIX_FIELDS = ["title.prefix^1.5", "brand.prefix", "tags.prefix"]

_SORTS: dict[SearchSort, list[dict[str, Any]]] = {
    SearchSort.RELEVANCE: [{"_score": "desc"}, {"product_id": "desc"}],
    SearchSort.NEWEST: [
        {"published_at": {"order": "desc", "missing": "_last"}},
        {"product_id": "desc"},
    ],
    SearchSort.PRICE_ASC: [{"price_min": "asc"}, {"product_id": "asc"}],
    SearchSort.PRICE_DESC: [{"price_min": "desc"}, {"product_id": "desc"}],
    SearchSort.RATING: [
        {"rating_avg": {"order": "desc", "missing": "_last"}},
        {"rating_count": "desc"},
        {"product_id": "desc"},
    ],
}


def _source(document: ProductDocument) -> dict[str, Any]:
    # Options also as "name:value" keywords: one terms filter and one aggregation cover them.
    return {
        **document.to_json(),
        "option_pairs": [
            f"{name}{OPTION_SEPARATOR}{value}"
            for name, values in document.options.items()
            for value in values
        ],
    }


def _word_clause(word: str) -> dict[str, Any]:
    """One search-box word: exact, as a prefix, or as a near miss (weakest).

    ``operator: and``: a word the analyzer splits ("t-shirt") needs all its pieces.
    """
    return {
        "bool": {
            "should": [
                {
                    "multi_match": {
                        "query": word,
                        "fields": _EXACT_FIELDS,
                        "operator": "and",
                        "boost": 2,
                    }
                },
                {"multi_match": {"query": word, "fields": _PREFIX_FIELDS, "operator": "and"}},
                {
                    "multi_match": {
                        "query": word,
                        "fields": _EXACT_FIELDS,
                        "fuzziness": "AUTO",
                        "prefix_length": 1,
                        "operator": "and",
                        "boost": 0.5,
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def build_query(query: SearchQuery) -> dict[str, Any]:
    """The bool query: words and phrases must match, filters filter (cached, no scoring)."""
    must: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    if query.text is not None:
        parts = split_text(query.text)
        must += [_word_clause(word) for word in parts.words]
        must += [
            {"multi_match": {"query": phrase, "fields": _EXACT_FIELDS, "type": "phrase"}}
            for phrase in parts.phrases
        ]
        must_not += [
            {"multi_match": {"query": word, "fields": _EXACT_FIELDS}} for word in parts.excluded
        ]
    filters: list[dict[str, Any]] = []
    if query.category_path:
        filters.append({"term": {"category_ancestors": query.category_path}})
    if query.brands:
        filters.append({"terms": {"brand": list(query.brands)}})
    if query.vendor_ids:
        filters.append({"terms": {"vendor_id": [str(v) for v in query.vendor_ids]}})
    if query.vendor_slugs:
        filters.append({"terms": {"vendor_slug": list(query.vendor_slugs)}})
    price: dict[str, int] = {}
    if query.price_min is not None:
        price["gte"] = query.price_min
    if query.price_max is not None:
        price["lte"] = query.price_max
    if price:
        filters.append({"range": {"price_min": price}})
    if query.min_rating is not None:
        filters.append({"range": {"rating_avg": {"gte": query.min_rating}}})
    if query.in_stock_only:
        filters.append({"term": {"in_stock": True}})
    for name, values in query.options.items():
        pairs = [f"{name}{OPTION_SEPARATOR}{value}" for value in values]
        filters.append({"terms": {"option_pairs": pairs}})
    if query.tags:
        filters.append({"terms": {"tags": list(query.tags)}})
    return {"bool": {"must": must, "must_not": must_not, "filter": filters}}


def _terms(field: str, size: int) -> dict[str, Any]:
    return {"terms": {"field": field, "size": size, "order": [{"_count": "desc"}, {"_key": "asc"}]}}


def build_aggregations() -> dict[str, Any]:
    lowers = (None, *PRICE_BUCKET_EDGES)
    uppers = (*PRICE_BUCKET_EDGES, None)
    price_ranges = [
        {k: v for k, v in (("from", lower), ("to", upper)) if v is not None}
        for lower, upper in zip(lowers, uppers, strict=True)
    ]
    return {
        "categories": _terms("category_ancestors", FACET_SIZE),
        "brands": _terms("brand", FACET_SIZE),
        "options": _terms("option_pairs", OPTION_PAIRS_SIZE),
        "prices": {"range": {"field": "price_min", "ranges": price_ranges}},
        "ratings": {
            "range": {
                "field": "rating_avg",
                "ranges": [{"from": threshold} for threshold in RATING_THRESHOLDS],
            }
        },
    }


class ElasticsearchSearch:
    """``SearchBackend`` on Elasticsearch 8/9.

    ``refresh``: make writes visible to search before ``index``/``delete`` return ("wait_for");
    the tests need it, the indexer does not (a second of delay is fine, and cheaper).
    """

    def __init__(
        self,
        url: str,
        index_name: str = DEFAULT_INDEX,
        *,
        refresh: bool | str = False,
        replicas: int = 0,
        request_timeout: float = 10.0,
    ) -> None:
        self.index_name = index_name
        self._refresh = refresh
        self._replicas = replicas
        self._client = AsyncElasticsearch(url, request_timeout=request_timeout)
        self._index_ready = False

    async def _ensure_index(self) -> None:
        if self._index_ready:
            return
        if not await self._client.indices.exists(index=self.index_name):
            await self._create_index()
        self._index_ready = True

    async def _create_index(self) -> None:
        await self._client.options(ignore_status=400).indices.create(
            index=self.index_name,
            settings={
                "number_of_shards": 1,
                "number_of_replicas": self._replicas,
                "analysis": ANALYSIS,
            },
            mappings=MAPPINGS,
        )

    async def index(self, documents: Sequence[ProductDocument]) -> None:
        if not documents:
            return
        await self._ensure_index()
        actions = [
            {
                "_op_type": "index",
                "_index": self.index_name,
                "_id": str(document.product_id),
                "_source": _source(document),
            }
            for document in documents
        ]
        await async_bulk(self._client, actions, refresh=self._refresh, chunk_size=1_000)

    async def delete(self, product_ids: Sequence[uuid.UUID]) -> None:
        if not product_ids:
            return
        await self._ensure_index()
        actions = [
            {"_op_type": "delete", "_index": self.index_name, "_id": str(product_id)}
            for product_id in product_ids
        ]
        # Deleting what is not there is fine: the outbox may name products never indexed.
        await async_bulk(self._client, actions, refresh=self._refresh, ignore_status=(404,))

    async def reset(self) -> None:
        await self._client.options(ignore_status=404).indices.delete(index=self.index_name)
        await self._create_index()
        self._index_ready = True

    async def drop(self) -> None:
        """Delete the index (tests clean up with it)."""
        await self._client.options(ignore_status=404).indices.delete(index=self.index_name)
        self._index_ready = False

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def close(self) -> None:
        await self._client.close()

    async def search(self, query: SearchQuery) -> SearchResult:
        sort = query.effective_sort
        sort_spec = _SORTS[sort]
        after = decode_cursor(BACKEND, query, size=len(sort_spec))
        body: dict[str, Any] = {
            "query": build_query(query),
            "sort": sort_spec,
            "size": query.page_size + 1,
            "track_total_hits": True,
            "source_excludes": ["description", "option_pairs", "category_ancestors"],
        }
        if after is not None:
            body["search_after"] = after
        elif query.offset:
            body["from_"] = query.offset
        if query.include_facets:
            body["aggs"] = build_aggregations()
        try:
            response = await self._client.search(index=self.index_name, **body)
        except NotFoundError:
            # Nothing indexed yet: an empty catalog, not an error.
            return _empty(query)
        except TransportError as error:
            raise SearchUnavailable(f"Elasticsearch: {type(error).__name__}") from error
        raw_hits = response["hits"]["hits"]
        more = len(raw_hits) > query.page_size
        raw_hits = raw_hits[: query.page_size]
        hits = tuple(_hit(raw, scored=sort == SearchSort.RELEVANCE) for raw in raw_hits)
        next_cursor = encode_cursor(BACKEND, query, raw_hits[-1]["sort"]) if more else None
        facets = _facets(response["aggregations"]) if query.include_facets else None
        return SearchResult(
            hits=hits,
            total=response["hits"]["total"]["value"],
            facets=facets,
            next_cursor=next_cursor,
        )


def _empty(query: SearchQuery) -> SearchResult:
    facets = None
    if query.include_facets:
        facets = Facets(
            categories={},
            brands={},
            prices=price_buckets([0] * (len(PRICE_BUCKET_EDGES) + 1)),
            ratings=rating_buckets([0] * len(RATING_THRESHOLDS)),
            options={},
        )
    return SearchResult(hits=(), total=0, facets=facets, next_cursor=None)


def _counts(aggregation: dict[str, Any]) -> dict[str, int]:
    return {str(bucket["key"]): bucket["doc_count"] for bucket in aggregation["buckets"]}


def _facets(aggregations: dict[str, Any]) -> Facets:
    options: dict[str, dict[str, int]] = {}
    for pair, count in _counts(aggregations["options"]).items():
        name, _, value = pair.partition(OPTION_SEPARATOR)
        options.setdefault(name, {})[value] = count
    return Facets(
        categories=ranked(_counts(aggregations["categories"]), FACET_SIZE),
        brands=ranked(_counts(aggregations["brands"]), FACET_SIZE),
        # Range buckets come back in the order they were asked for.
        prices=price_buckets([b["doc_count"] for b in aggregations["prices"]["buckets"]]),
        ratings=rating_buckets([b["doc_count"] for b in aggregations["ratings"]["buckets"]]),
        options={
            name: ranked(values, OPTION_FACET_SIZE) for name, values in sorted(options.items())
        },
    )


def _hit(raw: dict[str, Any], *, scored: bool) -> SearchHit:
    source = raw["_source"]
    published = source.get("published_at")
    rating = source.get("rating_avg")
    return SearchHit(
        product_id=uuid.UUID(source["product_id"]),
        slug=source["slug"],
        title=source["title"],
        brand=source.get("brand"),
        vendor_id=uuid.UUID(source["vendor_id"]),
        vendor_slug=source["vendor_slug"],
        category_path=source.get("category_path"),
        price_min=int(source["price_min"]),
        price_max=int(source["price_max"]),
        currency=source["currency"],
        rating_avg=float(rating) if rating is not None else None,
        rating_count=int(source["rating_count"]),
        in_stock=bool(source["in_stock"]),
        options={name: tuple(values) for name, values in (source.get("options") or {}).items()},
        published_at=datetime.fromisoformat(published) if published else None,
        score=float(raw["_score"]) if scored and raw.get("_score") is not None else None,
    )
