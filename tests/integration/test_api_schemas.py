"""Where the API's schemas live and what they are called: every model a route takes or answers
with is defined in ``api/schemas/``, and every schema in /openapi.json has a plain name (a
clash of two classes' names would make FastAPI leak module paths, e.g.
``api__schemas__catalog_admin__VariantRead``)."""

from __future__ import annotations

import re
import typing

from fastapi import FastAPI
from pydantic import BaseModel

from api.access import api_routes


def _models(annotation: object) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.add(annotation)
    for argument in typing.get_args(annotation):
        found |= _models(argument)
    return found


def test_every_route_model_is_defined_in_api_schemas(app: FastAPI) -> None:
    used: set[type[BaseModel]] = set()
    for route in api_routes(app.routes):
        if route.response_model is not None:
            used |= _models(route.response_model)
        for param in route.dependant.body_params:
            used |= _models(param.field_info.annotation)
    assert len(used) > 100  # the walk sees the API (it has some 200 schemas)
    elsewhere = sorted(
        f"{model.__module__}.{model.__qualname__}"
        for model in used
        if not model.__module__.startswith("api.schemas.")
    )
    assert elsewhere == []


def test_every_openapi_schema_has_a_plain_name(app: FastAPI) -> None:
    names = list(app.openapi()["components"]["schemas"])
    leaked = [name for name in names if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name)]
    assert leaked == []


def test_operation_ids_are_the_route_functions_and_unique(app: FastAPI) -> None:
    """A generated client's functions are named by these (``place_order``, ``add_item``)."""
    ids = [
        operation["operationId"]
        for operations in app.openapi()["paths"].values()
        for operation in operations.values()
    ]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", operation_id) for operation_id in ids)
    assert "place_order" in ids
