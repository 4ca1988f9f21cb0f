"""The catalogue of error codes, so that every problem's ``type`` URI resolves to a description."""

from __future__ import annotations

from fastapi import APIRouter

from api.access import Public
from api.problems import catalogue
from api.schemas.problems import (
    ProblemTypeList,
    ProblemTypeRead,
)
from commerce.errors import NotFound

router = APIRouter(tags=["problems"], dependencies=[Public])


@router.get("/problems", summary="Every error code the API can answer with")
async def list_problem_types() -> ProblemTypeList:
    return ProblemTypeList.whole(
        [ProblemTypeRead(**vars(problem)) for problem in catalogue().values()]
    )


@router.get("/problems/{code}", summary="One error code")
async def get_problem_type(code: str) -> ProblemTypeRead:
    problem = catalogue().get(code)
    if problem is None:
        raise NotFound(f"No problem type {code!r}.")
    return ProblemTypeRead(**vars(problem))
