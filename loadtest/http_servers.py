"""Which HTTP server stack: each candidate's minimal handler measured with `wrk`, interleaved.

Every candidate serves one fixed, already encoded response (what a cache hit
of the HTTP face writes) from a server thread with its own event loop inside
one process, as a node worker runs it, on a socket bound with SO_REUSEPORT.
`wrk` drives it over keep-alive connections; the server's CPU time comes from
/proc, so "µs/request" is the cost one worker core pays per request.
Rounds interleave the candidates; medians and the spread (min-max) are printed.

    python -m loadtest.http_servers [--seconds 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

BODY = b'{"responseCode":1,"handle":"88.118.8/JXDY2106023","values":[]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
CANDIDATES = (
    "uvicorn-raw",
    "uvicorn-starlette",
    "uvicorn-h11-raw",
    "aiohttp-lowlevel",
    "aiohttp-web",
    "granian-asgi",
    "granian-rsgi",
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest ASGI app: the response is ready before the request arrives."""
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _uvicorn(app: Any, sock: socket.socket, http: str) -> None:
    import uvicorn
    import uvloop

    config = uvicorn.Config(
        app, http=http, loop="none", lifespan="off", access_log=False, log_level="warning"
    )
    loop = uvloop.new_event_loop()
    loop.run_until_complete(uvicorn.Server(config).serve(sockets=[sock]))


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", endpoint)])


def _aiohttp(sock: socket.socket, lowlevel: bool) -> None:
    import uvloop
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    async def run() -> None:
        runner: web.BaseRunner
        if lowlevel:
            runner = web.ServerRunner(web.Server(handler), access_log=None)
        else:
            app = web.Application()
            app.router.add_get("/{path:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()

    uvloop.new_event_loop().run_until_complete(run())


def _granian(port: int, interface: str) -> None:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    async def rsgi_app(scope: Any, protocol: Any) -> None:
        protocol.response_bytes(200, [("content-type", "application/json")], BODY)

    target = rsgi_app if interface == "rsgi" else raw_app
    kind = Interfaces.RSGI if interface == "rsgi" else Interfaces.ASGINL
    server = Server(target, address="127.0.0.1", port=port, interface=kind, log_enabled=False)
    asyncio.new_event_loop().run_until_complete(server.serve())


def serve(kind: str, port: int) -> None:
    """Run candidate `kind` in a server thread; print the port; wait to be killed."""
    if kind.startswith("granian"):
        port = port or _free_port()
        target: Callable[[], None] = lambda: _granian(port, kind.split("-")[1])  # noqa: E731
    else:
        sock = _listening_socket("127.0.0.1", port)
        port = sock.getsockname()[1]
        targets: dict[str, Callable[[], None]] = {
            "uvicorn-raw": lambda: _uvicorn(raw_app, sock, "httptools"),
            "uvicorn-h11-raw": lambda: _uvicorn(raw_app, sock, "h11"),
            "uvicorn-starlette": lambda: _uvicorn(_starlette_app(), sock, "httptools"),
            "aiohttp-lowlevel": lambda: _aiohttp(sock, lowlevel=True),
            "aiohttp-web": lambda: _aiohttp(sock, lowlevel=False),
        }
        target = targets[kind]
    threading.Thread(target=target, name="http", daemon=True).start()
    print(port, flush=True)
    threading.Event().wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The measuring side ----------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid`, all its threads."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, seconds: float, connections: int) -> int:
    """Requests completed by `wrk` (one thread, keep-alive) against `url`."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} error responses\n{out}")
    found = re.search(r"(\d+) requests in", out)
    if found is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return int(found.group(1))


def start(kind: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "loadtest.http_servers", "--serve", kind],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    port = int(process.stdout.readline())
    for _ in range(100):  # granian binds in its own thread, after printing the port
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, port


def measure(kind: str, seconds: float, connections: int) -> tuple[float, float]:
    """(requests per second, server CPU µs per request) of one candidate, one round."""
    process, port = start(kind)
    try:
        url = f"http://127.0.0.1:{port}/88.118.8/JXDY2106023"
        run_wrk(url, 1, connections)  # warm-up
        cpu_before = cpu_seconds(process.pid)
        started = time.perf_counter()
        requests = run_wrk(url, seconds, connections)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(process.pid) - cpu_before
    finally:
        process.kill()
        process.wait()
    return requests / elapsed, cpu / requests * 1e6


def _installed(kind: str) -> bool:
    """Whether the library a candidate needs beyond the node's own uvicorn is installed."""
    extra = {"uvicorn-starlette": "starlette"}.get(kind, kind.split("-")[0])
    return extra == "uvicorn" or importlib.util.find_spec(extra) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", nargs="*", default=list(CANDIDATES), choices=CANDIDATES)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if shutil.which("wrk") is None:
        print("skipped: wrk is needed (make system-deps installs it)")
        return 0
    missing = [kind for kind in args.only if not _installed(kind)]
    if missing:
        print(
            f"skipped (not installed; pip install -e '.[serverchoice]'): {', '.join(missing)}",
            file=sys.stderr,
        )
    results: dict[str, list[tuple[float, float]]] = {
        kind: [] for kind in args.only if kind not in missing
    }
    args.only = list(results)
    for round_number in range(args.rounds):
        for kind in args.only if round_number % 2 == 0 else reversed(args.only):
            results[kind].append(measure(kind, args.seconds, args.connections))
            rate, cpu = results[kind][-1]
            print(f"round {round_number + 1} {kind}: {rate:,.0f}/s {cpu:.1f} µs", file=sys.stderr)
    print(f"{'server stack':<20} {'requests/s':>22} {'server CPU µs/request':>26}")
    for kind, samples in results.items():
        rates, cpus = [s[0] for s in samples], [s[1] for s in samples]
        print(
            f"{kind:<20} {statistics.median(rates):>10,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
            f" {statistics.median(cpus):>12.1f} ({min(cpus):.1f}-{max(cpus):.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
