"""Version 1 of the API only grows: the schema the app serves breaks nothing a client of the
published snapshot (``api/openapi-v1.json``) relies on, and the check itself catches each
kind of break (README, "Versioning")."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from tests.api_compat import SNAPSHOT, breaking_changes

Spec = dict[str, Any]


@pytest.fixture(scope="module")
def published() -> Spec:
    spec: Spec = json.loads(SNAPSHOT.read_text())
    return spec


def test_the_served_schema_breaks_no_client_of_version_1(app: FastAPI, published: Spec) -> None:
    current = app.openapi()
    assert published["info"]["version"].split(".")[0] == current["info"]["version"].split(".")[0]
    assert breaking_changes(published, current) == []


def _drop_operation(spec: Spec) -> str:
    del spec["paths"]["/orders"]["get"]
    return "GET /orders: the operation is gone"


def _drop_property(spec: Spec) -> str:
    del spec["components"]["schemas"]["OrderSummaryRead"]["properties"]["grand_total"]
    return "schema OrderSummaryRead: property 'grand_total' is gone"


def _require_parameter(spec: Spec) -> str:
    spec["paths"]["/orders"]["get"]["parameters"].append(
        {"in": "query", "name": "region", "required": True, "schema": {"type": "string"}}
    )
    return "GET /orders: parameter 'region' is now required"


def _require_in_request(spec: Spec) -> str:
    spec["components"]["schemas"]["CartItemAdd"]["required"].append("quantity")
    return "schema CartItemAdd: a request must now send 'quantity'"


def _drop_enum_value(spec: Spec) -> str:
    schema = spec["components"]["schemas"]["OrderStatus"]
    schema["enum"] = [value for value in schema["enum"] if value != "cancelled"]
    return "schema OrderStatus: lost values ['cancelled']"


def _retype_property(spec: Spec) -> str:
    spec["components"]["schemas"]["Money"]["properties"]["amount"] = {"type": "string"}
    return "schema Money: property 'amount' no longer takes {'integer'}"


def _new_status(spec: Spec) -> str:
    responses = spec["paths"]["/orders"]["get"]["responses"]
    responses["202"] = responses.pop("200")
    return "GET /orders: success status ['200'] changed"


@pytest.mark.parametrize(
    "plant",
    [
        _drop_operation,
        _drop_property,
        _require_parameter,
        _require_in_request,
        _drop_enum_value,
        _retype_property,
        _new_status,
    ],
)
def test_each_kind_of_break_is_caught(
    app: FastAPI, published: Spec, plant: Callable[[Spec], str]
) -> None:
    broken = copy.deepcopy(app.openapi())
    expected = plant(broken)
    assert breaking_changes(published, broken) == [expected]


def test_additions_are_not_breaks(app: FastAPI, published: Spec) -> None:
    grown = copy.deepcopy(app.openapi())
    grown["paths"]["/orders"]["get"]["parameters"].append(
        {"in": "query", "name": "region", "required": False, "schema": {"type": "string"}}
    )
    grown["components"]["schemas"]["OrderSummaryRead"]["properties"]["note"] = {"type": "string"}
    grown["paths"]["/new-thing"] = {"get": {"responses": {"200": {}}}}
    assert breaking_changes(published, grown) == []
