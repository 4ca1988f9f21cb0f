"""README, docker-compose.yml and the code must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cli.main import build_parser
from core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
#: Standard variables of other projects that our processes read (OpenTelemetry's exporter).
ALIASES = {
    "ELASTICSEARCH_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
}


def _mentioned(text: str) -> set[str]:
    return set(re.findall(r"\bEMPORIUM_[A-Z0-9_]+\b", text))


def test_readme_documents_every_setting_and_only_real_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    table = {line.split("|")[1] for line in readme.splitlines() if line.startswith("| `EMPORIUM_")}
    documented = _mentioned(" ".join(table))
    assert documented == SETTING_NAMES
    assert _mentioned(readme) <= SETTING_NAMES


def test_compose_sets_only_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    ours = {name: service for name, service in compose["services"].items() if "build" in service}
    assert set(ours) == {"migrate", "api", "worker"}
    for name, service in ours.items():
        unknown = set(service["environment"]) - SETTING_NAMES - ALIASES
        assert not unknown, (name, unknown)


def test_compose_services_are_healthchecked_and_run_real_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    one_shot = {"temporal-schema", "temporal-init", "migrate"}
    for name, service in compose["services"].items():
        if name in one_shot:
            assert str(service["restart"]).startswith("on-failure"), name
        else:
            assert "healthcheck" in service, name
        command = service.get("command")
        if isinstance(command, list) and command[0] == "emporium":
            assert command[1] in commands, (name, command)
        health = service.get("healthcheck", {}).get("test", [])
        if health[:2] == ["CMD", "emporium"]:
            assert health[2] in commands, (name, health)
    for app in ("api", "worker"):
        for dependency in ("migrate", "temporal-init"):
            condition = compose["services"][app]["depends_on"][dependency]["condition"]
            assert condition == "service_completed_successfully", (app, dependency)
