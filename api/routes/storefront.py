"""The storefront's browsing pages: product lists and pages, categories, vendor pages.

Anyone may call them. Search (free text) is in the search routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.access import Public
from api.deps import SessionDep
from api.schemas.pagination import PageCursor, PageLimit
from api.schemas.storefront import (
    CategoryNodeRead,
    CategoryTree,
    ProductDetailRead,
    ProductPage,
    VendorPageRead,
)
from commerce.catalog import storefront
from commerce.catalog.storefront import DEFAULT_PAGE_SIZE

router = APIRouter(tags=["storefront"], dependencies=[Public])

Slug = Annotated[str, Path(min_length=1, max_length=160)]


@router.get("/products")
async def list_products(
    session: SessionDep,
    category: Annotated[
        str | None, Query(max_length=80, description="A category slug; includes subcategories")
    ] = None,
    brand: Annotated[str | None, Query(max_length=120)] = None,
    vendor: Annotated[str | None, Query(max_length=80, description="A vendor slug")] = None,
    tag: Annotated[str | None, Query(max_length=40)] = None,
    sort: storefront.ProductSort = storefront.ProductSort.NEWEST,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> ProductPage:
    """Products on sale, a page at a time. Follow `next_cursor` with the same filters and
    sort; pages stay consistent while the catalog changes."""
    page = await storefront.list_products(
        session,
        category_slug=category,
        brand=brand,
        vendor_slug=vendor,
        tag=tag,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    return ProductPage.from_domain(page)


@router.get("/products/{slug}")
async def read_product(slug: Slug, session: SessionDep) -> ProductDetailRead:
    """A product page: active variants with availability, images, breadcrumb, vendor."""
    return ProductDetailRead.from_domain(await storefront.product_detail(session, slug=slug))


@router.get("/categories")
async def category_tree(session: SessionDep) -> CategoryTree:
    """Every category, nested, with counts of the products on sale in each subtree."""
    return CategoryTree.whole(
        [CategoryNodeRead.from_domain(node) for node in await storefront.category_tree(session)]
    )


@router.get("/vendors/by-slug/{slug}")
async def read_vendor_page(slug: Slug, session: SessionDep) -> VendorPageRead:
    """An active vendor's public page (404 for pending and suspended vendors)."""
    return VendorPageRead.from_domain(await storefront.vendor_page(session, slug=slug))
