"""Request and response bodies of a vendor's back office for its products.

Limits here only keep absurd input out. The catalog rules (20 tags, https images, GTIN check
digits, one currency per product, ...) are :mod:`commerce.catalog.products`'s, shared with
the import, and answer with their own problem codes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.money import Money, money_or_none
from api.schemas.pagination import Page
from commerce.catalog.bulk import ImportReport, RowResult, RowStatus
from commerce.catalog.products import ProductPage
from models import Product, ProductImage, ProductStatus, Variant

_TEXT = 1_000
_LONG_TEXT = 100_000
_MANY = 200  # list and map entries


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=_TEXT)
    description: str = Field(default="", max_length=_LONG_TEXT)
    brand: str | None = Field(default=None, max_length=_TEXT)
    category_id: uuid.UUID | None = None
    tags: list[str] = Field(
        default_factory=list, max_length=_MANY, description="Lower-cased; at most 20"
    )
    attributes: dict[str, str] = Field(
        default_factory=dict,
        max_length=_MANY,
        description='Descriptive facts, e.g. {"material": "merino wool"}; at most 50',
    )
    tax_class: str = Field(default="standard", max_length=_TEXT)
    slug: str | None = Field(
        default=None, max_length=_TEXT, description="Generated from the title when not given"
    )


class ProductUpdate(BaseModel):
    """Only the fields sent change. null clears brand, category and description."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=_TEXT)
    description: str | None = Field(default=None, max_length=_LONG_TEXT)
    brand: str | None = Field(default=None, max_length=_TEXT)
    category_id: uuid.UUID | None = None
    tags: list[str] | None = Field(default=None, max_length=_MANY)
    attributes: dict[str, str] | None = Field(default=None, max_length=_MANY)
    tax_class: str | None = Field(default=None, max_length=_TEXT)
    slug: str | None = Field(
        default=None, max_length=_TEXT, description="Changing it breaks links to the old one"
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: ProductStatus = Field(
        description="active needs an active variant with a price above zero"
    )


class VariantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(max_length=_TEXT, description="Unique among the vendor's variants")
    price: Money = Field(description="One currency for all the product's variants")
    compare_at: Money | None = Field(
        default=None, description="The 'was' price: above `price`, in its currency"
    )
    options: dict[str, str] = Field(
        default_factory=dict, max_length=_MANY, description='e.g. {"size": "M"}'
    )
    weight_grams: int | None = None
    barcode: str | None = Field(default=None, max_length=_TEXT, description="GTIN-8/12/13/14")
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    is_active: bool = True

    @model_validator(mode="after")
    def _one_currency(self) -> VariantCreate:
        if self.compare_at is not None and self.compare_at.currency != self.price.currency:
            raise ValueError("compare_at must be in the price's currency")
        return self

    def fields(self) -> dict[str, Any]:
        """The domain's variant fields."""
        fields = self.model_dump(exclude={"price", "compare_at"})
        fields["price_amount"] = self.price.amount
        fields["currency"] = self.price.currency
        fields["compare_at_amount"] = self.compare_at.amount if self.compare_at else None
        return fields


class VariantUpdate(BaseModel):
    """Only the fields sent change; is_active=false stops selling the variant."""

    model_config = ConfigDict(extra="forbid")
    sku: str | None = Field(default=None, max_length=_TEXT)
    price: Money | None = None
    compare_at: Money | None = Field(default=None, description="null removes it")
    options: dict[str, str] | None = Field(default=None, max_length=_MANY)
    weight_grams: int | None = None
    barcode: str | None = Field(default=None, max_length=_TEXT)
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    is_active: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The domain's variant fields for what was sent."""
        sent = self.model_fields_set
        changes = self.model_dump(include=sent - {"price", "compare_at"})
        if "price" in sent:
            changes["price_amount"] = self.price.amount if self.price else None
            changes["currency"] = self.price.currency if self.price else None
        if "compare_at" in sent:
            changes["compare_at_amount"] = self.compare_at.amount if self.compare_at else None
            if self.compare_at is not None:
                changes["compare_at_currency"] = self.compare_at.currency
        return changes


class ImageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=10_000, description="https only")
    alt_text: str = Field(default="", max_length=_TEXT)


class ImageOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_ids: list[uuid.UUID] = Field(
        max_length=_MANY, description="Every image of the product once; the first is the main one"
    )


class ImageRead(BaseModel):
    id: uuid.UUID
    url: str
    alt_text: str
    position: int

    @classmethod
    def from_domain(cls, image: ProductImage) -> ImageRead:
        return cls(id=image.id, url=image.url, alt_text=image.alt_text, position=image.position)


class VariantRead(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    options: dict[str, str]
    price: Money
    compare_at: Money | None
    weight_grams: int | None
    barcode: str | None
    length_mm: int | None
    width_mm: int | None
    height_mm: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, variant: Variant) -> VariantRead:
        return cls(
            id=variant.id,
            product_id=variant.product_id,
            sku=variant.sku,
            options=variant.options,
            price=Money.of(variant.price_amount, variant.currency),
            compare_at=money_or_none(variant.compare_at_amount, variant.currency),
            weight_grams=variant.weight_grams,
            barcode=variant.barcode,
            length_mm=variant.length_mm,
            width_mm=variant.width_mm,
            height_mm=variant.height_mm,
            is_active=variant.is_active,
            created_at=variant.created_at,
            updated_at=variant.updated_at,
        )


class ProductSummary(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    category_id: uuid.UUID | None
    status: ProductStatus
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, product: Product) -> ProductSummary:
        return cls(
            id=product.id,
            slug=product.slug,
            title=product.title,
            brand=product.brand,
            category_id=product.category_id,
            status=product.status,
            published_at=product.published_at,
            created_at=product.created_at,
            updated_at=product.updated_at,
        )


class ProductRead(ProductSummary):
    vendor_id: uuid.UUID
    description: str
    tags: list[str]
    attributes: dict[str, str]
    tax_class: str
    variants: list[VariantRead] = Field(description="Inactive ones too, by SKU")
    images: list[ImageRead] = Field(description="In display order")

    @classmethod
    def from_domain(cls, product: Product) -> ProductRead:
        return cls(
            **ProductSummary.from_domain(product).model_dump(),
            vendor_id=product.vendor_id,
            description=product.description,
            tags=list(product.tags),
            attributes=product.attributes,
            tax_class=product.tax_class,
            variants=[VariantRead.from_domain(variant) for variant in product.variants],
            images=[ImageRead.from_domain(image) for image in product.images],
        )


class ProductPageRead(Page[ProductSummary]):
    @classmethod
    def from_domain(cls, page: ProductPage) -> ProductPageRead:
        return cls(
            items=[ProductSummary.from_domain(product) for product in page.items],
            next_cursor=page.next_cursor,
        )


class ProductRemoval(BaseModel):
    id: uuid.UUID
    outcome: Literal["deleted", "archived"] = Field(
        description="Drafts never published are deleted; other products are archived"
    )


class ProductImportRowRead(BaseModel):
    line: int = Field(description="CSV: the line the row starts on (header: 1); JSON: item, from 1")
    sku: str | None
    status: RowStatus
    code: str | None = Field(default=None, description="The problem code, for errors")
    message: str | None = None
    product_id: uuid.UUID | None = Field(default=None, description="null on a dry run")

    @classmethod
    def from_domain(cls, row: RowResult) -> ProductImportRowRead:
        return cls(
            line=row.line,
            sku=row.sku,
            status=row.status,
            code=row.code,
            message=row.message,
            product_id=row.product_id,
        )


class ProductImportReportRead(BaseModel):
    dry_run: bool = Field(description="true: checked and reported, nothing written")
    created: int
    updated: int
    unchanged: int
    errors: int
    rows: list[ProductImportRowRead]

    @classmethod
    def from_domain(cls, report: ImportReport) -> ProductImportReportRead:
        return cls(
            dry_run=report.dry_run,
            created=report.count(RowStatus.CREATED),
            updated=report.count(RowStatus.UPDATED),
            unchanged=report.count(RowStatus.UNCHANGED),
            errors=report.count(RowStatus.ERROR),
            rows=[ProductImportRowRead.from_domain(row) for row in report.rows],
        )


class ImageList(Page[ImageRead]):
    """Comes whole: `next_cursor` is always null."""
