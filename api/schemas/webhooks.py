"""Request and response schemas of ``api/routes/webhooks.py``."""

from __future__ import annotations

from pydantic import BaseModel


class WebhookReceived(BaseModel):
    received: bool
    duplicate: bool
