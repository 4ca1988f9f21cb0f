from __future__ import annotations

import json
import logging

from core.logs import JsonFormatter, request_id_var


def _format(**extra: object) -> dict[str, object]:
    record = logging.LogRecord("emporium.test", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_a_line_is_one_json_object_with_the_basics() -> None:
    entry = _format()
    assert entry["message"] == "hello x"
    assert entry["level"] == "info"
    assert entry["logger"] == "emporium.test"
    assert "request_id" not in entry


def test_the_current_request_id_is_on_the_line() -> None:
    token = request_id_var.set("req-123")
    try:
        assert _format()["request_id"] == "req-123"
    finally:
        request_id_var.reset(token)


def test_extras_are_kept_and_secret_looking_ones_redacted() -> None:
    entry = _format(
        order_id="o-1", password="hunter2", refresh_token="abc", authorization="Bearer x"
    )
    assert entry["order_id"] == "o-1"
    assert entry["password"] == "[redacted]"
    assert entry["refresh_token"] == "[redacted]"
    assert entry["authorization"] == "[redacted]"
