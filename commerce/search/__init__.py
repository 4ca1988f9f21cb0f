"""Catalog search: one interface, PostgreSQL full-text and Elasticsearch behind it."""
