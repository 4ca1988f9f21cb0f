"""Request and response bodies of the storefront (browsing) routes and of category admin."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.money import Money
from api.schemas.pagination import Page
from api.schemas.text import LINE_PATTERN, line
from commerce.catalog import storefront
from commerce.catalog.categories import SLUG
from core.money import Money as DomainMoney
from models import Category

# Checked again by the service; here so that OpenAPI shows the rule.
SLUG_PATTERN = SLUG.pattern


def _money(money: DomainMoney | None) -> Money | None:
    return Money.from_domain(money) if money is not None else None


class RatingRead(BaseModel):
    average: float | None = Field(description="1 to 5; null before the first review")
    count: int

    @classmethod
    def from_domain(cls, rating: storefront.Rating) -> RatingRead:
        average = float(rating.average) if rating.average is not None else None
        return cls(average=average, count=rating.count)


class VendorRef(BaseModel):
    slug: str
    name: str
    rating: RatingRead

    @classmethod
    def from_domain(cls, vendor: storefront.VendorRef) -> VendorRef:
        return cls(slug=vendor.slug, name=vendor.name, rating=RatingRead.from_domain(vendor.rating))


class StorefrontImageRead(BaseModel):
    url: str
    alt_text: str

    @classmethod
    def from_domain(cls, image: storefront.Image) -> StorefrontImageRead:
        return cls(url=image.url, alt_text=image.alt_text)


class ProductCard(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    vendor: VendorRef
    from_price: Money = Field(description="The lowest price of the active variants")
    compare_at: Money | None = Field(description="The compare-at price of that variant")
    rating: RatingRead
    image: StorefrontImageRead | None = Field(description="The first image")
    published_at: datetime
    links: dict[str, str]

    @classmethod
    def from_domain(cls, product: storefront.ProductSummary) -> ProductCard:
        return cls(
            id=product.id,
            slug=product.slug,
            title=product.title,
            brand=product.brand,
            vendor=VendorRef.from_domain(product.vendor),
            from_price=Money.from_domain(product.from_price),
            compare_at=_money(product.compare_at),
            rating=RatingRead.from_domain(product.rating),
            image=StorefrontImageRead.from_domain(product.image) if product.image else None,
            published_at=product.published_at,
            links={"self": f"/products/{product.slug}"},
        )


class ProductPage(Page[ProductCard]):
    @classmethod
    def from_domain(cls, page: storefront.ProductList) -> ProductPage:
        return cls(
            items=[ProductCard.from_domain(item) for item in page.items],
            next_cursor=page.next_cursor,
        )


class CategoryCrumb(BaseModel):
    slug: str
    name: str
    path: str


class StorefrontVariantRead(BaseModel):
    id: uuid.UUID
    sku: str
    options: dict[str, str]
    price: Money
    compare_at: Money | None
    availability: storefront.StockAvailability = Field(
        description="in_stock, low_stock (few left) or out_of_stock"
    )

    @classmethod
    def from_domain(cls, variant: storefront.VariantOffer) -> StorefrontVariantRead:
        return cls(
            id=variant.id,
            sku=variant.sku,
            options=variant.options,
            price=Money.from_domain(variant.price),
            compare_at=_money(variant.compare_at),
            availability=variant.availability,
        )


class ProductDetailRead(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    description: str
    brand: str | None
    tags: list[str]
    attributes: dict[str, str]
    breadcrumb: list[CategoryCrumb] = Field(description="From the root category down")
    vendor: VendorRef
    rating: RatingRead
    images: list[StorefrontImageRead]
    variants: list[StorefrontVariantRead] = Field(description="The active variants, by SKU")
    from_price: Money
    published_at: datetime

    @classmethod
    def from_domain(cls, product: storefront.ProductDetail) -> ProductDetailRead:
        return cls(
            id=product.id,
            slug=product.slug,
            title=product.title,
            description=product.description,
            brand=product.brand,
            tags=product.tags,
            attributes=product.attributes,
            breadcrumb=[
                CategoryCrumb(slug=c.slug, name=c.name, path=c.path) for c in product.breadcrumb
            ],
            vendor=VendorRef.from_domain(product.vendor),
            rating=RatingRead.from_domain(product.rating),
            images=[StorefrontImageRead.from_domain(image) for image in product.images],
            variants=[StorefrontVariantRead.from_domain(variant) for variant in product.variants],
            from_price=Money.from_domain(product.from_price),
            published_at=product.published_at,
        )


class CategoryNodeRead(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    path: str
    product_count: int = Field(description="Visible products here and in all subcategories")
    children: list[CategoryNodeRead]

    @classmethod
    def from_domain(cls, node: storefront.CategoryNode) -> CategoryNodeRead:
        return cls(
            id=node.id,
            slug=node.slug,
            name=node.name,
            path=node.path,
            product_count=node.product_count,
            children=[cls.from_domain(child) for child in node.children],
        )


class VendorPageRead(BaseModel):
    slug: str
    name: str
    description: str
    rating: RatingRead
    product_count: int = Field(description="Products on sale")
    links: dict[str, str]

    @classmethod
    def from_domain(cls, vendor: storefront.VendorPage) -> VendorPageRead:
        return cls(
            slug=vendor.slug,
            name=vendor.name,
            description=vendor.description,
            rating=RatingRead.from_domain(vendor.rating),
            product_count=vendor.product_count,
            links={"products": f"/products?vendor={vendor.slug}"},
        )


# --- category admin -------------------------------------------------------------------------


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(pattern=SLUG_PATTERN, description="Unique across the whole tree")
    name: str = line(200)
    parent_id: uuid.UUID | None = None


class CategoryUpdate(BaseModel):
    """Either or both; a new slug changes the path of the whole subtree."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=LINE_PATTERN)
    slug: str | None = Field(default=None, pattern=SLUG_PATTERN)

    @model_validator(mode="after")
    def _something(self) -> CategoryUpdate:
        if self.name is None and self.slug is None:
            raise ValueError("Send a new name, a new slug, or both.")
        return self


class CategoryMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parent_id: uuid.UUID | None = Field(description="The new parent; null moves it to the root")


class CategoryRead(BaseModel):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    slug: str
    name: str
    path: str

    @classmethod
    def from_domain(cls, category: Category) -> CategoryRead:
        return cls(
            id=category.id,
            parent_id=category.parent_id,
            slug=category.slug,
            name=category.name,
            path=category.path,
        )


class CategoryTree(Page[CategoryNodeRead]):
    """Comes whole: `next_cursor` is always null."""
