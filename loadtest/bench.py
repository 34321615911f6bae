"""`make bench`: every benchmark, each printing ratios against a reference from the same run.

Run one alone for its options: `python -m loadtest.grpc_bench --help`,
`python -m loadtest.dns_bench --help`, `python -m loadtest.http_bench --help`.
"""

from __future__ import annotations

import shutil
import sys

from loadtest import dns_bench, grpc_bench, http_bench


def main() -> int:
    print("== gRPC: registrations, imports, resolutions vs an empty call ==", flush=True)
    status = grpc_bench.main([])
    print("\n== HTTP: wrk, cached redirects and REST GETs vs the server's floor ==", flush=True)
    status = http_bench.main([]) or status
    print("\n== DNS: dnsperf against the node vs NSD serving the same zone ==", flush=True)
    if not (shutil.which("dnsperf") and shutil.which("nsd")):
        print("skipped: dnsperf and nsd are needed (make system-deps installs them)")
        return status
    return status or dns_bench.main([])


if __name__ == "__main__":
    sys.exit(main())
