"""What Emporium stores, one module per aggregate. Importing this package registers every table on
``Base.metadata``; import models from here (``from models import Order``)."""

from models.accounts import (
    Address,
    AddressKind,
    AuthSession,
    EmailToken,
    EmailTokenPurpose,
    Identity,
    OAuthLoginAttempt,
    PlatformRole,
    RecoveryCode,
    RefreshToken,
    SavedPaymentMethod,
    User,
    UserStatus,
    VendorInvitation,
    VendorMembership,
    VendorRole,
)
from models.analytics import (
    RollupState,
    SalesHour,
)
from models.base import (
    Base,
)
from models.carts import (
    Cart,
    CartItem,
)
from models.categories import (
    Category,
)
from models.disputes import (
    Dispute,
    DisputeStatus,
)
from models.inventory import (
    InventoryLevel,
    InventoryMovement,
    InventoryReservation,
    MovementReason,
    ReservationStatus,
    Warehouse,
)
from models.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceSequence,
)
from models.ledger import (
    LedgerEntry,
    LedgerKind,
    Payout,
    PayoutStatus,
)
from models.mail import (
    MailOutbox,
)
from models.orders import (
    Order,
    OrderDiscount,
    OrderEvent,
    OrderLine,
    OrderStatus,
    OrderVendorPart,
)
from models.payments import (
    Payment,
    PaymentEvent,
    PaymentStatus,
    TestPaymentRecord,
)
from models.products import (
    Product,
    ProductImage,
    ProductStatus,
    Variant,
)
from models.promotions import (
    Promotion,
    PromotionKind,
    PromotionRedemption,
    PromotionScope,
    RedemptionStatus,
)
from models.ratelimits import (
    LoginThrottle,
    RateLimitCounter,
)
from models.refunds import (
    Refund,
    RefundLine,
    RefundSource,
    RefundStatus,
)
from models.returns import (
    ReturnLine,
    ReturnRequest,
    ReturnStatus,
)
from models.reviews import (
    DeliveredPurchase,
    Review,
)
from models.search import (
    SearchDocument,
    SearchOutbox,
    SearchTerm,
)
from models.shipments import (
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
)
from models.shipping import (
    ShippingMethod,
    ShippingRate,
    ShippingZone,
)
from models.tax import (
    TaxRate,
)
from models.vendors import (
    Vendor,
    VendorStatus,
)
from models.wishlists import (
    Wishlist,
    WishlistItem,
)

__all__ = [
    "Address",
    "AddressKind",
    "AuthSession",
    "Base",
    "Cart",
    "CartItem",
    "Category",
    "DeliveredPurchase",
    "Dispute",
    "DisputeStatus",
    "EmailToken",
    "EmailTokenPurpose",
    "Identity",
    "InventoryLevel",
    "InventoryMovement",
    "InventoryReservation",
    "Invoice",
    "InvoiceKind",
    "InvoiceSequence",
    "LedgerEntry",
    "LedgerKind",
    "LoginThrottle",
    "MailOutbox",
    "MovementReason",
    "OAuthLoginAttempt",
    "Order",
    "OrderDiscount",
    "OrderEvent",
    "OrderLine",
    "OrderStatus",
    "OrderVendorPart",
    "Payment",
    "PaymentEvent",
    "PaymentStatus",
    "Payout",
    "PayoutStatus",
    "PlatformRole",
    "Product",
    "ProductImage",
    "ProductStatus",
    "Promotion",
    "PromotionKind",
    "PromotionRedemption",
    "PromotionScope",
    "RateLimitCounter",
    "RecoveryCode",
    "RedemptionStatus",
    "RefreshToken",
    "Refund",
    "RefundLine",
    "RefundSource",
    "RefundStatus",
    "ReservationStatus",
    "ReturnLine",
    "ReturnRequest",
    "ReturnStatus",
    "Review",
    "RollupState",
    "SalesHour",
    "SavedPaymentMethod",
    "SearchDocument",
    "SearchOutbox",
    "SearchTerm",
    "Shipment",
    "ShipmentEvent",
    "ShipmentStatus",
    "ShippingMethod",
    "ShippingRate",
    "ShippingZone",
    "TaxRate",
    "TestPaymentRecord",
    "User",
    "UserStatus",
    "Variant",
    "Vendor",
    "VendorInvitation",
    "VendorMembership",
    "VendorRole",
    "VendorStatus",
    "Warehouse",
    "Wishlist",
    "WishlistItem",
]
