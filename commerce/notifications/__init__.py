"""Notifications: transactional email (the outbox and its delivery)."""
