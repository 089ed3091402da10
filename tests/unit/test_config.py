"""The config file: every bad file maps to its exact message (file, key, reason)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict

import exporter.config
from exporter.compose import build_router, build_settings
from exporter.config import ConfigError, load, parse, parse_duration, read_stable, validated
from exporter.records import FallbackPolicy
from tests.badfiles import assert_refused, bad_file_tests, refusal

DATA = Path(__file__).resolve().parents[1] / "testdata" / "configs"

BAD = {
    "invalid-yaml.yml": ["line 2 column 1: invalid YAML: did not find expected ',' or ']'"],
    "invalid-unknown-key.yml": ["intervall: unknown key"],
    "invalid-duration.yml": [
        "timeouts.dial: invalid duration 'fast': use 500ms, 10s, 5m, 1h, 7d or seconds"
    ],
    "invalid-negative.yml": ["timeouts.validation: must be greater than zero"],
    "invalid-policy.yml": ["policy: Input should be 'boulder' or 'per-hop'"],
    "invalid-duplicate.yml": ["domains: domain 'a.example.com' is listed twice"],
    # A name Let's Encrypt's policy refuses loads (and gets that verdict: tests/unit/
    # test_names.py); only what cannot be asked for over HTTP-01 at all is a config error.
    "invalid-domain.yml": [
        "domains[0].name: '*.example.com' is a wildcard: Let's Encrypt validates a wildcard "
        "name with DNS-01 only, never with HTTP-01; list the names it covers instead"
    ],
    "invalid-empty-domain.yml": ["domains[0].name: empty domain name"],
    "invalid-token-alone.yml": [
        "domains[0]: token and key_authorization go together: set both or neither"
    ],
    "invalid-ka.yml": ['domains[0]: key_authorization must be "<token>.<account thumbprint>"'],
    "invalid-token-chars.yml": [
        "domains[0].token: a token uses only the base64url characters A-Z a-z 0-9 _ -"
    ],
    "invalid-type.yml": [
        "concurrency: Input should be a valid integer, unable to parse string as an integer"
    ],
    "invalid-nameserver.yml": ["resolver.nameservers: 'dns.google' is not an IP address"],
    "invalid-endpoint.yml": [
        "lab.address_map.2001:db8::1.http: '10.0.0.1:80': lab endpoints must be on loopback"
    ],
    "invalid-top-level.yml": ["(top level): expected a mapping of keys to values"],
    "invalid-missing-name.yml": ["domains[0].name: required key is missing"],
    "invalid-account-uri.yml": [
        "caa.account_uris: 'acct/123' is not an ACME account URI such as "
        "https://acme-v02.api.letsencrypt.org/acme/acct/123456789",
        "domains[0].account_uris: 'http://acme.example/acct/1' is not an ACME account URI "
        "such as https://acme-v02.api.letsencrypt.org/acme/acct/123456789",
    ],
    "invalid-not-finite.yml": [
        "interval: invalid duration inf: must be a finite number of seconds",
        "jitter: invalid duration nan: must be a finite number of seconds",
    ],
    "invalid-out-of-range.yml": [
        "interval: invalid duration '1e300': use 500ms, 10s, 5m, 1h, 7d or seconds",
        "timeouts.dial: 10m is out of range: use 10ms to 5m",
        "timeouts.validation: 5ms is out of range: use 10ms to 5m",
        "resolver.timeout: 2m is out of range: use 10ms to 1m",
        "certificates.interval: 500ms is out of range: use 1s to 7d",
        "certificates.renewal_remaining: Input should be a finite number",
        "certificates.renewal_window: 400d is out of range: use 0 to 365d",
    ],
    "invalid-jitter-over-interval.yml": [
        "jitter: 10m is longer than the interval (5m): use at most the interval"
    ],
    "invalid-several.yml": [
        "timeouts.retries: unknown key",
        "probe.allow_any_target: Input should be a valid boolean, unable to interpret input",
    ],
}


test_bad_config, test_every_invalid_file_is_in_the_table, test_unreadable_file = bad_file_tests(
    load, DATA, BAD
)


def test_good_config() -> None:
    config = load(DATA / "good.yml")
    assert config.interval == 300.0
    assert config.effective_jitter == 20.0
    assert config.concurrency == 50
    assert config.policy is FallbackPolicy.PER_HOP
    assert (config.timeouts.dial, config.timeouts.validation, config.timeouts.tls) == (10, 20, 5)
    assert config.resolver.nameservers == ["127.0.0.1", "::1"]
    assert config.resolver.timeout == 0.5
    assert [d.name for d in config.domains] == [
        "example.com",
        "www.example.org",
        "xn--bcher-kva.example",
    ]
    assert config.domain("www.example.org") is not None
    routes = build_router(config)
    assert routes.route("2001:db8::1", 80) == ("::1", 8080)
    assert routes.route("2001:db8::1", 443) == ("127.0.0.1", 8443)
    assert routes.route("192.0.2.9", 80) == ("192.0.2.9", 8080)
    assert routes.route("192.0.2.9", 443) == ("192.0.2.9", 8443)
    settings = build_settings(config)
    assert settings.policy is FallbackPolicy.PER_HOP
    assert settings.addresses.allow_loopback is True
    assert settings.addresses.lab_addresses == frozenset({"2001:db8::1"})


def test_defaults() -> None:
    config = parse({})
    assert config.interval == 300.0
    assert config.effective_jitter == 30.0  # 10% of the interval
    assert config.concurrency == 100
    assert config.policy is FallbackPolicy.BOULDER
    assert (config.timeouts.dial, config.timeouts.validation, config.timeouts.tls) == (10, 20, 10)
    assert config.resolver.nameservers == []
    assert config.lab.allow_loopback is False and config.lab.allow_reserved is False
    assert config.probe.allow_any_target is False
    assert (config.caa.enabled, config.caa.account_uris) == (True, [])
    settings = build_settings(config)
    assert (settings.caa, settings.account_uris) == (True, frozenset())
    assert build_router(config).route("1.2.3.4", 80) == ("1.2.3.4", 80)


@pytest.mark.parametrize(
    "text", ["", "   \n\n", "# only a comment\n", "---\n", "---\n...\n"], ids=repr
)
def test_a_file_without_a_document_is_not_a_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yml"
    path.write_text(text)
    assert_refused(load, path, ["(top level): the file holds no YAML document (empty?)"])


def test_two_documents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.yml"
    path.write_text("interval: 1m\n---\ninterval: 2m\n")
    assert_refused(load, path, ["(top level): the file holds more than one YAML document"])


def test_an_explicit_empty_domain_list_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "none.yml"
    path.write_text("domains: []\n")
    assert load(path).domains == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        (7, 7.0),
        ("2.5", 2.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "-1s", "0", True, None, "1w"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("inf"), "interval: invalid duration inf: must be a finite number of seconds"),
        (1e300, "interval: 1e+300s is out of range: use 1s to 7d"),
        (0.5, "interval: 500ms is out of range: use 1s to 7d"),
        (8 * 86400, "interval: 8d is out of range: use 1s to 7d"),
    ],
)
def test_numbers_are_finite_and_in_range(value: float, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"interval": value}, "f.yml")
    assert caught.value.problems == [problem]


def test_every_limit_admits_its_own_bounds() -> None:
    low, high = exporter.config.LIMITS["interval"]
    assert parse({"interval": low, "jitter": low}).interval == low
    assert parse({"interval": high, "jitter": high}).jitter == high


def test_a_problem_names_keys_whole_and_validators_never() -> None:
    """A map's key is part of the location however it is spelt; the part pydantic adds
    for a union's member with a validator of its own is not a key, and is left out."""

    def refuse(value: object) -> object:
        raise ValueError("refused")

    class Model(BaseModel):
        model_config = ConfigDict(extra="forbid")
        users: dict[str, Annotated[str, AfterValidator(refuse)]] = {}
        either: int | Annotated[str, AfterValidator(refuse)] = 0

    with pytest.raises(ConfigError) as caught:
        validated(Model, {"users": {"function-x": "a"}, "either": "b", "other": 1}, "f.yml")
    assert caught.value.problems == [
        "users.function-x: refused",
        "either.int: Input should be a valid integer, unable to parse string as an integer",
        "either: refused",
        "other: unknown key",
    ]


def _load_text(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.yml"
    path.write_text(text)
    return refusal(load, path).problems


def test_yaml_nesting_is_bounded(tmp_path: Path) -> None:
    deep = "domains:\n" + "".join(f"{'  ' * i}- \n" for i in range(1, 70))
    assert _load_text(tmp_path, deep) == [
        "line 65 column 129: nested more than 64 levels deep: refused"
    ]
    shallow = "domains:\n" + "".join(f"{'  ' * i}- \n" for i in range(1, 60))
    assert _load_text(tmp_path, shallow)[0].startswith("domains[0]:")  # parsed, then refused


def test_aliases_may_not_amplify(tmp_path: Path) -> None:
    # An anchor used a few times is fine; aliases of aliases that multiply are not.
    fine = "x: &uris [https://a.example/acme/acct/1]\n"
    assert "x: unknown key" in _load_text(tmp_path, fine + "caa: {account_uris: *uris}\n")
    bomb = "a: &a [" + ", ".join(["y"] * 100) + "]\n"
    bomb += "b: &b [" + ", ".join(["*a"] * 100) + "]\n"
    assert _load_text(tmp_path, bomb) == [
        "(top level): aliases expand to more than 10,000 nodes: refused "
        "(write the values out instead of aliasing them)"
    ]


def test_file_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter.config, "MAX_FILE_BYTES", 1000)
    assert _load_text(tmp_path, "domains: []\n" + "#" * 1000 + "\n") == [
        "(top level): the file is 1,013 bytes, more than the 1,000 a config may hold"
    ]


def test_a_file_written_just_now_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file changed less than SETTLE_SECONDS ago is read again after one pause of that
    length; one changed at least that long ago is read once, with no pause. The clock is
    held still and the file's time set, and the pauses are recorded, not timed: the same
    whatever else the machine is doing."""
    pauses: list[float] = []
    monkeypatch.setattr(exporter.config.time, "sleep", pauses.append)
    now = time.time_ns()
    monkeypatch.setattr(exporter.config.time, "time_ns", lambda: now)
    settle = round(exporter.config.SETTLE_SECONDS * 1e9)
    path = tmp_path / "c.yml"
    path.write_text("domains: []\n")
    for age, expected in [(settle - 1, [exporter.config.SETTLE_SECONDS]), (settle, [])]:
        os.utime(path, ns=(now - age, now - age))
        pauses.clear()
        assert read_stable(path) == b"domains: []\n"
        assert pauses == expected, age


def test_equal_bytes_of_another_write_are_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two readings a pause apart agree only when the bytes and the file's time, size and
    inode do: the same bytes may be the same first part of two rewrites of the file."""
    now = time.time_ns()
    monkeypatch.setattr(exporter.config.time, "time_ns", lambda: now)
    path = tmp_path / "c.yml"
    path.write_text("domains: []\n")
    os.utime(path, ns=(now, now))  # just written: read again after a pause
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        if not pauses:  # rewritten during the first pause, same bytes, a new time
            path.write_text("domains: []\n")
            os.utime(path, ns=(now - 1, now - 1))
        pauses.append(seconds)

    monkeypatch.setattr(exporter.config.time, "sleep", pause)
    assert read_stable(path) == b"domains: []\n"
    assert pauses == [exporter.config.SETTLE_SECONDS] * 2


def test_an_empty_reading_is_never_settled_by_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A truncation can show the size 0 before the file's new time: an empty reading with
    an old time is read again after a pause, and taken only when it is still empty."""
    pauses: list[float] = []
    monkeypatch.setattr(exporter.config.time, "sleep", pauses.append)
    path = tmp_path / "c.yml"
    path.write_bytes(b"")
    os.utime(path, ns=(0, 0))
    assert read_stable(path) == b""
    assert pauses == [exporter.config.SETTLE_SECONDS]


def test_a_file_that_keeps_changing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporter.config, "STABLE_WAIT_SECONDS", 0.5)
    path = tmp_path / "c.yml"
    path.write_text("domains: []\n")
    stop = threading.Event()

    def keep_writing() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            path.write_text(f"domains: []  # {count}\n")
            time.sleep(0.01)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        with pytest.raises(ConfigError) as caught:
            read_stable(path)
    finally:
        stop.set()
        writer.join()
    assert caught.value.problems == [
        "(top level): the file is still changing after 0.5 s; not applied "
        "(write it elsewhere and rename it over)"
    ]
