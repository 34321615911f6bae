"""Locust scenarios against a node: partner systems over gRPC, resolvers over DNS, phones
and scripts over HTTP.

    make loadtest                                  # starts a node, seeds it, runs 60 s
    .venv/bin/locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 60s \\
        --grpc-address 127.0.0.1:8600 --dns-address 127.0.0.1:8653 \\
        --identifiers ids.txt --token "$IDNODE_TOKEN" --host http://127.0.0.1:8000

Each user class lives in its own module; `locust -f loadtest/locustfile.py
GrpcUser` runs one alone. The options (`locust --help`, group "idnode") name
the node's addresses, the identifiers that exist and the token registrations use;
the HTTP user takes Locust's own --host.
"""

from loadtest import locust_common  # noqa: F401  (registers the idnode options)
from loadtest.locust_dns import DnsUser
from loadtest.locust_grpc import GrpcUser
from loadtest.locust_http import HttpResolverUser

__all__ = ["DnsUser", "GrpcUser", "HttpResolverUser"]
