"""Request and response schemas of ``api/routes/test_payments.py``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChallengeResult(BaseModel):
    client_secret: str = Field(min_length=10, max_length=200, repr=False)
    succeeded: bool = True
