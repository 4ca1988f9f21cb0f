"""Checkout: carts, pricing, promotions, tax and the order summary."""
