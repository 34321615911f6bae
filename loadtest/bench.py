"""`make bench`: every benchmark, each printing ratios against a reference from the same run."""

from __future__ import annotations

import sys

from loadtest import grpc_bench


def main() -> int:
    print("== gRPC: registrations, imports, resolutions vs an empty call ==", flush=True)
    return grpc_bench.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
