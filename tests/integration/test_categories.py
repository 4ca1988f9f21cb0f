"""Category management: create, rename, move (subtree paths, cycles), delete, who may."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from commerce.catalog import categories
from commerce.catalog.categories import CategoryTooDeep, InvalidCategorySlug
from models import Category, PlatformRole, ProductStatus, SearchOutbox
from tests.catalog_factories import make_category, make_product, make_vendor
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


@pytest.fixture
async def admin(client: httpx.AsyncClient, db_session: AsyncSession) -> Account:
    return await sign_up(client, db_session, role=PlatformRole.ADMIN)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


def _slug(prefix: str = "cat") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _create(
    client: httpx.AsyncClient, admin: Account, *, parent: str | None = None, name: str = "A"
) -> dict[str, Any]:
    body: dict[str, Any] = {"slug": _slug(), "name": name}
    if parent is not None:
        body["parent_id"] = parent
    response = await client.post("/admin/categories", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _paths(session: AsyncSession, *ids: str) -> list[str]:
    rows = await session.execute(
        select(Category.id, Category.path).where(Category.id.in_([uuid.UUID(i) for i in ids]))
    )
    found = {str(category_id): path for category_id, path in rows}
    return [found[i] for i in ids]


async def _queued(session: AsyncSession, product_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(SearchOutbox.product_id).where(SearchOutbox.product_id.in_(product_ids))
    )
    return set(rows)


# --- create ---------------------------------------------------------------------------------


async def test_create_a_tree(client: httpx.AsyncClient, admin: Account) -> None:
    root = await _create(client, admin, name="Clothing")
    assert root["parent_id"] is None
    assert root["path"] == root["slug"]
    child = await _create(client, admin, parent=root["id"], name="T-shirts")
    assert child["parent_id"] == root["id"]
    assert child["path"] == f"{root['slug']}/{child['slug']}"
    assert child["name"] == "T-shirts"

    tree = (await client.get("/categories")).json()["items"]
    [node] = [n for n in tree if n["id"] == root["id"]]
    assert [c["id"] for c in node["children"]] == [child["id"]]


async def test_a_slug_is_unique_across_the_tree(client: httpx.AsyncClient, admin: Account) -> None:
    root = await _create(client, admin)
    response = await client.post(
        "/admin/categories",
        json={"slug": root["slug"], "name": "Again", "parent_id": root["id"]},
        headers=admin.headers,
    )
    _problem(response, 409, "category_slug_taken")


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "Has Space", "name": "x"},
        {"slug": "UPPER", "name": "x"},
        {"slug": "", "name": "x"},
        {"slug": "a" * 81, "name": "x"},
        {"slug": "ok-slug", "name": ""},
        {"slug": "ok-slug"},
        {"slug": "ok-slug", "name": "x", "parent_id": "not-a-uuid"},
        {"slug": "ok-slug", "name": "x", "path": "a/b"},
    ],
)
async def test_bad_input_is_a_validation_problem(
    client: httpx.AsyncClient, admin: Account, body: dict[str, Any]
) -> None:
    response = await client.post("/admin/categories", json=body, headers=admin.headers)
    _problem(response, 422, "validation_error")


async def test_an_unknown_parent_is_not_found(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.post(
        "/admin/categories",
        json={"slug": _slug(), "name": "x", "parent_id": str(uuid.uuid4())},
        headers=admin.headers,
    )
    _problem(response, 404, "category_not_found")


async def test_the_service_checks_slugs_too(db_session: AsyncSession) -> None:
    with pytest.raises(InvalidCategorySlug):
        await categories.create_category(db_session, slug="Not/Valid", name="x")


# --- rename ---------------------------------------------------------------------------------


async def test_rename_keeps_paths_and_a_new_slug_rewrites_the_subtree(
    client: httpx.AsyncClient, admin: Account, db_session: AsyncSession
) -> None:
    root = await _create(client, admin)
    child = await _create(client, admin, parent=root["id"])
    grandchild = await _create(client, admin, parent=child["id"])
    product = await make_product(
        db_session,
        vendor=await make_vendor(db_session),
        category=await db_session.get(Category, uuid.UUID(grandchild["id"])),
    )

    response = await client.patch(
        f"/admin/categories/{child['id']}", json={"name": "Tees"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Tees"
    assert response.json()["path"] == child["path"]
    # Search documents carry the path, not the names: nothing to re-index yet.
    assert await _queued(db_session, [product.id]) == set()

    new_slug = _slug("tees")
    response = await client.patch(
        f"/admin/categories/{child['id']}", json={"slug": new_slug}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["slug"] == new_slug
    assert response.json()["path"] == f"{root['slug']}/{new_slug}"
    assert await _paths(db_session, root["id"], child["id"], grandchild["id"]) == [
        root["slug"],
        f"{root['slug']}/{new_slug}",
        f"{root['slug']}/{new_slug}/{grandchild['slug']}",
    ]
    assert await _queued(db_session, [product.id]) == {product.id}


async def test_rename_refuses_a_taken_slug_and_an_empty_change(
    client: httpx.AsyncClient, admin: Account
) -> None:
    first, second = await _create(client, admin), await _create(client, admin)
    url = f"/admin/categories/{second['id']}"
    response = await client.patch(url, json={"slug": first["slug"]}, headers=admin.headers)
    _problem(response, 409, "category_slug_taken")
    _problem(await client.patch(url, json={}, headers=admin.headers), 422, "validation_error")
    response = await client.patch(url, json={"slug": "Bad Slug"}, headers=admin.headers)
    _problem(response, 422, "validation_error")
    response = await client.patch(
        f"/admin/categories/{uuid.uuid4()}", json={"name": "x"}, headers=admin.headers
    )
    _problem(response, 404, "category_not_found")


# --- move -----------------------------------------------------------------------------------


async def test_move_rewrites_the_subtree_and_reindexes_its_products(
    client: httpx.AsyncClient, admin: Account, db_session: AsyncSession
) -> None:
    clothing = await _create(client, admin)
    tees = await _create(client, admin, parent=clothing["id"])
    organic = await _create(client, admin, parent=tees["id"])
    sale = await _create(client, admin)
    vendor = await make_vendor(db_session)
    in_tees = await make_product(
        db_session, vendor=vendor, category=await db_session.get(Category, uuid.UUID(tees["id"]))
    )
    in_organic = await make_product(
        db_session,
        vendor=vendor,
        category=await db_session.get(Category, uuid.UUID(organic["id"])),
        status=ProductStatus.DRAFT,
    )
    elsewhere = await make_product(
        db_session,
        vendor=vendor,
        category=await db_session.get(Category, uuid.UUID(clothing["id"])),
    )

    response = await client.post(
        f"/admin/categories/{tees['id']}/move",
        json={"parent_id": sale["id"]},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["parent_id"] == sale["id"]
    assert moved["path"] == f"{sale['slug']}/{tees['slug']}"
    assert await _paths(db_session, clothing["id"], tees["id"], organic["id"]) == [
        clothing["slug"],
        f"{sale['slug']}/{tees['slug']}",
        f"{sale['slug']}/{tees['slug']}/{organic['slug']}",
    ]
    assert await _queued(db_session, [in_tees.id, in_organic.id, elsewhere.id]) == {
        in_tees.id,
        in_organic.id,
    }
    # The storefront's subtree filter follows the move.
    listed = await client.get("/products", params={"category": sale["slug"]})
    assert [item["slug"] for item in listed.json()["items"]] == [in_tees.slug]
    listed = await client.get("/products", params={"category": clothing["slug"]})
    assert [item["slug"] for item in listed.json()["items"]] == [elsewhere.slug]

    # And back to the root.
    response = await client.post(
        f"/admin/categories/{tees['id']}/move", json={"parent_id": None}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["path"] == tees["slug"]
    assert response.json()["parent_id"] is None
    assert (await _paths(db_session, organic["id"]))[0] == f"{tees['slug']}/{organic['slug']}"


async def test_a_move_under_itself_or_a_descendant_is_a_cycle(
    client: httpx.AsyncClient, admin: Account, db_session: AsyncSession
) -> None:
    root = await _create(client, admin)
    child = await _create(client, admin, parent=root["id"])
    grandchild = await _create(client, admin, parent=child["id"])
    for target in (root, child, grandchild):
        response = await client.post(
            f"/admin/categories/{root['id']}/move",
            json={"parent_id": target["id"]},
            headers=admin.headers,
        )
        _problem(response, 409, "category_cycle")
    assert await _paths(db_session, root["id"], grandchild["id"]) == [
        root["path"],
        grandchild["path"],
    ]


async def test_a_move_needs_an_explicit_parent(client: httpx.AsyncClient, admin: Account) -> None:
    category = await _create(client, admin)
    url = f"/admin/categories/{category['id']}/move"
    _problem(await client.post(url, json={}, headers=admin.headers), 422, "validation_error")
    response = await client.post(url, json={"parent_id": str(uuid.uuid4())}, headers=admin.headers)
    _problem(response, 404, "category_not_found")


async def test_a_sibling_with_a_common_prefix_is_not_part_of_the_subtree(
    db_session: AsyncSession,
) -> None:
    # "shoes" and "shoes-kids" share a text prefix but not a path prefix.
    base = _slug()
    shoes = await categories.create_category(db_session, slug=base, name="Shoes")
    kids = await categories.create_category(db_session, slug=f"{base}-kids", name="Kids")
    target = await categories.create_category(db_session, slug=_slug(), name="Target")
    await categories.move_category(db_session, category_id=shoes.id, parent_id=target.id)
    await db_session.refresh(kids)
    assert kids.path == f"{base}-kids"
    # A kid category may move under the other one: no cycle.
    moved = await categories.move_category(db_session, category_id=kids.id, parent_id=shoes.id)
    assert moved.path == f"{target.slug}/{base}/{base}-kids"


async def test_concurrent_opposite_moves_cannot_make_a_cycle(fresh_database_url: str) -> None:
    # Real concurrent transactions: each would pass its cycle check against the other's
    # path as it was before, were tree changes not serialised.
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with maker.begin() as session:
            a = await categories.create_category(session, slug=_slug(), name="A")
            b = await categories.create_category(session, slug=_slug(), name="B")

        async def move(category: Category, parent: Category) -> Category:
            async with maker.begin() as session:
                moved = await categories.move_category(
                    session, category_id=category.id, parent_id=parent.id
                )
                await asyncio.sleep(0.3)  # still holding the tree lock
                return moved

        results = await asyncio.gather(move(a, b), move(b, a), return_exceptions=True)
        assert sorted(type(result).__name__ for result in results) == ["Category", "CategoryCycle"]

        async with maker() as session:
            rows = {c.id: c for c in await session.scalars(select(Category))}
        for category in rows.values():
            parent = rows.get(category.parent_id) if category.parent_id else None
            expected = f"{parent.path}/{category.slug}" if parent else category.slug
            assert category.path == expected
    finally:
        await engine.dispose()


async def test_paths_longer_than_the_column_are_refused(db_session: AsyncSession) -> None:
    def long_slug() -> str:
        return uuid.uuid4().hex * 2 + "-" * 16  # 80 characters

    async def chain(levels: int) -> list[Category]:
        made: list[Category] = []
        for _ in range(levels):
            parent_id = made[-1].id if made else None
            made.append(
                await categories.create_category(
                    db_session, slug=long_slug(), name="x", parent_id=parent_id
                )
            )
        return made

    nine = await chain(9)  # 9 * 80 + 8 = 728 characters
    with pytest.raises(CategoryTooDeep):
        await categories.create_category(
            db_session, slug=long_slug(), name="x", parent_id=nine[-1].id
        )
    two = await chain(2)
    with pytest.raises(CategoryTooDeep):
        await categories.move_category(db_session, category_id=two[0].id, parent_id=nine[-1].id)
    await db_session.refresh(two[0])
    assert two[0].parent_id is None
    assert two[0].path == two[0].slug


# --- delete ---------------------------------------------------------------------------------


async def test_delete_only_an_empty_category(
    client: httpx.AsyncClient, admin: Account, db_session: AsyncSession
) -> None:
    parent = await _create(client, admin)
    child = await _create(client, admin, parent=parent["id"])
    with_product = await _create(client, admin)
    await make_product(
        db_session,
        vendor=await make_vendor(db_session),
        category=await db_session.get(Category, uuid.UUID(with_product["id"])),
        status=ProductStatus.ARCHIVED,
    )

    for in_use in (parent, with_product):
        response = await client.delete(f"/admin/categories/{in_use['id']}", headers=admin.headers)
        _problem(response, 409, "category_in_use")

    response = await client.delete(f"/admin/categories/{child['id']}", headers=admin.headers)
    assert response.status_code == 204, response.text
    response = await client.delete(f"/admin/categories/{parent['id']}", headers=admin.headers)
    assert response.status_code == 204, response.text
    response = await client.delete(f"/admin/categories/{parent['id']}", headers=admin.headers)
    _problem(response, 404, "category_not_found")
    assert await db_session.get(Category, uuid.UUID(with_product["id"])) is not None


# --- who may --------------------------------------------------------------------------------


async def test_only_admins_manage_categories(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    customer = await sign_up(client, db_session)
    operations = await sign_up(client, db_session, role=PlatformRole.OPERATIONS)
    category = await make_category(db_session)
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/admin/categories", {"slug": _slug(), "name": "x"}),
        ("PATCH", f"/admin/categories/{category.id}", {"name": "x"}),
        ("POST", f"/admin/categories/{category.id}/move", {"parent_id": None}),
        ("DELETE", f"/admin/categories/{category.id}", None),
    ]
    for method, url, body in calls:
        for account in (customer, operations):
            response = await client.request(method, url, json=body, headers=account.headers)
            _problem(response, 403, "forbidden")
        _problem(await client.request(method, url, json=body), 401, "invalid_token")
    assert (await db_session.get(Category, category.id)) is not None


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"unexpected": true}', b'"a string"', b"null"]
)
async def test_bad_bodies_are_problems_never_500(
    client: httpx.AsyncClient, admin: Account, db_session: AsyncSession, body: bytes
) -> None:
    category = await make_category(db_session)
    for method, url in (
        ("POST", "/admin/categories"),
        ("PATCH", f"/admin/categories/{category.id}"),
        ("POST", f"/admin/categories/{category.id}/move"),
    ):
        response = await client.request(
            method,
            url,
            content=body,
            headers={**admin.headers, "content-type": "application/json"},
        )
        _problem(response, 422, "validation_error")
