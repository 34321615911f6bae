"""Make tests/registry/data/schema3-store.tar.xz: a node's data dir written by the last idnode
whose store is at schema 3, the store test_upgrade_from_schema_3.py upgrades.

The code that writes it is that idnode's own, exported from git (`git archive COMMIT`) and
imported from the export, never this tree's. Run from the repository:

    .venv/bin/python -m tests.registry.make_schema3_store [COMMIT]

It writes what a node holds after some life: its prefix, the administrator, an
enterprise with its account, creates, updates, a delete, a batch, a record too large to
stay in a leaf page, a restricted value, a token rotation; and a change log trimmed so
that it no longer starts at 1.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SCHEMA_3_COMMIT = "b62335ff7558781ea17b84883d20fdb93221abb0"  # main at schema 3, after group commit
FIXTURE = Path(__file__).with_name("data") / "schema3-store.tar.xz"
NODE_PREFIX = "88.118"
ADMIN_TOKEN = "schema-3-admin-token-0123456789"

# Runs inside the export: everything it imports is the old code.
WRITER = """
import sys
from proto import handle_pb2
from registry import accounts, credentials, retention
from registry.registry import Registry
from registry.store import SCHEMA_VERSION, Store, StoreOptions

assert SCHEMA_VERSION == b"3", SCHEMA_VERSION
store = Store(sys.argv[1], StoreOptions(map_size_bytes=16 << 20))
registry = Registry(store, "{prefix}")
registry.ensure_node_prefix()
accounts.ensure_admin(store, "{token}")
admin = accounts.authenticate(store, "{token}")
V = handle_pb2.HandleValue
registry.create_enterprise(admin, "8", "Maker", "ops@example.com")
for n in range(40):
    registry.create(admin, f"{prefix}.8/item-{{n:04}}",
                    [V(index=1, type="URL", data=f"https://example.com/item-{{n:04}}".encode())])
registry.put_record(admin, "{prefix}.8/item-0003",
                    [V(index=1, type="URL", data=b"https://example.com/updated-0003")], True)
registry.delete(admin, "{prefix}.8/item-0005")
registry.create(admin, "{prefix}.8/private",
                [V(index=1, type="URL", data=b"https://example.com/private"),
                 V(index=2, type="SECRET", data=b"s3", public_read=False)])
registry.create(admin, "{prefix}.8/large",
                [V(index=1, type="blob", data=bytes(range(256)) * 40)])
registry.batch_register(admin, [
    handle_pb2.Record(identifier=f"{prefix}.8/b-{{n}}",
                      values=[V(index=1, type="URL", data=f"https://b.example/{{n}}".encode())])
    for n in range(30)])
credentials.rotate(store, admin, "{prefix}.8", 0, 0)
dropped = retention.trim(store, keep_entries=60, max_entries=60, cursors=[])
assert dropped > 0, dropped
store.close()
"""


def write(commit: str, data_dir: Path) -> None:
    """Write the store into `data_dir` with the code of `commit`."""
    with tempfile.TemporaryDirectory() as export:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "registry", "proto", "metrics"],
            capture_output=True, check=True,
        )  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tree:
            tree.extractall(export, filter="data")
        script = WRITER.format(prefix=NODE_PREFIX, token=ADMIN_TOKEN)
        subprocess.run(
            [sys.executable, "-c", script, str(data_dir)],
            cwd=export, env={"PYTHONPATH": export, "PATH": "/usr/bin:/bin"}, check=True,
        )  # fmt: skip


def main() -> None:
    commit = sys.argv[1] if len(sys.argv) > 1 else SCHEMA_3_COMMIT
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        write(commit, data_dir)
        FIXTURE.parent.mkdir(exist_ok=True)
        with tarfile.open(FIXTURE, "w:xz") as packed:
            packed.add(data_dir / "data.mdb", arcname="data/data.mdb")
            note = f"written by idnode at commit {commit} (tests/registry/make_schema3_store.py)\n"
            info = tarfile.TarInfo("data/WRITTEN-BY")
            info.size = len(note)
            packed.addfile(info, io.BytesIO(note.encode()))
    print(f"wrote {FIXTURE} with the code of {commit}")


if __name__ == "__main__":
    main()
