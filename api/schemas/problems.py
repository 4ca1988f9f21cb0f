"""Request and response schemas of ``api/routes/problems.py``."""

from __future__ import annotations

from pydantic import BaseModel

from api.schemas.pagination import Page


class ProblemTypeRead(BaseModel):
    code: str
    status: int
    title: str


class ProblemTypeList(Page[ProblemTypeRead]):
    """Comes whole: `next_cursor` is always null."""
