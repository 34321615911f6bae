"""Locust DNS user: a resolver asking the node's zone for identifiers' TXT records over UDP.

dns.query.udp is plain socket I/O with a selector wait, which Locust's gevent
monkey-patching makes cooperative: many users share one process without blocking.
"""

from __future__ import annotations

import time

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from locust import User, between, task

from loadtest.locust_common import identifiers
from loadtest.mix import dns_name

TIMEOUT_SECONDS = 2.0


class DnsUser(User):
    """Only resolves (DNS has no writes): four in five names exist, one in five does not.

    Reported as request type "dns": "TXT existing" must answer NOERROR with
    records, "TXT missing" NXDOMAIN; anything else, or no answer in
    TIMEOUT_SECONDS, is a failure.
    """

    wait_time = between(0.0, 0.01)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self._identifiers = identifiers(options)
        address = options.dns_address if options else "127.0.0.1:8653"
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._zone = options.zone if options else "id.example."

    @task
    def resolve(self) -> None:
        identifier, exists = self._identifiers.pick()
        query = dns.message.make_query(dns_name(identifier, self._zone), dns.rdatatype.TXT)
        started = time.perf_counter()
        failure: Exception | None = None
        length = 0
        try:
            answer = dns.query.udp(query, self._host, port=self._port, timeout=TIMEOUT_SECONDS)
            length = len(answer.to_wire())
            failure = _judge(answer, exists)
        except (dns.exception.DNSException, OSError) as error:
            failure = error
        self.environment.events.request.fire(
            request_type="dns",
            name="TXT existing" if exists else "TXT missing",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=failure,
            context={},
        )


def _judge(answer: dns.message.Message, exists: bool) -> Exception | None:
    """None when the answer is the one expected, else what was wrong with it."""
    rcode = answer.rcode()
    if exists and (rcode != dns.rcode.NOERROR or not answer.answer):
        return AssertionError(f"expected records, got {dns.rcode.to_text(rcode)}")
    if not exists and rcode != dns.rcode.NXDOMAIN:
        return AssertionError(f"expected NXDOMAIN, got {dns.rcode.to_text(rcode)}")
    return None
