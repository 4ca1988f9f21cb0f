"""A vendor's back office for its own products: staff read, managers and owners write.

Every path carries the vendor; a product, variant or image of another vendor is a 404 here
(the services look ids up within the vendor only).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api.access import VendorManager, VendorStaff
from api.deps import NowDep, SessionDep, read_body
from api.errors import fields_named
from api.schemas.catalog_admin import (
    ImageCreate,
    ImageList,
    ImageOrder,
    ImageRead,
    ProductCreate,
    ProductImportReportRead,
    ProductPageRead,
    ProductRead,
    ProductRemoval,
    ProductUpdate,
    StatusChange,
    VariantCreate,
    VariantRead,
    VariantUpdate,
)
from api.schemas.pagination import PageCursor, PageLimit
from commerce.catalog import bulk, products
from models import ProductStatus

#: The domain's names of a variant's money, and where they are in a request.
VARIANT_FIELDS = {
    "price_amount": ("price", "amount"),
    "currency": ("price", "currency"),
    "compare_at_amount": ("compare_at", "amount"),
}

router = APIRouter(tags=["vendor catalog"])

PRODUCTS = "/vendors/{vendor_id}/products"
PRODUCT = PRODUCTS + "/{product_id}"

_IMPORT_MEDIA_TYPES = {
    "text/csv": bulk.ImportFormat.CSV,
    "application/csv": bulk.ImportFormat.CSV,
    "application/json": bulk.ImportFormat.JSON,
}
_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "CSV with a header row, or a JSON list of objects; UTF-8, at most 5 MB "
        "and 10,000 rows. Columns: " + ", ".join(bulk.COLUMNS) + ".",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


# --- import and export (before /{product_id}, which would take "import" for an id) ----------


@router.post(PRODUCTS + "/import", openapi_extra=_IMPORT_BODY)
async def import_products(
    request: Request,
    vendor: VendorManager,
    session: SessionDep,
    now: NowDep,
    dry_run: Annotated[bool, Query(description="Check and report; write nothing")] = False,
) -> ProductImportReportRead:
    """Create or update products and variants, one row per variant keyed by SKU.

    Every row is reported (created, updated, unchanged or error with its code); a bad row
    leaves nothing behind and the good rows apply. The format is the export's.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _IMPORT_MEDIA_TYPES.get(media_type)
    if fmt is None:
        raise HTTPException(415, "Send the file as text/csv or application/json.")
    data = await read_body(
        request,
        limit=bulk.MAX_IMPORT_BYTES,
        too_large=bulk.ImportTooLarge(
            f"An import file has at most {bulk.MAX_IMPORT_BYTES // 1024 // 1024} MB."
        ),
    )
    report = await bulk.import_products(
        session, vendor_id=vendor.vendor_id, data=data, fmt=fmt, dry_run=dry_run, now=now
    )
    return ProductImportReportRead.from_domain(report)


@router.get(
    PRODUCTS + "/export",
    response_class=Response,
    responses={
        200: {
            "description": "The catalog in the import format",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
async def export_products(
    vendor: VendorStaff,
    session: SessionDep,
    export_format: Annotated[Literal["csv", "json"], Query(alias="format")] = "csv",
) -> Response:
    """Every product and variant, in the format the import reads back unchanged."""
    fmt = bulk.ImportFormat(export_format)
    body = await bulk.export_products(session, vendor_id=vendor.vendor_id, fmt=fmt)
    media_type = "text/csv; charset=utf-8" if fmt == bulk.ImportFormat.CSV else "application/json"
    filename = f"products-{vendor.vendor_id}.{fmt.value}"
    return Response(
        content=body.encode("utf-8"),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- products -------------------------------------------------------------------------------


@router.get(PRODUCTS)
async def list_vendor_products(
    vendor: VendorStaff,
    session: SessionDep,
    status: ProductStatus | None = Query(
        default=None, description="Without it: drafts and active products, not archived ones"
    ),
    q: str | None = Query(default=None, max_length=200, description="Part of the title"),
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> ProductPageRead:
    """Newest first, a page at a time."""
    page = await products.list_products(
        session, vendor_id=vendor.vendor_id, status=status, q=q, limit=limit, cursor=cursor
    )
    return ProductPageRead.from_domain(page)


@router.post(PRODUCTS, status_code=201)
async def create_product(
    body: ProductCreate, vendor: VendorManager, session: SessionDep
) -> ProductRead:
    """A new draft; add a variant, then activate it."""
    product = await products.create_product(
        session, vendor_id=vendor.vendor_id, **body.model_dump()
    )
    return ProductRead.from_domain(product)


@router.get(PRODUCT)
async def get_product(
    product_id: uuid.UUID, vendor: VendorStaff, session: SessionDep
) -> ProductRead:
    product = await products.get_product(session, vendor_id=vendor.vendor_id, product_id=product_id)
    return ProductRead.from_domain(product)


@router.patch(PRODUCT)
async def update_product(
    product_id: uuid.UUID, body: ProductUpdate, vendor: VendorManager, session: SessionDep
) -> ProductRead:
    product = await products.update_product(
        session,
        vendor_id=vendor.vendor_id,
        product_id=product_id,
        changes=body.model_dump(exclude_unset=True),
    )
    return ProductRead.from_domain(product)


@router.delete(PRODUCT)
async def delete_product(
    product_id: uuid.UUID,
    vendor: VendorManager,
    session: SessionDep,
    now: NowDep,
) -> ProductRemoval:
    """Deletes a draft that was never published; archives any other product."""
    outcome = await products.delete_product(
        session, vendor_id=vendor.vendor_id, product_id=product_id, now=now
    )
    return ProductRemoval(id=product_id, outcome="deleted" if outcome is None else "archived")


@router.post(PRODUCT + "/status")
async def set_product_status(
    product_id: uuid.UUID,
    body: StatusChange,
    vendor: VendorManager,
    session: SessionDep,
    now: NowDep,
) -> ProductRead:
    """draft, active (needs a sellable variant; the first time sets published_at) or
    archived (hidden from the storefront and search)."""
    product = await products.set_status(
        session, vendor_id=vendor.vendor_id, product_id=product_id, status=body.status, now=now
    )
    return ProductRead.from_domain(product)


# --- variants -------------------------------------------------------------------------------


@router.post(PRODUCT + "/variants", status_code=201)
async def add_variant(
    product_id: uuid.UUID, body: VariantCreate, vendor: VendorManager, session: SessionDep
) -> VariantRead:
    """Stock starts at zero in the default warehouse; set it through the inventory routes."""
    with fields_named(VARIANT_FIELDS):
        variant = await products.add_variant(
            session, vendor_id=vendor.vendor_id, product_id=product_id, **body.fields()
        )
    return VariantRead.from_domain(variant)


@router.patch(PRODUCT + "/variants/{variant_id}")
async def update_variant(
    product_id: uuid.UUID,
    variant_id: uuid.UUID,
    body: VariantUpdate,
    vendor: VendorManager,
    session: SessionDep,
) -> VariantRead:
    with fields_named(VARIANT_FIELDS):
        variant = await products.update_variant(
            session,
            vendor_id=vendor.vendor_id,
            product_id=product_id,
            variant_id=variant_id,
            changes=body.changes(),
        )
    return VariantRead.from_domain(variant)


# --- images ---------------------------------------------------------------------------------


@router.post(PRODUCT + "/images", status_code=201)
async def add_image(
    product_id: uuid.UUID, body: ImageCreate, vendor: VendorManager, session: SessionDep
) -> ImageRead:
    """Added after the others; at most 20 per product."""
    image = await products.add_image(
        session,
        vendor_id=vendor.vendor_id,
        product_id=product_id,
        url=body.url,
        alt_text=body.alt_text,
    )
    return ImageRead.from_domain(image)


@router.delete(PRODUCT + "/images/{image_id}", status_code=204)
async def delete_image(
    product_id: uuid.UUID, image_id: uuid.UUID, vendor: VendorManager, session: SessionDep
) -> Response:
    await products.delete_image(
        session, vendor_id=vendor.vendor_id, product_id=product_id, image_id=image_id
    )
    return Response(status_code=204)


@router.put(PRODUCT + "/images/order")
async def reorder_images(
    product_id: uuid.UUID, body: ImageOrder, vendor: VendorManager, session: SessionDep
) -> ImageList:
    images = await products.reorder_images(
        session, vendor_id=vendor.vendor_id, product_id=product_id, image_ids=body.image_ids
    )
    return ImageList.whole([ImageRead.from_domain(image) for image in images])
