"""What workflows, activities, the API and the worker agree on, one pure module per domain.

Each module holds a domain's workflow ids, signal/update/query names, status enums, the
dataclasses that go in and out of its workflows and activities, and the activity interfaces
(``OrderActivities`` and the like) that workflows call through typed method references and
``activities/`` implements. Nothing here does I/O or imports anything of ours outside this
package, so every layer may import it (import-linter keeps it so: see pyproject.toml).

Changing a dataclass here changes what is in running workflows' histories: add fields with
defaults, never rename or remove one while a workflow that uses it may still be running.
"""
