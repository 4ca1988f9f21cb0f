"""Fulfilment: shipments, vendors' shipping rates, and carriers."""
