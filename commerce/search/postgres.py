"""Catalog search in PostgreSQL: full text (tsvector) with prefixes and typo correction (pg_trgm).

Documents live in ``search_documents``; the words they contain in ``search_terms``.

Text: ``websearch_to_tsquery('simple', unaccent(text))`` reads the search box's syntax (quoted
phrases, ``-word``, ``or``). Each positive word of it then also matches as a prefix
(``'meri':*``), and a word that is not the start of any indexed word is widened with up to
three nearest indexed words by trigram similarity (``mernio`` -> ``'mernio':* | 'merino'``).

Why 'simple' and not 'english': vendors write titles in several languages and brand names
must not be stemmed ("Uniqlo", "Levi's"); prefix matching covers most inflections ("shirt"
finds "shirts"), and the Elasticsearch backend folds the same way (lowercase + ASCII folding,
no stemming), so both answer alike. unaccent makes "creme" find "Crème".

Why correct words against a vocabulary rather than compare the query with whole titles: a
six-letter word scores about 0.1 against a forty-character title, and word_similarity at a
threshold low enough for "mernio" (0.43) also matches every word starting "mer". Against the
vocabulary, similarity("mernio", "merino") is 0.27, so the threshold is 0.25, limited to the
three nearest words sharing the first letter, and only for words of three or more letters
that are not known prefixes: correct words never pull in look-alikes.

Paging is keyset (``(sort key, product_id)`` after the last hit): stable while documents
are indexed between two pages, and as cheap on page 50 as on page 1. Facets need the whole
filtered set anyway, so the matches are materialised once and the page, the total and every
facet are computed from them in the same statement.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
    decode_cursor,
    encode_cursor,
    price_buckets,
    ranked,
    rating_buckets,
)

BACKEND = "postgres"
TYPO_SIMILARITY = 0.25
TYPO_CANDIDATES = 3
# Shorter words are not corrected: one changed letter is most of their trigrams.
TYPO_MIN_LENGTH = 3

# A lexeme in tsquery text output: 'word', quotes inside doubled.
_LEXEME = re.compile(r"(!?)'((?:[^']|'')+)'")

_UPSERT = text(
    """
    WITH rows AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            product_id uuid, vendor_id uuid, vendor_slug text, category_id uuid,
            category_path text, category_ancestors text[], brand text, tags text[],
            title text, slug text, description text, price_min bigint, price_max bigint,
            currency text, rating_avg numeric, rating_count integer, in_stock boolean,
            options jsonb, attributes jsonb, published_at timestamptz)
    ),
    upserted AS (
        INSERT INTO search_documents AS d (
            product_id, vendor_id, vendor_slug, category_id, category_path,
            category_ancestors, brand, tags, title, slug, price_min, price_max, currency,
            rating_avg, rating_count, in_stock, options, attributes, published_at,
            search_vector, indexed_at)
        SELECT product_id, vendor_id, vendor_slug, category_id, category_path,
            category_ancestors, brand, tags, title, slug, price_min, price_max, currency,
            rating_avg, rating_count, in_stock, options, attributes, published_at,
            setweight(to_tsvector('simple', unaccent(title)), 'A')
            || setweight(to_tsvector('simple', unaccent(
                concat_ws(' ', brand, array_to_string(tags, ' ')))), 'B')
            || setweight(to_tsvector('simple', unaccent(description)), 'C'),
            clock_timestamp()
        FROM rows
        -- One lock order for every writer: concurrent batches cannot deadlock.
        ORDER BY product_id
        ON CONFLICT (product_id) DO UPDATE SET
            vendor_id = EXCLUDED.vendor_id, vendor_slug = EXCLUDED.vendor_slug,
            category_id = EXCLUDED.category_id, category_path = EXCLUDED.category_path,
            category_ancestors = EXCLUDED.category_ancestors, brand = EXCLUDED.brand,
            tags = EXCLUDED.tags, title = EXCLUDED.title, slug = EXCLUDED.slug,
            price_min = EXCLUDED.price_min, price_max = EXCLUDED.price_max,
            currency = EXCLUDED.currency, rating_avg = EXCLUDED.rating_avg,
            rating_count = EXCLUDED.rating_count, in_stock = EXCLUDED.in_stock,
            options = EXCLUDED.options, attributes = EXCLUDED.attributes,
            published_at = EXCLUDED.published_at, search_vector = EXCLUDED.search_vector,
            indexed_at = EXCLUDED.indexed_at
        RETURNING d.search_vector
    )
    INSERT INTO search_terms (term)
    SELECT DISTINCT term
    FROM upserted, unnest(tsvector_to_array(upserted.search_vector)) AS term
    WHERE length(term) BETWEEN 3 AND 40 AND term !~ '^[0-9.,/-]+$'
    ORDER BY term
    ON CONFLICT DO NOTHING
    """
)

# One row per distinct word of the query: is it the start of a known word, and if not, which
# known words is it closest to. The tsquery text comes back on every row.
_ANALYSE = text(
    """
    WITH q AS (SELECT websearch_to_tsquery('simple', unaccent(:text))::text AS tsquery),
    lexemes AS (
        SELECT DISTINCT m[1] AS lexeme
        FROM q, regexp_matches(q.tsquery, :lexeme_pattern, 'g') AS m
    )
    SELECT q.tsquery, l.lexeme,
        length(l.lexeme) >= :min_length AND NOT EXISTS (
            SELECT 1 FROM search_terms t
            WHERE t.term LIKE replace(replace(replace(l.lexeme, '\\', '\\\\'), '%', '\\%'),
                                      '_', '\\_') || '%'
        ) AS unknown,
        ARRAY(
            SELECT c.term FROM (
                SELECT t.term FROM search_terms t ORDER BY t.term <-> l.lexeme LIMIT 10
            ) AS c
            WHERE left(c.term, 1) = left(l.lexeme, 1)
                AND similarity(c.term, l.lexeme) >= :similarity
            ORDER BY similarity(c.term, l.lexeme) DESC, c.term
            LIMIT :candidates
        ) AS corrections
    FROM q, lexemes AS l
    """
)


@dataclass(frozen=True)
class _SortKey:
    expression: str
    sql_type: str


# Sort keys, most significant first; product_id breaks ties so the order is total (keyset
# paging needs that). All keys of one sort go the same direction, so one row comparison
# `(k1, k2, product_id) < (...)` continues after the cursor.
_SORTS: dict[SearchSort, tuple[tuple[_SortKey, ...], str]] = {
    SearchSort.RELEVANCE: ((_SortKey("rank", "float8"),), "DESC"),
    SearchSort.NEWEST: (
        (_SortKey("coalesce(published_at, 'epoch'::timestamptz)", "timestamptz"),),
        "DESC",
    ),
    SearchSort.PRICE_ASC: ((_SortKey("price_min", "bigint"),), "ASC"),
    SearchSort.PRICE_DESC: ((_SortKey("price_min", "bigint"),), "DESC"),
    SearchSort.RATING: (
        (_SortKey("coalesce(rating_avg, 0)", "numeric"), _SortKey("rating_count", "integer")),
        "DESC",
    ),
}

# Only what facets and sort keys read: the set can be the whole catalog. The page's rows are
# joined back to search_documents for display.
_MATCHED_COLUMNS = (
    "product_id, brand, category_ancestors, price_min, rating_avg, rating_count, options, "
    "published_at"
)


def _quote_lexeme(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _widen(tsquery: str, unknown: dict[str, list[str]]) -> str:
    """Every positive lexeme also as a prefix; unknown ones OR'ed with their corrections.

    Negated lexemes stay exact: ``-wool`` excludes wool, not every word starting "wool".
    """

    def replace(match: re.Match[str]) -> str:
        negation, lexeme = match.group(1), match.group(2)
        if negation:
            return match.group(0)
        widened = f"'{lexeme}':*"
        corrections = unknown.get(lexeme)
        if corrections:
            alternatives = " | ".join(_quote_lexeme(term) for term in corrections)
            widened = f"( {widened} | {alternatives} )"
        return widened

    return _LEXEME.sub(replace, tsquery)


class PostgresSearch:
    """``SearchBackend`` on the application's own PostgreSQL."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def index(self, documents: Sequence[ProductDocument]) -> None:
        # Last one wins within a batch (an upsert may not touch one row twice).
        unique = {document.product_id: document for document in documents}
        if not unique:
            return
        rows = json.dumps([document.to_json() for document in unique.values()])
        async with self._sessionmaker.begin() as session:
            await session.execute(_UPSERT, {"rows": rows})

    async def delete(self, product_ids: Sequence[uuid.UUID]) -> None:
        if not product_ids:
            return
        async with self._sessionmaker.begin() as session:
            await session.execute(
                text("DELETE FROM search_documents WHERE product_id = ANY(:ids)"),
                {"ids": list(product_ids)},
            )

    async def reset(self) -> None:
        async with self._sessionmaker.begin() as session:
            await session.execute(text("TRUNCATE search_documents, search_terms"))

    async def close(self) -> None:
        """Nothing of its own to release: the sessionmaker's engine belongs to the caller."""

    async def search(self, query: SearchQuery) -> SearchResult:
        sort = query.effective_sort
        keys, direction = _SORTS[sort]
        after = decode_cursor(BACKEND, query, size=len(keys) + 1)
        async with self._sessionmaker() as session:
            # The planner prices the set-returning functions of the facets (jsonb_each and
            # friends, 100 rows each by default) so high that it JIT-compiles the statement:
            # ~0.8 s of compiling for a query that runs in milliseconds.
            await session.execute(text("SET LOCAL jit = off"))
            params: dict[str, Any] = {}
            conditions: list[str] = []
            rank = "0::float8"
            if query.text is not None:
                full, exact = await self._text_query(session, query.text)
                if full is None:
                    if sort == SearchSort.RELEVANCE:
                        # Nothing searchable in the text (punctuation only): as if absent.
                        sort = SearchSort.NEWEST
                        keys, direction = _SORTS[sort]
                else:
                    params["full_query"], params["exact_query"] = full, exact
                    conditions.append("d.search_vector @@ CAST(:full_query AS tsquery)")
                    # The exact words count twice: "merino" ranks merino above merinos.
                    rank = (
                        "(ts_rank(d.search_vector, CAST(:full_query AS tsquery)) "
                        "+ ts_rank(d.search_vector, CAST(:exact_query AS tsquery)))::float8"
                    )
            conditions += _filters(query, params)
            sql = _search_sql(
                conditions=conditions,
                rank=rank,
                keys=keys,
                direction=direction,
                after=after,
                params=params,
                query=query,
            )
            row = (await session.execute(text(sql), params)).one()
        hits_data = row.hits or []
        more = len(hits_data) > query.page_size
        hits_data = hits_data[: query.page_size]
        hits = tuple(_hit(data, scored=sort == SearchSort.RELEVANCE) for data in hits_data)
        next_cursor = (
            encode_cursor(BACKEND, query, hits_data[-1]["after"]) if more and hits_data else None
        )
        facets = None
        if query.include_facets:
            facets = Facets(
                categories=ranked(row.categories or {}, FACET_SIZE),
                brands=ranked(row.brands or {}, FACET_SIZE),
                prices=price_buckets(row.prices),
                ratings=rating_buckets(row.ratings),
                options={
                    name: ranked(values, OPTION_FACET_SIZE)
                    for name, values in sorted((row.options or {}).items())
                },
            )
        return SearchResult(hits=hits, total=row.total, facets=facets, next_cursor=next_cursor)

    async def _text_query(self, session: AsyncSession, text_: str) -> tuple[str | None, str]:
        """The widened tsquery (prefixes, corrections) and the exact one, as tsquery text."""
        rows = (
            await session.execute(
                _ANALYSE,
                {
                    "text": text_,
                    "lexeme_pattern": _LEXEME.pattern.replace("(!?)", ""),
                    "min_length": TYPO_MIN_LENGTH,
                    "similarity": TYPO_SIMILARITY,
                    "candidates": TYPO_CANDIDATES,
                },
            )
        ).all()
        if not rows:
            return None, ""
        exact = rows[0].tsquery
        unknown = {row.lexeme: list(row.corrections) for row in rows if row.unknown}
        return _widen(exact, unknown), exact


def _filters(query: SearchQuery, params: dict[str, Any]) -> list[str]:
    """SQL conditions for the query's filters; values go into ``params``, never the text."""
    conditions: list[str] = []
    if query.category_path:
        params["category"] = [query.category_path]
        conditions.append("d.category_ancestors @> CAST(:category AS text[])")
    if query.brands:
        params["brands"] = list(query.brands)
        conditions.append("d.brand = ANY(:brands)")
    if query.vendor_ids:
        params["vendor_ids"] = list(query.vendor_ids)
        conditions.append("d.vendor_id = ANY(:vendor_ids)")
    if query.vendor_slugs:
        params["vendor_slugs"] = list(query.vendor_slugs)
        conditions.append("d.vendor_slug = ANY(:vendor_slugs)")
    if query.price_min is not None:
        params["price_min"] = query.price_min
        conditions.append("d.price_min >= :price_min")
    if query.price_max is not None:
        params["price_max"] = query.price_max
        conditions.append("d.price_min <= :price_max")
    if query.min_rating is not None:
        params["min_rating"] = query.min_rating
        conditions.append("d.rating_avg >= :min_rating")
    if query.in_stock_only:
        conditions.append("d.in_stock")
    for i, (name, values) in enumerate(query.options.items()):
        # One containment test per value, OR'ed: each is answered by the jsonb_path_ops index.
        alternatives = []
        for j, value in enumerate(values):
            params[f"option_{i}_{j}"] = json.dumps({name: [value]})
            alternatives.append(f"d.options @> CAST(:option_{i}_{j} AS jsonb)")
        conditions.append("(" + " OR ".join(alternatives) + ")")
    if query.tags:
        params["tags"] = list(query.tags)
        conditions.append("d.tags && CAST(:tags AS text[])")
    return conditions


def _search_sql(
    *,
    conditions: list[str],
    rank: str,
    keys: tuple[_SortKey, ...],
    direction: str,
    after: list[Any] | None,
    params: dict[str, Any],
    query: SearchQuery,
) -> str:
    """The one statement answering a search: page, total and facets over the matches.

    Assembled only from the fixed fragments above; every value travels as a parameter.
    """
    where = " AND ".join(conditions) or "TRUE"
    key_columns = ", ".join(f"{key.expression} AS k{i}" for i, key in enumerate(keys))
    key_names = [f"k{i}" for i in range(len(keys))] + ["product_id"]
    order = ", ".join(f"{name} {direction}" for name in key_names)
    keyset = "TRUE"
    if after is not None:
        types = [key.sql_type for key in keys] + ["uuid"]
        for i, value in enumerate(after):
            params[f"after_{i}"] = str(value)
        bounds = ", ".join(f"CAST(:after_{i} AS {t})" for i, t in enumerate(types))
        comparison = "<" if direction == "DESC" else ">"
        keyset = f"({', '.join(key_names)}) {comparison} ({bounds})"
    params["limit"] = query.page_size + 1
    params["offset"] = query.offset
    after_values = ", ".join(f"page.{name}::text" for name in key_names)
    # Only fixed fragments and integers are formatted in; values are bound parameters.
    parts = [
        f"""
        WITH matched AS MATERIALIZED (
            SELECT {_MATCHED_COLUMNS}, {rank} AS rank
            FROM search_documents AS d
            WHERE {where}
        ),
        page AS (
            SELECT *, row_number() OVER (ORDER BY {order}) AS position
            FROM (SELECT *, {key_columns} FROM matched) AS keyed
            WHERE {keyset}
            ORDER BY {order}
            LIMIT :limit OFFSET :offset
        )
        SELECT
            (SELECT count(*) FROM matched) AS total,
            (SELECT jsonb_agg(jsonb_build_object(
                'product_id', d.product_id, 'slug', d.slug, 'title', d.title,
                'brand', d.brand, 'vendor_id', d.vendor_id, 'vendor_slug', d.vendor_slug,
                'category_path', d.category_path, 'price_min', d.price_min,
                'price_max', d.price_max, 'currency', d.currency,
                'rating_avg', d.rating_avg, 'rating_count', d.rating_count,
                'in_stock', d.in_stock, 'options', d.options,
                'published_at', d.published_at, 'score', page.rank,
                'after', jsonb_build_array({after_values})) ORDER BY page.position)
             FROM page JOIN search_documents AS d ON d.product_id = page.product_id
            ) AS hits"""  # noqa: S608
    ]
    if query.include_facets:
        price_counts = []
        lower = 0
        for edge in PRICE_BUCKET_EDGES:
            price_counts.append(
                f"count(*) FILTER (WHERE price_min >= {lower} AND price_min < {edge})"
            )
            lower = edge
        price_counts.append(f"count(*) FILTER (WHERE price_min >= {lower})")
        rating_counts = [
            f"count(*) FILTER (WHERE rating_avg >= {threshold})" for threshold in RATING_THRESHOLDS
        ]
        parts.append(
            f""",
            (SELECT jsonb_object_agg(path, n) FROM (
                SELECT path, count(*) AS n FROM matched, unnest(category_ancestors) AS path
                GROUP BY path ORDER BY n DESC, path LIMIT {FACET_SIZE}) AS c) AS categories,
            (SELECT jsonb_object_agg(brand, n) FROM (
                SELECT brand, count(*) AS n FROM matched WHERE brand IS NOT NULL
                GROUP BY brand ORDER BY n DESC, brand LIMIT {FACET_SIZE}) AS b) AS brands,
            (SELECT jsonb_build_array({", ".join(price_counts)}) FROM matched) AS prices,
            (SELECT jsonb_build_array({", ".join(rating_counts)}) FROM matched) AS ratings,
            (SELECT jsonb_object_agg(name, counts) FROM (
                SELECT name, jsonb_object_agg(choice, n) AS counts FROM (
                    SELECT option.key AS name, picked.choice, count(*) AS n,
                        row_number() OVER (
                            PARTITION BY option.key ORDER BY count(*) DESC, picked.choice
                        ) AS place
                    FROM matched, jsonb_each(matched.options) AS option,
                        jsonb_array_elements_text(option.value) AS picked(choice)
                    GROUP BY option.key, picked.choice) AS counted
                WHERE place <= {OPTION_FACET_SIZE}
                GROUP BY name) AS o) AS options"""  # noqa: S608
        )
    return "".join(parts)


def _hit(data: dict[str, Any], *, scored: bool) -> SearchHit:
    published = data.get("published_at")
    rating = data.get("rating_avg")
    return SearchHit(
        product_id=uuid.UUID(data["product_id"]),
        slug=data["slug"],
        title=data["title"],
        brand=data.get("brand"),
        vendor_id=uuid.UUID(data["vendor_id"]),
        vendor_slug=data["vendor_slug"],
        category_path=data.get("category_path"),
        price_min=int(data["price_min"]),
        price_max=int(data["price_max"]),
        currency=data["currency"],
        rating_avg=float(rating) if rating is not None else None,
        rating_count=int(data["rating_count"]),
        in_stock=bool(data["in_stock"]),
        options={name: tuple(values) for name, values in (data.get("options") or {}).items()},
        published_at=datetime.fromisoformat(published) if published else None,
        score=float(data["score"]) if scored else None,
    )
