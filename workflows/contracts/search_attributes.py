"""Custom search attributes, so operations staff can find and filter workflows in the Temporal UI.

Registered by ``emporium dev`` (dev server flags), by every worker at start-up, and by the test
harness. Keep names stable: saved UI queries depend on them.
"""

from temporalio.common import SearchAttributeKey

ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
VENDOR_IDS = SearchAttributeKey.for_keyword_list("VendorIds")
ORDER_TOTAL = SearchAttributeKey.for_int("OrderTotal")
ORDER_CURRENCY = SearchAttributeKey.for_keyword("OrderCurrency")
PAYMENT_PROVIDER = SearchAttributeKey.for_keyword("PaymentProvider")

ALL_SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (
    ORDER_ID,
    CUSTOMER_ID,
    ORDER_STATUS,
    VENDOR_IDS,
    ORDER_TOTAL,
    ORDER_CURRENCY,
    PAYMENT_PROVIDER,
)
