"""The config file: every bad file maps to its exact message (file, key, reason)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.compose import build_router, build_settings
from exporter.config import ConfigError, load, parse, parse_duration
from exporter.records import FallbackPolicy

DATA = Path(__file__).resolve().parents[1] / "testdata" / "configs"

BAD = {
    "invalid-yaml.yml": [
        "line 2 column 1: invalid YAML: did not find expected ',' or ']'"
    ],
    "invalid-unknown-key.yml": ["intervall: unknown key"],
    "invalid-duration.yml": [
        "timeouts.dial: invalid duration 'fast': use 500ms, 10s, 5m, 1h, 7d or seconds"
    ],
    "invalid-negative.yml": ["timeouts.validation: must be greater than zero"],
    "invalid-policy.yml": ["policy: Input should be 'boulder' or 'per-hop'"],
    "invalid-duplicate.yml": ["domains: domain 'a.example.com' is listed twice"],
    "invalid-domain.yml": ["domains[0].name: 'exa mple.com' is not a valid domain name"],
    "invalid-ip-domain.yml": [
        "domains[0].name: '192.0.2.1' is an IP address; only DNS names are validated"
    ],
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
    "invalid-several.yml": [
        "timeouts.retries: unknown key",
        "probe.allow_any_target: Input should be a valid boolean, unable to interpret input",
    ],
}


@pytest.mark.parametrize("name", sorted(BAD), ids=lambda n: n.removesuffix(".yml"))
def test_bad_config(name: str) -> None:
    path = DATA / name
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.problems == BAD[name]
    assert str(caught.value) == "\n".join(f"{path}: {p}" for p in BAD[name])


def test_every_invalid_file_is_in_the_table() -> None:
    assert {p.name for p in DATA.glob("invalid-*.yml")} == set(BAD)


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as caught:
        load(missing)
    assert str(caught.value) == f"{missing}: cannot read the file: No such file or directory"


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
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == f"{path}: (top level): the file holds no YAML document (empty?)"


def test_two_documents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.yml"
    path.write_text("interval: 1m\n---\ninterval: 2m\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.problems == ["(top level): the file holds more than one YAML document"]


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
