"""Accounts: identity, credentials, sessions, profiles."""
