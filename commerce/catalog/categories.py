"""Category management (admins): create, rename, move, delete.

A category's ``path`` is the slugs from the root down to it ("clothing/t-shirts"), so a
subtree is a prefix match for the storefront. Every change of a path rewrites the whole
subtree in one UPDATE and queues its products for re-indexing, since search documents carry
the category path.

Changes to the tree's shape are serialised by one transaction-scoped advisory lock: two
concurrent moves (A under B, B under A) would each pass the cycle check against the other's
stale path. Tree edits are rare admin actions, so one lock costs nothing that matters.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import ColumnElement, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import Conflict, DomainError, NotFound
from commerce.search.outbox import enqueue_reindex
from core.locks import advisory_lock
from models import Category, Product

SLUG = re.compile(r"^[a-z0-9-]{1,80}$")
# categories.path is VARCHAR(800).
MAX_PATH_LENGTH = 800
_TREE_LOCK = "emporium.catalog.category_tree"


class InvalidCategorySlug(DomainError):
    status, code, title = 422, "invalid_category_slug", "The category slug is not valid"


class CategoryNotFound(NotFound):
    code, title = "category_not_found", "No such category"


class CategorySlugTaken(Conflict):
    code, title = "category_slug_taken", "Another category has this slug"


class CategoryCycle(Conflict):
    code, title = "category_cycle", "A category cannot move under itself or its descendants"


class CategoryInUse(Conflict):
    code, title = "category_in_use", "The category still has products or subcategories"


class CategoryTooDeep(Conflict):
    code, title = "category_too_deep", "The category path would be too long"


async def create_category(
    session: AsyncSession, *, slug: str, name: str, parent_id: uuid.UUID | None = None
) -> Category:
    """A new category, at the root or under ``parent_id``. ``CategorySlugTaken`` (409) when
    the slug is in use: slugs are unique across the whole tree."""
    _check_slug(slug)
    await advisory_lock(session, _TREE_LOCK)
    parent = await _get(session, parent_id) if parent_id is not None else None
    path = f"{parent.path}/{slug}" if parent is not None else slug
    if len(path) > MAX_PATH_LENGTH:
        raise CategoryTooDeep(f"Paths are at most {MAX_PATH_LENGTH} characters.")
    category = Category(slug=slug, name=name, parent_id=parent_id, path=path)
    try:
        async with session.begin_nested():
            session.add(category)
            await session.flush()
    except IntegrityError as error:
        if not _is_slug_conflict(error):
            raise
        raise CategorySlugTaken(f"The slug {slug!r} is taken.") from None
    return category


async def update_category(
    session: AsyncSession,
    *,
    category_id: uuid.UUID,
    name: str | None = None,
    slug: str | None = None,
) -> Category:
    """Rename a category: its display name, its slug, or both. A new slug changes the path
    of the whole subtree, whose products are then re-indexed (search documents carry the
    path, not the names, so a new name alone re-indexes nothing)."""
    if slug is not None:
        _check_slug(slug)
        await advisory_lock(session, _TREE_LOCK)
    category = await _get(session, category_id)
    if name is not None:
        category.name = name
    if slug is not None and slug != category.slug:
        parent_path, _, _ = category.path.rpartition("/")
        new_path = f"{parent_path}/{slug}" if parent_path else slug
        try:
            async with session.begin_nested():
                category.slug = slug
                await session.flush()
                await _rewrite_subtree(session, old_path=category.path, new_path=new_path)
        except IntegrityError as error:
            if not _is_slug_conflict(error):
                raise
            raise CategorySlugTaken(f"The slug {slug!r} is taken.") from None
        await session.refresh(category)
        await _reindex_subtree(session, category.path)
    else:
        await session.flush()
    return category


async def move_category(
    session: AsyncSession, *, category_id: uuid.UUID, parent_id: uuid.UUID | None
) -> Category:
    """Move a category and its subtree under ``parent_id`` (None: to the root).
    ``CategoryCycle`` (409) when the new parent is the category itself or one of its
    descendants."""
    await advisory_lock(session, _TREE_LOCK)
    category = await _get(session, category_id)
    if parent_id is None:
        new_path = category.slug
    else:
        parent = await _get(session, parent_id)
        if parent.path == category.path or parent.path.startswith(category.path + "/"):
            raise CategoryCycle(f"{parent.path!r} is inside {category.path!r}.")
        new_path = f"{parent.path}/{category.slug}"
    if category.parent_id == parent_id:
        return category
    # Paths first: it refuses a too deep result before anything is written.
    await _rewrite_subtree(session, old_path=category.path, new_path=new_path)
    category.parent_id = parent_id
    await session.flush()
    await session.refresh(category)
    await _reindex_subtree(session, category.path)
    return category


async def delete_category(session: AsyncSession, *, category_id: uuid.UUID) -> None:
    """Delete an empty category. ``CategoryInUse`` (409) while any product (in any status)
    or subcategory is in it: products.category_id would silently become NULL otherwise."""
    await advisory_lock(session, _TREE_LOCK)
    # FOR UPDATE waits for, then blocks, transactions adding products to this category
    # (their foreign key check takes a KEY SHARE lock on it), so the check below holds.
    category = await session.get(
        Category, category_id, with_for_update=True, populate_existing=True
    )
    if category is None:
        raise CategoryNotFound()
    in_use = await session.scalar(
        select(
            or_(
                exists().where(Product.category_id == category_id),
                exists().where(Category.parent_id == category_id),
            )
        )
    )
    if in_use:
        raise CategoryInUse("Move its products and subcategories elsewhere first.")
    await session.delete(category)
    await session.flush()


async def get_category(session: AsyncSession, *, category_id: uuid.UUID) -> Category:
    """One category, or ``CategoryNotFound`` (404)."""
    return await _get(session, category_id)


# --- internals ------------------------------------------------------------------------------


def _check_slug(slug: str) -> None:
    if not SLUG.match(slug):
        raise InvalidCategorySlug("Use 1 to 80 lower-case letters, digits and '-'.")


async def _get(session: AsyncSession, category_id: uuid.UUID) -> Category:
    # populate_existing: after another transaction's move (we waited for its lock), the
    # identity map may still hold the old path.
    category = await session.get(Category, category_id, populate_existing=True)
    if category is None:
        raise CategoryNotFound()
    return category


def _in_subtree(path: str) -> ColumnElement[bool]:
    return or_(Category.path == path, Category.path.startswith(path + "/", autoescape=True))


async def _rewrite_subtree(session: AsyncSession, *, old_path: str, new_path: str) -> None:
    """Replace the ``old_path`` prefix by ``new_path`` for a category and all descendants,
    in one statement."""
    deepest = await session.scalar(
        select(func.max(func.length(Category.path))).where(_in_subtree(old_path))
    )
    if (deepest or 0) - len(old_path) + len(new_path) > MAX_PATH_LENGTH:
        raise CategoryTooDeep(f"Paths are at most {MAX_PATH_LENGTH} characters.")
    await session.execute(
        update(Category)
        .where(_in_subtree(old_path))
        .values(
            # updated_at: the column's onupdate (bookkeeping, models/base.py)
            path=literal(new_path) + func.substr(Category.path, len(old_path) + 1),
        )
        .execution_options(synchronize_session=False)
    )


async def _reindex_subtree(session: AsyncSession, path: str) -> None:
    product_ids = await session.scalars(
        select(Product.id)
        .join(Category, Category.id == Product.category_id)
        .where(_in_subtree(path))
    )
    await enqueue_reindex(session, product_ids.all())


def _is_slug_conflict(error: IntegrityError) -> bool:
    # A path is unique because slugs are; either constraint means the slug is taken.
    diag = getattr(error.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", "") or ""
    return constraint in ("uq_categories_slug", "uq_categories_path")
