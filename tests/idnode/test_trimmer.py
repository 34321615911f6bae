"""The master's change-log trimmer follows the config and the upstream cursor."""

from __future__ import annotations

from pathlib import Path

from idnode.config import Config
from idnode.node.bootstrap import ChangelogTrimmer
from idnode.node.parts import open_store
from proto import handle_pb2
from registry import accounts
from registry.registry import Registry

ADMIN = handle_pb2.Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN)


def _node(tmp_path: Path, upstream: str) -> tuple[Config, Registry]:
    config = Config(
        data_dir=str(tmp_path), changelog_keep_entries=5, changelog_max_entries=50,
        upstream=upstream, upstream_token="t" * 20 if upstream else "", durable=False,
    )  # fmt: skip
    registry = Registry(open_store(config), config.node_prefix)
    registry.ensure_node_prefix()
    registry.create_enterprise(ADMIN, code="8")
    for i in range(30):
        registry.create(ADMIN, f"88.118.8/x{i}", [handle_pb2.HandleValue(index=1, type="URL")])
    return config, registry


def test_without_upstream_only_the_window_stays(tmp_path: Path) -> None:
    config, registry = _node(tmp_path, upstream="")
    trimmer = ChangelogTrimmer(config, registry.store)
    try:
        # node prefix, enterprise prefix and account, 30 records; the newest 5 stay
        assert trimmer.trim_now() == 33 - 5
    finally:
        trimmer.stop()
        registry.store.close()


def test_unacknowledged_changes_stay_for_the_upstream(tmp_path: Path) -> None:
    config, registry = _node(tmp_path, upstream="127.0.0.1:1")
    registry.store.write(lambda batch: batch.put_cursor("upstream", 10))
    trimmer = ChangelogTrimmer(config, registry.store)
    try:
        assert trimmer.trim_now() == 10
        with registry.store.read() as txn:
            assert registry.store.first_sequence(txn) == 11
    finally:
        trimmer.stop()
        registry.store.close()
