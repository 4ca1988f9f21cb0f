"""What Emporium stores. Importing this package registers every table on ``Base.metadata``."""

from models.base import Base
from models.catalog import (
    Category,
    InventoryLevel,
    Product,
    ProductStatus,
    Variant,
    Vendor,
    VendorStatus,
)

__all__ = [
    "Base",
    "Category",
    "InventoryLevel",
    "Product",
    "ProductStatus",
    "Variant",
    "Vendor",
    "VendorStatus",
]
