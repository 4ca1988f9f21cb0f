"""Orders: placing them, their payments, the saga's client side, and their emails."""
