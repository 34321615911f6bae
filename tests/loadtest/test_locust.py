"""Locust against real nodes: the smoke run of `make loadtest`, and what makes a run fail."""

from __future__ import annotations

import contextlib
import random
import re
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest import node as node_process
from loadtest.grpc_load import create_enterprise, seed
from loadtest.locust_run import verdict
from loadtest.mix import EXISTING_SHARE, Identifiers, dns_name
from resolver.dns import dns_name as node_dns_name

LOCUST = str(Path(sys.executable).parent / "locust")
LOCUSTFILE = str(Path(__file__).parents[2] / "loadtest" / "locustfile.py")


def test_ten_second_smoke_run_has_requests_of_every_kind_and_no_error() -> None:
    """What `make test` runs of `make loadtest`: any error response, or no requests, fails."""
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.locust_run", "--seconds", "10", "--users", "10",
         "--spawn-rate", "10", "--seed", "300"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    for kind, name in [("grpc", "Resolve existing"), ("grpc", "Resolve missing"),
                       ("grpc", "Create"), ("dns", "TXT existing"), ("dns", "TXT missing"),
                       ("GET", "/{identifier}"), ("GET", "/api/handles/{identifier}")]:  # fmt: skip
        line = rf"^{kind}\s+{re.escape(name)}\s+(\d+)\s+0\("
        found = re.search(line, output, re.MULTILINE)
        assert found and int(found.group(1)) > 0, f"no {kind} {name} requests:\n{output[-3000:]}"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[node_process.Node]:
    started = node_process.start(node_process.default_idnode(), str(tmp_path / "data"), 1, True)
    yield started
    started.stop()


def test_a_run_fails_when_an_identifier_said_to_exist_does_not(
    node: node_process.Node, tmp_path: Path
) -> None:
    prefix = create_enterprise(node.grpc, node.token, "70")
    seed(node.grpc, node.token, f"{prefix}/e{{}}", 5)
    identifiers = tmp_path / "ids.txt"
    identifiers.write_text("".join(f"{prefix}/e{i}\n" for i in range(5)) + f"{prefix}/never\n")
    host, port = node.dns
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.locust_run", "--seconds", "3", "--users", "4",
         "--spawn-rate", "4", "--grpc-address", node.grpc, "--dns-address", f"{host}:{port}",
         "--identifiers-file", str(identifiers)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "grpc Resolve existing requests failed" in done.stderr
    assert "dns TXT existing requests failed" in done.stderr
    assert "grpc Create" not in done.stderr  # no token given: the users only resolved


class _SlowDns:
    """Answers every query NXDOMAIN after DELAY_SECONDS, many at once (a thread per query)."""

    DELAY_SECONDS = 0.2

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                wire, source = self.sock.recvfrom(4096)
            except OSError:
                return
            self.queries += 1
            threading.Thread(target=self._answer, args=(wire, source), daemon=True).start()

    def _answer(self, wire: bytes, source: tuple[str, int]) -> None:
        time.sleep(self.DELAY_SECONDS)
        reply = dns.message.make_response(dns.message.from_wire(wire))
        reply.set_rcode(dns.rcode.NXDOMAIN)
        with contextlib.suppress(OSError):  # closed at the end of the test
            self.sock.sendto(reply.to_wire(), source)


def test_dns_users_wait_for_answers_without_blocking_each_other(tmp_path: Path) -> None:
    """20 users on a server that takes 0.2 s per answer: were dns.query.udp blocking under
    gevent, one process would manage 5 queries a second; cooperative, about 100."""
    server = _SlowDns()
    identifiers = tmp_path / "ids.txt"
    identifiers.write_text("88.118.8/x\n")
    seconds = 4
    subprocess.run(
        [LOCUST, "-f", LOCUSTFILE, "DnsUser", "--headless", "--only-summary", "-u", "20",
         "-r", "20", "-t", f"{seconds}s", "--dns-address", f"127.0.0.1:{server.port}",
         "--identifiers", str(identifiers)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    server.sock.close()
    assert server.queries > 10 * seconds * 3, f"only {server.queries} queries in {seconds} s"


suffixes = st.text(alphabet=string.ascii_letters + string.digits + "-_./:", min_size=1, max_size=90)


@given(suffix=suffixes, prefix=st.sampled_from(["88.118.8", "88.118", "86.100.2.7"]))
def test_locust_dns_names_are_the_nodes(suffix: str, prefix: str) -> None:
    identifier = f"{prefix}/{suffix}"
    expected = node_dns_name(identifier, "id.example.")
    if expected is not None:
        assert dns_name(identifier, "id.example.") == expected


def test_four_in_five_resolutions_ask_for_existing_identifiers() -> None:
    random.seed(7)
    identifiers = Identifiers("")
    picks = [identifiers.pick() for _ in range(10_000)]
    share = sum(exists for _, exists in picks) / len(picks)
    assert abs(share - EXISTING_SHARE) < 0.02
    missing = [name for name, exists in picks if not exists]
    assert all(name not in identifiers.existing for name in missing)
    assert {name.partition("/")[0] for name in missing} <= set(identifiers.prefixes)


def test_a_run_fails_on_any_failure_or_a_silent_user_kind() -> None:
    clean = [
        {"method": "grpc", "name": "Resolve existing", "num_requests": 10, "num_failures": 0},
        {"method": "dns", "name": "TXT existing", "num_requests": 5, "num_failures": 0},
    ]
    assert verdict(clean) == []
    failing = [*clean, {"method": "grpc", "name": "Create", "num_requests": 4, "num_failures": 1}]
    assert verdict(failing) == ["1 of 4 grpc Create requests failed"]
    assert verdict(clean[:1]) == ["no dns requests were made"]
    assert verdict([]) == ["no grpc requests were made", "no dns requests were made"]
    assert verdict(clean, ("grpc", "dns", "GET")) == ["no GET requests were made"]
