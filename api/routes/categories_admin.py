"""Category management for admins: the tree the storefront's navigation is built from."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.access import AdminUser
from api.deps import SessionDep
from api.schemas.storefront import CategoryCreate, CategoryMove, CategoryRead, CategoryUpdate
from commerce.catalog import categories

router = APIRouter(prefix="/admin/categories", tags=["admin"])


@router.post("", status_code=201)
async def create_category(body: CategoryCreate, _: AdminUser, session: SessionDep) -> CategoryRead:
    category = await categories.create_category(
        session, slug=body.slug, name=body.name, parent_id=body.parent_id
    )
    return CategoryRead.from_domain(category)


@router.patch("/{category_id}")
async def update_category(
    category_id: uuid.UUID, body: CategoryUpdate, _: AdminUser, session: SessionDep
) -> CategoryRead:
    """Rename; a new slug changes the paths of the whole subtree."""
    category = await categories.update_category(
        session, category_id=category_id, name=body.name, slug=body.slug
    )
    return CategoryRead.from_domain(category)


@router.post("/{category_id}/move")
async def move_category(
    category_id: uuid.UUID, body: CategoryMove, _: AdminUser, session: SessionDep
) -> CategoryRead:
    """Move a category with its subtree (409 `category_cycle` under its own descendants)."""
    category = await categories.move_category(
        session, category_id=category_id, parent_id=body.parent_id
    )
    return CategoryRead.from_domain(category)


@router.delete("/{category_id}", status_code=204)
async def delete_category(category_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    """Only an empty category: 409 `category_in_use` while products or subcategories use it."""
    await categories.delete_category(session, category_id=category_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
