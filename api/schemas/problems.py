"""Request and response schemas of ``api/routes/problems.py``."""

from __future__ import annotations

from pydantic import BaseModel


class ProblemTypeRead(BaseModel):
    code: str
    status: int
    title: str
