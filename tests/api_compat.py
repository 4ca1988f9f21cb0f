"""What clients of API version 1 may rely on, checked: the schema of ``/openapi.json`` against
the published snapshot ``api/openapi-v1.json`` (README, "Versioning").

Within a major version the API only grows. ``breaking_changes(published, current)`` lists
every way ``current`` would break a client written against ``published``:

- an operation (path and method) or its success status is gone or changed;
- a parameter became required, or a required one appeared;
- a schema lost a property, or a property changed its type or lost an enum value;
- a request body's schema requires a property it did not.

New operations, optional parameters, response properties and enum values are additions: a
client ignores properties and values it does not know (the README says so), so they are not
breaks. ``make api-snapshot`` writes the snapshot anew after an addition (or with a new major
version).

Run as ``python -m tests.api_compat --write`` to write the snapshot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parent.parent / "api" / "openapi-v1.json"

Spec = dict[str, Any]


def _ref_name(schema: Spec) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _refs(schema: Any) -> set[str]:
    """Every component a schema names, directly or inside it."""
    found: set[str] = set()
    if isinstance(schema, dict):
        name = _ref_name(schema)
        if name is not None:
            found.add(name)
        for value in schema.values():
            found |= _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _refs(value)
    return found


def _request_schemas(spec: Spec) -> set[str]:
    """Components a client sends: request bodies and what they contain."""
    schemas = spec.get("components", {}).get("schemas", {})
    todo = {
        name
        for operations in spec["paths"].values()
        for operation in operations.values()
        for name in _refs(operation.get("requestBody", {}))
    }
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo |= _refs(schemas[name]) - seen
    return seen


def _types(schema: Spec) -> set[str]:
    """The JSON types a property may have (``anyOf`` flattened; a ``$ref`` is its name)."""
    if "anyOf" in schema:
        return set().union(*(_types(option) for option in schema["anyOf"]))
    name = _ref_name(schema)
    if name is not None:
        return {f"#{name}"}
    kind = schema.get("type")
    if isinstance(kind, list):
        return set(kind)
    return {kind} if kind else {"any"}


def _enum(schema: Spec) -> set[Any]:
    if "anyOf" in schema:
        return set().union(*(_enum(option) for option in schema["anyOf"]))
    return set(schema.get("enum", ()))


def _success(operation: Spec) -> set[str]:
    return {status for status in operation.get("responses", {}) if status.startswith("2")}


def breaking_changes(published: Spec, current: Spec) -> list[str]:
    """How ``current`` breaks clients of ``published``; empty when it does not."""
    broken: list[str] = []
    for path, operations in published["paths"].items():
        for method, old in operations.items():
            new = current["paths"].get(path, {}).get(method)
            where = f"{method.upper()} {path}"
            if new is None:
                broken.append(f"{where}: the operation is gone")
                continue
            if not _success(old) <= _success(new):
                broken.append(f"{where}: success status {sorted(_success(old))} changed")
            old_params = {(p["in"], p["name"]): p for p in old.get("parameters", [])}
            for param in new.get("parameters", []):
                key = (param["in"], param["name"])
                was = old_params.get(key)
                if param.get("required") and not (was and was.get("required")):
                    broken.append(f"{where}: parameter {param['name']!r} is now required")
            if new.get("requestBody", {}).get("required") and not old.get("requestBody"):
                broken.append(f"{where}: a request body is now required")

    old_schemas = published.get("components", {}).get("schemas", {})
    new_schemas = current.get("components", {}).get("schemas", {})
    sent = _request_schemas(published)
    for name, old in old_schemas.items():
        new = new_schemas.get(name)
        if new is None:
            broken.append(f"schema {name}: gone")
            continue
        new_properties = new.get("properties", {})
        for prop, old_prop in old.get("properties", {}).items():
            if prop not in new_properties:
                broken.append(f"schema {name}: property {prop!r} is gone")
                continue
            new_prop = new_properties[prop]
            if not _types(new_prop) >= _types(old_prop) and name in sent:
                broken.append(
                    f"schema {name}: property {prop!r} no longer takes {_types(old_prop)}"
                )
            if name not in sent and not _types(new_prop) <= _types(old_prop):
                broken.append(f"schema {name}: property {prop!r} may now be {_types(new_prop)}")
            lost = _enum(old_prop) - _enum(new_prop) if _enum(new_prop) else set()
            if lost:
                broken.append(f"schema {name}: property {prop!r} lost values {sorted(lost)}")
        if name in sent:
            newly = set(new.get("required", ())) - set(old.get("required", ()))
            for prop in sorted(newly):
                broken.append(f"schema {name}: a request must now send {prop!r}")
        lost_values = set(old.get("enum", ())) - set(new.get("enum", ()))
        if lost_values and "enum" in new:
            broken.append(f"schema {name}: lost values {sorted(lost_values)}")
    return broken


def current_spec() -> Spec:
    from api.app import create_app

    return create_app().openapi()


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    SNAPSHOT.write_text(json.dumps(current_spec(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
