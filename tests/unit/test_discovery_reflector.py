"""The reflector's list and watch protocol, against a fake API server (httpx2's MockTransport).

What a real API server does is tested in tests/integration/test_discovery_kubernetes.py;
here each rule of the protocol is driven exactly: the pages of a list, the parameters of a
watch, bookmarks, 410 Gone as a status and as an ERROR event, and failures that keep the copy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from exporter.discovery import kubernetes
from exporter.discovery.kubernetes import INGRESS, Reflector
from exporter.discovery.status import Reason, SourceName, Status
from tests.kubeobjects import ingress


class FakeAPI:
    """Answers each request with the next scripted answer; records the requests."""

    def __init__(self, answers: list[Callable[[httpx2.Request], httpx2.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx2.Request] = []
        self.done = asyncio.Event()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if not self.done.is_set():
            self.requests.append(request)  # the script's, and the first refused one
        if not self.answers:
            self.done.set()
            raise httpx2.ConnectError("no more answers", request=request)
        return self.answers.pop(0)(request)


def page(items: list[dict[str, Any]], version: str, token: str = "") -> Callable[..., Any]:
    body = {"items": items, "metadata": {"resourceVersion": version, "continue": token}}
    return lambda request: httpx2.Response(200, json=body)


def events(*lines: dict[str, Any]) -> Callable[..., Any]:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    return lambda request: httpx2.Response(200, content=text.encode())


def status(code: int, message: str = "") -> Callable[..., Any]:
    return lambda request: httpx2.Response(
        code, json={"kind": "Status", "code": code, "message": message}
    )


def obj(name: str, version: str, *hosts: str) -> dict[str, Any]:
    item = ingress(list(hosts), namespace="ns", name=name)
    item["metadata"]["resourceVersion"] = version
    item["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    return item


async def run(api: FakeAPI) -> tuple[Reflector, Status, list[int]]:
    """Run a reflector until the script is used up (then the fake refuses to connect)."""
    st = Status(SourceName.KUBERNETES, "Ingress")
    changes: list[int] = []
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(api), base_url="https://api")
    reflector = Reflector(client, INGRESS, None, "team=web", st, lambda: changes.append(1))
    task = asyncio.create_task(reflector.run())
    await asyncio.wait_for(api.done.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.aclose()
    return reflector, st, changes


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes, "BACKOFF", (0.0, 0.0))


async def test_a_list_in_pages_then_a_watch_from_its_version_with_bookmarks() -> None:
    api = FakeAPI(
        [
            page([obj("a", "5", "a.example")], "10", token="next"),
            page([obj("b", "7", "b.example")], "10"),
            events(
                {"type": "ADDED", "object": obj("c", "11", "c.example")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}},
                {"type": "MODIFIED", "object": obj("a", "16", "a2.example")},
                {"type": "DELETED", "object": obj("b", "17")},
            ),
            events({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}}),
        ]
    )
    reflector, st, changes = await run(api)
    first, second, watch, resumed = api.requests[:4]
    assert first.url.params["limit"] == "500" and "continue" not in first.url.params
    assert second.url.params["continue"] == "next"
    assert first.url.params["labelSelector"] == "team=web"
    assert watch.url.path == "/apis/networking.k8s.io/v1/ingresses"
    assert watch.url.params["watch"] == "1"
    assert watch.url.params["resourceVersion"] == "10"  # the list's version
    assert watch.url.params["allowWatchBookmarks"] == "true"
    assert 300 <= int(watch.url.params["timeoutSeconds"]) <= 600
    assert watch.url.params["labelSelector"] == "team=web"
    assert resumed.url.params["resourceVersion"] == "17"  # the last event's, no relist
    assert len(api.requests) == 5  # the refused connection after the script: never a LIST
    assert sorted(reflector.objects) == ["ns/a", "ns/c"]
    assert reflector.objects["ns/a"]["spec"]["rules"][0]["host"] == "a2.example"
    assert "managedFields" not in reflector.objects["ns/a"]["metadata"]  # trimmed
    assert reflector.version == "20"  # a bookmark moves the version, changes nothing
    assert len(changes) == 1 + 3  # the list, then ADDED, MODIFIED, DELETED
    assert set(st.errors) == {Reason.UNREACHABLE}  # only after the script


@pytest.mark.parametrize(
    "gone",
    [
        status(410, "too old resource version"),
        events({"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "expired"}}),
    ],
    ids=["410-status", "410-error-event"],
)
async def test_gone_lists_again_and_replaces_the_copy(gone: Callable[..., Any]) -> None:
    api = FakeAPI(
        [
            page([obj("a", "5", "a.example"), obj("b", "6", "b.example")], "10"),
            gone,
            page([obj("a", "5", "a.example"), obj("c", "30", "c.example")], "31"),
            events(),
        ]
    )
    reflector, st, _ = await run(api)
    relist, watch = api.requests[2:4]
    assert "watch" not in relist.url.params and relist.url.params["limit"] == "500"
    assert watch.url.params["resourceVersion"] == "31"
    assert sorted(reflector.objects) == ["ns/a", "ns/c"]  # b's deletion, missed, is seen
    assert st.errors[Reason.GONE] == 1


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (status(403, "ingresses is forbidden"), Reason.FORBIDDEN),
        (status(401), Reason.UNAUTHORIZED),
        (status(404), Reason.NOT_FOUND),
        (status(500), Reason.SERVER_ERROR),
        (lambda request: httpx2.Response(200, content=b"<html>"), Reason.SERVER_ERROR),
    ],
)
async def test_a_failure_keeps_the_copy_and_resumes_the_watch(
    answer: Callable[..., Any], reason: Reason
) -> None:
    api = FakeAPI([page([obj("a", "5", "a.example")], "10"), answer, events()])
    reflector, st, _ = await run(api)
    assert list(reflector.objects) == ["ns/a"]  # kept
    assert st.errors[reason] == 1
    assert api.requests[2].url.params["resourceVersion"] == "10"  # resumed, not relisted
    assert not st.up  # the last attempt (after the script) failed


async def test_a_forbidden_first_list_is_attempted_and_not_synced() -> None:
    api = FakeAPI([status(403, "forbidden")])
    reflector, st, changes = await run(api)
    assert reflector.attempted and not reflector.synced
    assert changes  # the owner is told: it must not wait for this kind to become ready
    assert st.errors[Reason.FORBIDDEN] == 1
