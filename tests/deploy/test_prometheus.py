"""deploy/prometheus: the alerting rules parse and fire and clear on synthetic series (promtool), and every
metric they, the Grafana dashboard and docs/operations.md name is one StudyShelf exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import studyshelf.app  # noqa: F401 - registers every metric of a web process
from studyshelf.settings import Settings
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
NODE_EXPORTER = frozenset({"node_filesystem_avail_bytes", "node_filesystem_size_bytes"})
METRIC_NAME = re.compile(r"\b(?:studyshelf|node)_[a-z_]+\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    require_service(found is not None, "promtool (Debian's prometheus package)")
    assert found is not None
    return found


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603 - fixed arguments


def exported_names() -> set[str]:
    """Every series name this process's metrics can expose."""
    names = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
        else:
            names.add(family.name)
    return {name for name in names if name.startswith("studyshelf_")}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((PROMETHEUS / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_rules_are_valid(promtool: str) -> None:
    checked = run(promtool, "check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


def test_the_scrape_config_is_valid_and_scrapes_instances_and_workers(promtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load((PROMETHEUS / "scrape.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"studyshelf", "studyshelf-worker"}
    assert jobs["studyshelf-worker"]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{Settings.model_fields['worker_metrics_port'].default}"
    ]
    # promtool reads the token file and the rule file: a copy with a token beside it.
    token = tmp_path / "token"
    token.write_text("a-metrics-token")
    jobs["studyshelf"]["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(PROMETHEUS / "rules.yml")]
    (tmp_path / "scrape.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run(  # noqa: S603 - fixed arguments
        [promtool, "check", "config", str(tmp_path / "scrape.yml")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_rule_fires_and_clears_on_synthetic_series(promtool: str) -> None:
    tested = run(promtool, "test", "rules", "tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    tests = yaml.safe_load((PROMETHEUS / "tests.yml").read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    cleared = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"][0]["rules"]
    assert firing == cleared == {rule["alert"] for rule in rules}


def test_the_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    records = [{"record": f"dashboard:panel{i}", "expr": expr} for i, expr in enumerate(dashboard_queries())]
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    checked = subprocess.run(  # noqa: S603 - fixed arguments
        [promtool, "check", "rules", str(tmp_path / "dashboard.yml")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"][0]["rules"]
    queries = [rule["expr"] for rule in rules] + dashboard_queries()
    named = {name for expr in queries for name in METRIC_NAME.findall(expr)}
    assert named - exported_names() - NODE_EXPORTER == set()


def test_every_metric_is_documented() -> None:
    documented = (ROOT / "docs" / "operations.md").read_text()
    missing = {
        name
        for name in exported_names()
        if name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") not in documented
    }
    assert missing == set()


def test_the_alertmanager_example_routes_to_its_receivers() -> None:
    config = yaml.safe_load((PROMETHEUS / "alertmanager.yml").read_text())
    receivers = {receiver["name"] for receiver in config["receivers"]}
    route = config["route"]
    assert {route["receiver"], *(child["receiver"] for child in route["routes"])} <= receivers
