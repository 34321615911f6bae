"""DnsOptions: defaults, normalisation, and errors that name the field."""

from __future__ import annotations

import pytest

from resolver.dns import DnsConfigError, DnsOptions
from resolver.dns.config import parse_host_port


def test_defaults_fill_in_from_the_zone() -> None:
    options = DnsOptions(zone="ID.Example")
    assert options.zone == "id.example."
    assert options.nameservers == ("ns1.id.example.",)
    assert options.transfer_allow == ("127.0.0.0/8", "::1/128")
    assert options.rrl_responses_per_second > 0 and options.rrl_slip == 2


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"zone": "."}, "zone"),
        ({"zone": "a..b"}, "zone"),
        ({"zone": "x" * 64 + ".example"}, "zone"),
        ({"zone": "z.", "nameservers": ("bad name.",)}, "nameservers"),
        ({"zone": "z.", "transfer_allow": ("not-a-network",)}, "transfer_allow"),
        ({"zone": "z.", "notify": ("localhost",)}, "notify"),
        ({"zone": "z.", "notify": ("example.net:53",)}, "notify"),
        ({"zone": "z.", "rrl_slip": -1}, "rrl_slip"),
        ({"zone": "z.", "max_tcp_connections": 0}, "max_tcp_connections"),
        ({"zone": "z.", "tcp_idle_timeout_seconds": 0}, "tcp_idle_timeout_seconds"),
    ],
)
def test_bad_values_name_their_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(DnsConfigError, match=field):
        DnsOptions(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:53", ("127.0.0.1", 53)), ("[::1]:5353", ("::1", 5353)), ("::1:0", ("::1", 0))],
)
def test_host_port_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected
