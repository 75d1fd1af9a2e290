"""deploy/: the alerting rules load (promtool when installed, else their structure is checked),
and the rules and the Grafana dashboard only query metrics the gateway exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import PROJECT_DIR

RULES = PROJECT_DIR / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = PROJECT_DIR / "deploy" / "grafana" / "gateway-dashboard.json"
METRIC = re.compile(r"\bgateway_[a-z_]+\b")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


@pytest.fixture
def exposed(client, services) -> set[str]:
    """The metric names /metrics serves, consumer-group gauges included."""
    services.redis.xgroup_create(services.settings.events_stream, "g", id="0", mkstream=True)
    text = client.get("/metrics").get_data(as_text=True)
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def test_the_alerting_rules_load():
    promtool = shutil.which("promtool")
    if promtool is not None:
        done = subprocess.run(
            [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        tests = RULES.with_name("alerts_test.yml")
        done = subprocess.run(
            [promtool, "test", "rules", str(tests)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return
    # Without promtool: the structure Prometheus requires, and balanced expressions
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert group["name"] and group["rules"]
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"])
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]")


def test_the_rules_cover_backlog_lag_stuck_jobs_and_failures():
    queried = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "gateway_outbox_oldest_unpublished_age_seconds",
        "gateway_consumer_group_lag",
        "gateway_jobs_processing_idle_seconds",
        "gateway_jobs_finished_total",
    ):
        assert metric in queried


def test_rules_and_dashboard_query_only_exposed_metrics(exposed):
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    exprs += [rule["expr"] for rule in rules()]
    queried = {name for expr in exprs for name in METRIC.findall(expr)}
    assert queried and queried <= exposed, sorted(queried - exposed)
