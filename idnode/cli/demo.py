"""`make run`: a node on ./var with a demo enterprise and identifiers, then `idnode serve`."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import sys

from idnode.cli.serve import add_node_flags, load_config, reload_config
from idnode.config import Config, ConfigError
from proto import handle_pb2

DEMO_CODE = "8"
PR_SET_PDEATHSIG = 1
DEMO_IDENTIFIERS = {
    "JXDY2106023": [
        ("URL", "https://example.com/products/JXDY2106023"),
        ("product.name", "Variable-frequency drive JX-DY 7.5 kW"),
        ("batch", "2021-06"),
    ],
    "abc-1": [("URL", "https://example.com/products/abc-1"), ("EMAIL", "service@example.com")],
    "pump/2024/0001": [
        ("URL.manual", "https://example.com/manuals/pump-2024.pdf"),
        ("cert.url", "https://example.com/certs/pump-2024-0001"),
    ],
}


def seed(config: Config) -> tuple[str, str | None]:
    """Create the demo enterprise and identifiers when absent.

    Returns the enterprise prefix and its token (None when it already existed;
    the token from the first run is in DATA_DIR/demo-enterprise.token).
    """
    from idnode.node.parts import open_store
    from registry import accounts
    from registry.errors import HandleAlreadyExists
    from registry.registry import Registry

    store = open_store(config)
    try:
        registry = Registry(store, config.node_prefix)
        registry.ensure_node_prefix()
        admin_token = os.environ.get("IDNODE_ADMIN_TOKEN") or None
        created_admin = accounts.ensure_admin(store, admin_token)
        if created_admin:
            _keep(config, "admin.token", created_admin)
        admin = handle_pb2.Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN)
        prefix = f"{registry.node_prefix}.{DEMO_CODE}"
        token = None
        home = registry.home(prefix)
        if home is None or home.prefix != prefix:
            enterprise = registry.create_enterprise(
                admin, code=DEMO_CODE, name="Demo Drives Co.", contact="ops@example.com"
            )
            token = enterprise.token
            _keep(config, "demo-enterprise.token", token)
        for suffix, pairs in DEMO_IDENTIFIERS.items():
            values = [
                handle_pb2.HandleValue(index=i, type=t, data=d.encode())
                for i, (t, d) in enumerate(pairs, start=1)
            ]
            with contextlib.suppress(HandleAlreadyExists):
                registry.create(admin, f"{prefix}/{suffix}", values)
        return prefix, token
    finally:
        store.close()


def _keep(config: Config, name: str, token: str) -> None:
    path = os.path.join(config.data_dir, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)  # also when it existed with wider permissions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m idnode.cli.demo",
        description="Seed demo data (only what is absent) and run `idnode serve`.",
    )
    add_node_flags(parser)
    parser.add_argument(
        "--no-toplevel", action="store_true",
        help="do not start the reference top-level node beside the node",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.init = True  # the demo makes its node on the first run (the flag is a no-op after)
    config = load_config(args)
    from registry import storefile
    from registry.errors import StoreError

    try:
        storefile.make_data_dir(config.data_dir)
    except StoreError as error:
        raise SystemExit(f"idnode: {error}") from None
    prefix, _token = seed(config)
    toplevel = None
    if not config.upstream and not args.no_toplevel:
        toplevel, config = _with_toplevel(config)
    grpc_address = config.grpc_listen[0]
    first = f"{prefix}/JXDY2106023"
    web = _web_lines(config, first)
    print(
        f"""
demo node: data in {config.data_dir}/, enterprise prefix {prefix}
tokens: {config.data_dir}/admin.token (administrator), {config.data_dir}/demo-enterprise.token
{web}
from another terminal:
  .venv/bin/idnode resolve {first} --server {grpc_address}
  dig @{config.dns_listen[0].rpartition(":")[0].strip("[]") if config.dns_listen else "127.0.0.1"} \
-p {config.dns_listen[0].rpartition(":")[2] if config.dns_listen else "8653"} TXT \
$(.venv/bin/idnode dns-name {first} --zone {config.dns.zone}) +short
  IDNODE_TOKEN=$(cat {config.data_dir}/demo-enterprise.token) .venv/bin/idnode register \
{prefix}/MY-FIRST-1 --value URL=https://example.com --server {grpc_address}
""",
        file=sys.stderr,
        flush=True,
    )
    from idnode.node import master

    try:
        return master.main(config, reload=lambda: reload_config(args))
    except ConfigError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return 2
    finally:
        if toplevel is not None:
            toplevel.terminate()
            toplevel.wait(30)


def _with_toplevel(config: Config) -> tuple[subprocess.Popen[bytes], Config]:
    """Start `idnode toplevel` on DATA_DIR/toplevel, home this node there, sync to it."""
    import grpc

    from proto import sync_pb2, sync_pb2_grpc

    address = os.environ.get("IDNODE_DEMO_TOPLEVEL", "127.0.0.1:8700")
    admin = _kept(config, "toplevel-admin.token")
    node_token = _kept(config, "upstream.token")
    process = subprocess.Popen(
        [sys.executable, "-m", "idnode", "toplevel", "--grpc-listen", address,
         "--data-dir", os.path.join(config.data_dir, "toplevel")],
        env={**os.environ, "IDNODE_ADMIN_TOKEN": admin}, stdout=subprocess.PIPE,
        preexec_fn=_detach_from_terminal,
    )  # fmt: skip
    assert process.stdout is not None
    if not process.stdout.readline().startswith(b"{"):  # the JSON ready line, or EOF
        raise SystemExit(f"idnode: the top-level node did not start on {address}")
    with grpc.insecure_channel(address) as channel:
        sync_pb2_grpc.TopLevelStub(channel).AddNode(
            sync_pb2.AddNodeRequest(node_prefix=config.node_prefix, token=node_token),
            metadata=(("authorization", f"Bearer {admin}"),),
            timeout=10,
        )
    print(
        f"top-level node: {address} (data in {config.data_dir}/toplevel/, administrator token "
        f"in {config.data_dir}/toplevel-admin.token)\n"
        f"  .venv/bin/idnode status --data-dir {config.data_dir}\n"
        f"  .venv/bin/idnode toplevel node list --server {address} "
        f"--token $(cat {config.data_dir}/toplevel-admin.token)",
        file=sys.stderr,
    )
    return process, dataclasses.replace(config, upstream=address, upstream_token=node_token)


def _web_lines(config: Config, first: str) -> str:
    """Clickable links to the HTTP face (what a QR code on the product would open)."""
    if not config.http_listen:
        return ""
    base = "http://" + config.http_listen[0].replace("0.0.0.0", "127.0.0.1")
    return (
        f"\nopen in a browser: {base}/{first}?noredirect   (lookup form: {base}/)\n"
        f"  curl -i {base}/{first}\n"
    )


def _detach_from_terminal() -> None:
    """In the top-level node's child, before exec: out of the terminal's process group, so
    Ctrl-C reaches only the launcher, which stops the node first and then this process;
    and stopped by Linux if the launcher dies without doing so."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _kept(config: Config, name: str) -> str:
    """A token kept in DATA_DIR/name, made on the first run."""
    from registry import accounts

    path = os.path.join(config.data_dir, name)
    if os.path.exists(path):
        with open(path) as handle:
            return handle.read().strip()
    token = accounts.new_token()
    _keep(config, name, token)
    return token


if __name__ == "__main__":
    sys.exit(main())
