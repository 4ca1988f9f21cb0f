"""Bodies of the analytics routes: money as ``Money``, days as ISO dates."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.money import Money
from commerce.analytics.overview import VendorOverview
from commerce.analytics.platform import CurrencyCategories, CurrencyVendors
from commerce.analytics.products import CurrencyProducts, Ranking
from commerce.analytics.sales import Bucket, CurrencySales, SalesFigures, SalesReport
from commerce.catalog.inventory import StockStatus


class SalesFiguresRead(BaseModel):
    orders: int = Field(description="Confirmed orders with a part of this vendor")
    units: int = Field(description="Units bought in them from this vendor")
    gross: Money = Field(description="Sales credited: the parts' totals (items, shipping, tax)")
    commission: Money = Field(description="The platform's commission, net of refunded commission")
    refunds: Money = Field(description="Given back to shoppers from this vendor's parts")
    disputes: Money = Field(description="Chargebacks lost")
    net: Money = Field(description="gross - commission - refunds - disputes")
    average_order_value: Money = Field(description="gross / orders, rounded half up")

    @classmethod
    def build(cls, figures: SalesFigures, currency: str) -> SalesFiguresRead:
        return cls(
            orders=figures.orders,
            units=figures.units,
            gross=Money.of(figures.gross, currency),
            commission=Money.of(figures.commission, currency),
            refunds=Money.of(figures.refunds, currency),
            disputes=Money.of(figures.disputes, currency),
            net=Money.of(figures.net, currency),
            average_order_value=Money.of(figures.average_order_value, currency),
        )


class SalesPointRead(SalesFiguresRead):
    start: date = Field(
        description="The bucket's first day (a Monday for weeks, the 1st for months)"
    )


class CurrencySalesRead(BaseModel):
    currency: str
    totals: SalesFiguresRead
    series: list[SalesPointRead] = Field(description="Every bucket of the range, oldest first")

    @classmethod
    def build(cls, sales: CurrencySales) -> CurrencySalesRead:
        return cls(
            currency=sales.currency,
            totals=SalesFiguresRead.build(sales.totals, sales.currency),
            series=[
                SalesPointRead(
                    start=point.start,
                    **SalesFiguresRead.build(point.figures, sales.currency).model_dump(),
                )
                for point in sales.series
            ],
        )


class SalesReportRead(BaseModel):
    time_zone: str = Field(description="The vendor's time zone: its days, weeks and months")
    bucket: Bucket
    first: date = Field(description="The first day reported (`from`)")
    last: date = Field(description="The last day reported (`to`), included")
    currencies: list[CurrencySalesRead] = Field(
        description="One report per currency sold in over the range (none: nothing sold)"
    )

    @classmethod
    def build(cls, report: SalesReport) -> SalesReportRead:
        return cls(
            time_zone=report.time_zone,
            bucket=report.bucket,
            first=report.first,
            last=report.last,
            currencies=[CurrencySalesRead.build(sales) for sales in report.currencies],
        )


class ProductSalesRead(BaseModel):
    product_id: uuid.UUID | None = Field(description="None when the product was deleted since")
    variant_id: uuid.UUID | None
    sku: str
    title: str = Field(description="As last sold")
    units: int = Field(description="Units bought in confirmed orders")
    returned: int = Field(description="Of them, units returned")
    cancelled: int = Field(description="Of them, units cancelled before shipping")
    gross: Money = Field(description="What the lines sold for: after discounts, with tax")


class CurrencyProductsRead(BaseModel):
    currency: str
    items: list[ProductSalesRead] = Field(description="Best first")

    @classmethod
    def build(cls, found: CurrencyProducts) -> CurrencyProductsRead:
        return cls(
            currency=found.currency,
            items=[
                ProductSalesRead(
                    product_id=item.product_id,
                    variant_id=item.variant_id,
                    sku=item.sku,
                    title=item.title,
                    units=item.units,
                    returned=item.returned,
                    cancelled=item.cancelled,
                    gross=Money.of(item.gross, found.currency),
                )
                for item in found.items
            ],
        )


class TopProductsRead(BaseModel):
    time_zone: str
    first: date
    last: date
    ranking: Ranking
    currencies: list[CurrencyProductsRead]


class StockAlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read off the domain's figures

    variant_id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    title: str
    available: int = Field(description="On hand less reserved, over all warehouses")
    low_stock_threshold: int
    status: StockStatus


class VendorMoneyRead(BaseModel):
    currency: str
    balance: Money = Field(description="Owed to the vendor: every entry not paid out yet")
    payable: Money = Field(description="What a payout run now would settle")
    frozen: Money = Field(description="Held back by open disputes")
    pending: Money = Field(description="Sales still inside their return window")
    next_available_at: datetime | None = Field(
        description="When the first of the pending sales becomes payable"
    )


class VendorOverviewRead(BaseModel):
    parts_to_accept: int = Field(description="Parts of paid orders waiting for the vendor")
    parts_to_ship: int = Field(description="Parts accepted, not handed to a carrier yet")
    returns_to_decide: int
    low_stock: int = Field(description="Variants at or under their threshold, not out")
    out_of_stock: int
    stock_alerts: list[StockAlertRead] = Field(description="The lowest first, at most 20")
    money: list[VendorMoneyRead] = Field(description="Per currency")
    next_payout_at: datetime | None = Field(
        description="The payout schedule's next run (none when no schedule runs)"
    )

    @classmethod
    def build(cls, overview: VendorOverview, next_payout_at: datetime | None) -> VendorOverviewRead:
        return cls(
            parts_to_accept=overview.parts_to_accept,
            parts_to_ship=overview.parts_to_ship,
            returns_to_decide=overview.returns_to_decide,
            low_stock=overview.low_stock,
            out_of_stock=overview.out_of_stock,
            stock_alerts=[StockAlertRead.model_validate(a) for a in overview.stock_alerts],
            money=[
                VendorMoneyRead(
                    currency=each.currency,
                    balance=Money.of(each.balance, each.currency),
                    payable=Money.of(each.payable, each.currency),
                    frozen=Money.of(each.frozen, each.currency),
                    pending=Money.of(each.pending, each.currency),
                    next_available_at=each.next_available_at,
                )
                for each in overview.money
            ],
            next_payout_at=next_payout_at,
        )


class VendorSalesRead(BaseModel):
    vendor_id: uuid.UUID
    name: str
    orders: int
    gross: Money
    commission: Money = Field(description="The platform's commission on these sales")


class CurrencyVendorsRead(BaseModel):
    currency: str
    vendors: list[VendorSalesRead] = Field(description="The best-selling first")

    @classmethod
    def build(cls, found: CurrencyVendors) -> CurrencyVendorsRead:
        return cls(
            currency=found.currency,
            vendors=[
                VendorSalesRead(
                    vendor_id=vendor.vendor_id,
                    name=vendor.name,
                    orders=vendor.orders,
                    gross=Money.of(vendor.gross, found.currency),
                    commission=Money.of(vendor.commission, found.currency),
                )
                for vendor in found.vendors
            ],
        )


class VendorRankingRead(BaseModel):
    time_zone: str
    first: date
    last: date
    currencies: list[CurrencyVendorsRead]


class ProviderPaymentsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read off the domain's figures

    provider: str
    attempts: int
    succeeded: int = Field(description="Authorized (captured or voided later, or not yet)")
    declined: int
    failed: int = Field(description="Refused for another reason, or given up after retries")
    open: int = Field(description="Waiting for the shopper or the provider")
    decline_rate_bp: int = Field(description="Declined among the attempts that ended, in bp")
    decline_codes: dict[str, int] = Field(description="The most frequent decline codes")


class PaymentRatesRead(BaseModel):
    time_zone: str
    first: date
    last: date
    providers: list[ProviderPaymentsRead]


class CategorySalesRead(BaseModel):
    category_id: uuid.UUID | None = Field(description="None: no category, or product deleted")
    name: str
    units: int
    gross: Money = Field(description="What the lines sold for: after discounts, with tax")


class CurrencyCategoriesRead(BaseModel):
    currency: str
    categories: list[CategorySalesRead] = Field(description="The best-selling first")

    @classmethod
    def build(cls, found: CurrencyCategories) -> CurrencyCategoriesRead:
        return cls(
            currency=found.currency,
            categories=[
                CategorySalesRead(
                    category_id=item.category_id,
                    name=item.name,
                    units=item.units,
                    gross=Money.of(item.gross, found.currency),
                )
                for item in found.categories
            ],
        )


class CategoryReportRead(BaseModel):
    time_zone: str
    first: date
    last: date
    currencies: list[CurrencyCategoriesRead]


class CustomerPointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read off the domain's figures

    start: date
    customers: int = Field(description="With an order confirmed in the bucket")
    new: int = Field(description="Of them, whose first confirmed order ever it was")
    returning: int


class CustomerReportRead(BaseModel):
    time_zone: str
    bucket: Bucket
    first: date
    last: date
    series: list[CustomerPointRead]


class StuckRead(BaseModel):
    kind: str = Field(description="order, part or return")
    status: str
    count: int


class OperationsRead(BaseModel):
    stuck: list[StuckRead] = Field(description="Past the deadline of their timer plus the grace")
    mail_pending: int = Field(description="Emails queued, not sent yet")
    mail_oldest_s: float = Field(description="Age of the oldest of them (0: none waits)")
    search_pending: int = Field(description="Catalog changes not in the search index yet")
    disputes_open: int
    disputes_evidence_due: int = Field(description="Open, evidence due within 72 hours")
    next_evidence_due_at: datetime | None


class RatingPointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read off the domain's figures

    start: date
    reviews: int = Field(description="Visible reviews written in the bucket")
    average: Decimal | None = Field(description="Their average rating, 1-5 (none written: null)")
    rating: Decimal | None = Field(description="The vendor's rating at the bucket's end")
    rated_by: int = Field(description="The visible reviews that rating is the average of")


class RatingTrendRead(BaseModel):
    time_zone: str
    bucket: Bucket
    first: date
    last: date
    series: list[RatingPointRead]


class SignupPointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read off the domain's figures

    start: date
    signups: int = Field(description="Accounts created in the bucket")
    verified: int = Field(description="Of them, with their email address verified since")
    verification_rate_bp: int = Field(description="verified / signups, in basis points")


class SignupReportRead(BaseModel):
    time_zone: str
    bucket: Bucket
    first: date
    last: date
    series: list[SignupPointRead]
