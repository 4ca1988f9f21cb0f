"""deploy/: the alert rules and the Grafana dashboard parse (PromQL by a real PromQL parser)
and name only metrics, and labels, that the API and the worker really serve; the
Prometheus, Grafana and collector configurations agree with docker-compose.yml.

What "really serve" means: our metrics as ``core/metrics.py`` declares them, and the Temporal
SDK's as a real worker's metrics port serves them after running a workflow and an activity.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from core import metrics
from workers.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
#: Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up": {"job", "instance"}}

Known = dict[str, set[str]]  # metric name -> its label names


# --- what is served ----------------------------------------------------------------------------


def ours() -> Known:
    """Every series name our metrics expose, with their label names."""
    known: Known = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name, kind = value._name, value._type
        labels = set(value._labelnames)
        suffixes = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_count", "_sum", "_created"],
            "gauge": [""],
        }[kind]
        for suffix in suffixes:
            known[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return known


@activity.defn
async def say(text: str) -> str:
    return text


@workflow.defn(sandboxed=False)
class SayWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            say, text, start_to_close_timeout=timedelta(seconds=10)
        )


@pytest.fixture(scope="module")
async def temporal_sdk(temporal_address: str) -> Known:
    """The Temporal SDK's series as a real worker's metrics port serves them."""
    served = WorkerMetrics("127.0.0.1", 0)
    client = await Client.connect(temporal_address, runtime=served.runtime)
    served.start()
    queue = f"deploy-{uuid.uuid4().hex}"
    try:
        async with Worker(client, task_queue=queue, workflows=[SayWorkflow], activities=[say]):
            assert (
                await client.execute_workflow(
                    SayWorkflow.run, "hi", id=f"say-{uuid.uuid4().hex}", task_queue=queue
                )
                == "hi"
            )
            async with httpx.AsyncClient() as http:
                text = (await http.get(served.url)).text
    finally:
        served.close()
    known: Known = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("temporal_"):
                known.setdefault(sample.name, set()).update(sample.labels)
    return known


@pytest.fixture(scope="module")
def served(temporal_sdk: Known) -> Known:
    return {**ours(), **temporal_sdk, **PROMETHEUS_OWN}


# --- reading PromQL ----------------------------------------------------------------------------


def selectors(node: Any) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names matched) of every selector in an expression."""
    if isinstance(node, promql_parser.VectorSelector):
        names = {matcher.name for matcher in node.matchers.matchers}
        yield node.name, names
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from selectors(node.vector_selector)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from selectors(argument)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from selectors(node.expr)
        if node.param is not None:
            yield from selectors(node.param)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(
        node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
    ):
        yield from selectors(node.expr)


def grouping(node: Any) -> Iterator[tuple[set[str], Any]]:
    """(labels of a ``by (...)``, the expression it aggregates), everywhere in ``node``."""
    if isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is not None and str(node.modifier).startswith("by"):
            yield set(node.modifier.labels), node.expr
        yield from grouping(node.expr)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from grouping(node.lhs)
        yield from grouping(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from grouping(argument)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        yield from grouping(node.expr)


def check_expression(expr: str, served: Known, where: str) -> set[str]:
    """Parse ``expr``; every metric and label it names must be served. Returns the names."""
    try:
        tree = promql_parser.parse(expr)
    except Exception as error:
        raise AssertionError(f"{where}: does not parse: {error}\n{expr}") from None
    names = set()
    for name, labels in selectors(tree):
        assert name in served, f"{where}: no such metric {name!r}"
        assert labels <= served[name], f"{where}: {name} has no label {labels - served[name]}"
        names.add(name)
    for labels, inner in grouping(tree):
        for name, _ in selectors(inner):
            # What is grouped by must be a label of what is aggregated (le: histograms).
            assert labels <= served[name], f"{where}: {name} is not labelled {labels}"
    return names


# --- the tests ---------------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_alert_rules_name_only_served_metrics(served: Known) -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    used: set[str] = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        used |= check_expression(rule["expr"], served, rule["alert"])
    # What the issue asks the rules to cover, each by the metric that shows it.
    for must in (
        "emporium_checkouts_confirmed_total",  # checkout success rate falling
        "emporium_payment_declines_total",  # declines spiking by provider
        "emporium_stuck",  # orders stuck beyond their timer
        "emporium_webhooks_received_total",  # webhook signature failures
        "emporium_mail_outbox_oldest_seconds",  # outbox backlog
        "temporal_workflow_task_schedule_to_start_latency_seconds_bucket",  # task queue backlog
        "emporium_disputes_evidence_due",  # evidence deadlines near
        "emporium_payout_runs_total",  # payout run failed
    ):
        assert must in used, must


def test_a_made_up_metric_or_label_is_caught(served: Known) -> None:
    with pytest.raises(AssertionError, match="no such metric"):
        check_expression("rate(emporium_checkouts_confirmd_total[5m])", served, "typo")
    with pytest.raises(AssertionError, match="has no label"):
        check_expression('emporium_stuck{order_id="1"}', served, "id label")
    with pytest.raises(AssertionError, match="is not labelled"):
        check_expression("sum by (vendor) (emporium_stuck)", served, "grouping")
    with pytest.raises(AssertionError, match="does not parse"):
        check_expression("sum(rate(emporium_stuck[5m])", served, "syntax")


def test_the_dashboard_names_only_served_metrics(served: Known) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "emporium.json").read_text())
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    )["datasources"]
    prometheus_uid = next(ds["uid"] for ds in datasources if ds["type"] == "prometheus")
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == ["Shoppers' flow", "Payments", "Fulfilment and money out", "Platform"]
    expressions = 0
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == prometheus_uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            check_expression(target["expr"], served, panel["title"])
            expressions += 1
    assert expressions >= 30


def test_prometheus_grafana_and_the_collector_agree_with_compose() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    mounts = {
        name: {v.split(":")[0]: v.split(":")[1] for v in s.get("volumes", []) if ":" in v}
        for name, s in services.items()
    }

    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    mounted = mounts["prometheus"]
    assert mounted["./deploy/prometheus/alerts.yml"] in prometheus["rule_files"]
    assert mounted["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in prometheus["scrape_configs"]
    }
    worker_address = services["worker"]["environment"]["EMPORIUM_WORKER_METRICS_ADDRESS"]
    assert targets["emporium-worker"] == "worker:" + worker_address.rpartition(":")[2]
    assert targets["emporium-api"] == "api:8000"
    assert "8000:8000" in services["api"]["ports"]
    temporal_metrics = services["temporal"]["environment"]["PROMETHEUS_ENDPOINT"]
    assert targets["temporal-server"] == "temporal:" + temporal_metrics.rpartition(":")[2]
    # The WorkerDown rule names the worker's scrape job.
    worker_down = next(rule for rule in alert_rules() if rule["alert"] == "WorkerDown")
    assert 'job="emporium-worker"' in worker_down["expr"]

    grafana = mounts["grafana"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )["providers"][0]
    assert grafana["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    )["datasources"]
    for source in datasources:
        host = source["url"].split("//")[1].split(":")[0]
        assert host in services, source["name"]

    collector = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())
    assert mounts["otel-collector"]["./deploy/otel-collector/config.yaml"] in " ".join(
        services["otel-collector"]["command"]
    )
    for pipeline in collector["service"]["pipelines"].values():
        assert set(pipeline["receivers"]) <= set(collector["receivers"])
        assert set(pipeline["processors"]) <= set(collector["processors"])
        assert set(pipeline["exporters"]) <= set(collector["exporters"])
    for exporter in collector["exporters"].values():
        assert exporter["endpoint"].split(":")[0] in services
    otlp_http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    ours_env = compose["x-emporium"]["environment"]
    assert ours_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        "http://otel-collector:" + otlp_http.rpartition(":")[2]
    )
