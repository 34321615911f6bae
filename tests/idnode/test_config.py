"""Configuration: precedence, validation naming the key, and the documented sample."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from idnode.config import Config, ConfigError, DnsConfig, HttpConfig, load, split_host_port

SAMPLE = Path(__file__).parents[2] / "deploy" / "idnode.toml"


def test_sample_config_loads_and_documents_every_key() -> None:
    config = load(str(SAMPLE), environ={})
    assert config.node_prefix == "88.118"
    assert config == Config()  # the sample's values are the defaults it claims to show
    text = SAMPLE.read_text()
    for field in dataclasses.fields(Config):
        if field.name not in ("dns", "http"):
            assert f"\n{field.name} = " in text, field.name
    for field in dataclasses.fields(DnsConfig):
        assert f"\n{field.name} = " in text, f"dns.{field.name}"
    http_section = text.partition("\n[http]\n")[2]
    for field in dataclasses.fields(HttpConfig):
        assert f"\n{field.name} = " in "\n" + http_section, f"http.{field.name}"


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('workers = 3\nlog_level = "debug"\n[dns]\nzone = "a.example."\n')
    environ = {"IDNODE_WORKERS": "5", "IDNODE_DNS_ZONE": "b.example."}
    config = load(str(path), overrides={"workers": 7}, environ=environ)
    assert (config.workers, config.log_level, config.dns.zone) == (7, "debug", "b.example.")
    assert config.grpc_listen == ("127.0.0.1:8600",)


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        ("workers = -1\n", {}, "'workers'"),
        ('workers = "many"\n', {}, "'workers'"),
        ("map_size_bytes = 10\n", {}, "'map_size_bytes'"),
        ('log_format = "xml"\n', {}, "'log_format'"),
        ('grpc_listen = ["nohost"]\n', {}, "grpc_listen"),
        ('upstream = "x"\n', {}, "'upstream'"),
        ('[dns]\nzone = "relative"\n', {}, "'dns.zone'"),
        ("[dns]\nudp_batch = 2000\n", {}, "'dns.udp_batch'"),
        ("", {"IDNODE_DNS_UDP_BATCH": "-1"}, "IDNODE_DNS_UDP_BATCH: must be from 0"),
        ("durable = 3\n", {}, "'durable'"),
        ("bogus = 1\n", {}, "unknown config key 'bogus'"),
        ("", {"IDNODE_DURABLE": "maybe"}, "IDNODE_DURABLE"),
        ("workers = [\n", {}, "not valid TOML"),
    ],
)
def test_invalid_values_name_the_key(
    tmp_path: Path, toml: str, environ: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load(str(path), environ=environ)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "overrides", "message"),
    [
        ({"IDNODE_WORKERS": "x"}, {}, "IDNODE_WORKERS='x': expected an integer"),
        ({"IDNODE_DURABLE": "maybe"}, {}, "IDNODE_DURABLE='maybe': expected true or false"),
        (
            {"IDNODE_SHUTDOWN_GRACE_SECONDS": "soon"},
            {},
            "IDNODE_SHUTDOWN_GRACE_SECONDS='soon': expected a number",
        ),
        ({"IDNODE_WORKERS": "-1"}, {}, "IDNODE_WORKERS: must be 0 (one per core) or more"),
        ({}, {"workers": "many"}, "--workers (config key 'workers')='many': expected an integer"),
    ],
)
def test_errors_name_the_source_and_the_expected_form(
    environ: dict[str, str], overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(overrides=overrides, environ=environ)
    assert str(caught.value) == message


def test_a_file_value_is_named_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('workers = "many"\n')
    with pytest.raises(ConfigError) as caught:
        load(str(path), environ={})
    assert str(caught.value) == f"config key 'workers' in {path}='many': expected an integer"


def test_missing_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file /nonexistent\.toml"):
        load("/nonexistent.toml", environ={})


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:53", ("::1", 53)), ("host:0", ("host", 0))],
)
def test_split_host_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["", "host", ":80", "host:http", "host:70000", "[::1]"])
def test_split_host_port_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(address)


def test_http_listen_and_limits_from_the_environment_and_errors_name_the_key() -> None:
    environ = {"IDNODE_HTTP_LISTEN": "127.0.0.1:8000,[::1]:8000", "IDNODE_HTTP_MAX_BODY_BYTES": "9"}
    config = load(None, environ=environ)
    assert config.http_listen == ("127.0.0.1:8000", "[::1]:8000")
    assert config.http.max_body_bytes == 9
    with pytest.raises(ConfigError, match="IDNODE_HTTP_MAX_HEADERS: must be at least 1"):
        load(None, environ={"IDNODE_HTTP_MAX_HEADERS": "0"})
    with pytest.raises(ConfigError, match="IDNODE_HTTP_LISTEN: 'nope' is not HOST:PORT"):
        load(None, environ={"IDNODE_HTTP_LISTEN": "nope"})
