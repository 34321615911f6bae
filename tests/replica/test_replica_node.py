"""A primary and replicas as real processes: copy, follow, reads everywhere, writes nowhere,
read-your-writes, restart and re-copy, replicas of replicas, promotion."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest

from proto import registry_pb2, replica_pb2, replica_pb2_grpc, resolver_pb2
from registry import retention
from registry.store import Store, StoreOptions
from tests.metrics.scrape import sample, scrape_address
from tests.replica import nodes
from tests.sync.nodes import (
    ADMIN,
    IDNODE,
    Proc,
    bearer,
    free_port,
    node_records,
    reading,
    record,
    register_many,
    registry,
    resolve,
    resolver,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)


def _changelog_bytes(data_dir: Path) -> list[tuple[bytes, bytes]]:
    with reading(data_dir) as store, store.read() as txn, txn.cursor(db=store.changelog) as cursor:
        return [(bytes(k), bytes(v)) for k, v in cursor]


def _accounts(data_dir: Path) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    with reading(data_dir) as store, store.read() as txn:
        found = []
        for db in (store.accounts, store.tokens):
            with txn.cursor(db=db) as cursor:
                found.append({bytes(k): bytes(v) for k, v in cursor})
    return found[0], found[1]


def test_a_replica_copies_follows_and_serves_reads_but_no_writes(tmp_path: Path) -> None:
    primary = nodes.start_primary(tmp_path / "primary")
    replica = None
    try:
        register_many(primary, "88.118", 300, "before")
        enterprise = registry(primary).CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code="8", name="acme"), metadata=ADMIN
        )
        private = record("88.118.8/secret", ("URL", "https://example.com/s"))
        private.values.add(index=2, type="EMAIL", data=b"ops@acme", public_read=False)
        registry(primary).Create(private, metadata=bearer(enterprise.token), timeout=10)
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(tmp_path / "replica", primary.address, token)

        # Follows: writes after the copy arrive, in the primary's sequences; so do
        # accounts and tokens made meanwhile (outside the change log).
        register_many(primary, "88.118", 200, "after")
        later = registry(primary).CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code="9", name="later"), metadata=ADMIN
        )
        registry(primary).Delete(
            registry_pb2.DeleteRequest(identifier="88.118/before-7"), metadata=ADMIN, timeout=10
        )
        nodes.wait_converged(primary, replica)
        assert node_records(tmp_path / "replica") == node_records(tmp_path / "primary")
        assert _accounts(tmp_path / "replica") == _accounts(tmp_path / "primary")
        who = registry(replica).WhoAmI(
            registry_pb2.WhoAmIRequest(), metadata=bearer(later.token), timeout=10
        )
        assert who.name == later.account
        # A token revoked on the primary stops working on the replica with that entry (as on
        # the primary: once a worker has read it, or after 5 s of token cache).
        registry(primary).RevokeToken(
            registry_pb2.RevokeTokenRequest(account=later.account), metadata=ADMIN, timeout=10
        )
        nodes.wait_converged(primary, replica)
        resolve(replica, "88.118/after-1")  # a worker reads the change log as it resolves
        revoked = nodes.rpc_code(
            lambda: registry(replica).WhoAmI(
                registry_pb2.WhoAmIRequest(), metadata=bearer(later.token), timeout=10
            )
        )
        assert revoked == grpc.StatusCode.UNAUTHENTICATED
        assert _accounts(tmp_path / "replica") == _accounts(tmp_path / "primary")
        rotate = nodes.rpc_code(
            lambda: registry(replica).RotateToken(
                registry_pb2.RotateTokenRequest(), metadata=ADMIN, timeout=10
            )
        )
        assert rotate == grpc.StatusCode.FAILED_PRECONDITION
        assert (
            resolve(replica, "88.118/after-199").values[0].data == b"https://example.com/after/199"
        )

        # Private values follow the same rules: the enterprise's token reads them here too.
        anonymous = resolve(replica, "88.118.8/secret")
        assert [v.index for v in anonymous.values] == [1]
        owned = resolver(replica).Resolve(
            resolver_pb2.ResolveRequest(identifier="88.118.8/secret"),
            metadata=bearer(enterprise.token), timeout=10,
        )  # fmt: skip
        assert [v.index for v in owned.values] == [1, 2]

        # Writes nowhere: FAILED_PRECONDITION naming the primary, also in trailing metadata.
        with pytest.raises(grpc.RpcError) as refused:
            registry(replica).Create(
                record("88.118/nope", ("URL", "u")), metadata=ADMIN, timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert primary.address in str(refused.value.details())
        trailing: dict[str, str] = dict(refused.value.trailing_metadata() or ())  # type: ignore[arg-type]
        assert trailing["idnode-primary"] == primary.address
        listed = registry(replica).List(
            registry_pb2.ListRequest(prefix="88.118", page_size=5), metadata=ADMIN, timeout=10
        )
        assert len(listed.records) == 5

        status = nodes.status(tmp_path / "replica")
        assert status["role"] == "replica" and status["state"] == "following"
        assert status["primary"] == primary.address
        assert status["applied_sequence"] == nodes.position(primary).last_sequence

        # What Prometheus scrapes says the same; a primary has no replica series.
        applied = nodes.position(primary).last_sequence
        wait_until(  # gauges are flushed to the exposition every second or so
            "the replica's gauges",
            lambda: (
                sample(
                    scrape_address(str(replica.ready["metrics"])),
                    "idnode_replica_applied_sequence",
                    primary=primary.address,
                )
                == applied
            ),
            10,
        )
        scraped = scrape_address(str(replica.ready["metrics"]))
        lag = sample(scraped, "idnode_replica_lag_seconds", primary=primary.address)
        assert lag is not None and 0 <= lag < 5  # caught up
        state = {"primary": primary.address}
        assert sample(scraped, "idnode_replica_state", **state, state="following") == 1
        assert sample(scraped, "idnode_replica_state", **state, state="failing") == 0
        assert "idnode_replica_" not in scrape_address(str(primary.ready["metrics"]))
    finally:
        for proc in (replica, primary):
            if proc is not None:
                proc.stop()


def test_read_your_writes_with_min_sequence(tmp_path: Path) -> None:
    primary = nodes.start_primary(tmp_path / "primary")
    replica = None
    try:
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(tmp_path / "replica", primary.address, token)
        for n in range(20):
            written = registry(primary).Create(
                record(f"88.118/ryw-{n}", ("URL", f"https://example.com/{n}")),
                metadata=ADMIN, timeout=10,
            )  # fmt: skip
            # The very next read on the replica sees the write: it waits for the sequence.
            seen = resolver(replica).Resolve(
                resolver_pb2.ResolveRequest(
                    identifier=f"88.118/ryw-{n}", min_sequence=written.sequence
                ),
                timeout=10,
            )
            assert seen.values[0].data == f"https://example.com/{n}".encode()
        batch = resolver(replica).BatchResolve(
            resolver_pb2.BatchResolveRequest(
                requests=[resolver_pb2.ResolveRequest(identifier="88.118/ryw-19")],
                min_sequence=written.sequence,
            ),
            timeout=10,
        )
        assert batch.results[0].status == 0
        # A sequence no write has reached yet: the replica waits briefly, then UNAVAILABLE.
        ahead = written.sequence + 1000
        code = nodes.rpc_code(
            lambda: resolver(replica).Resolve(
                resolver_pb2.ResolveRequest(identifier="88.118/ryw-1", min_sequence=ahead),
                timeout=10,
            )
        )
        assert code == grpc.StatusCode.UNAVAILABLE
        # The primary never waits: a sequence it never wrote is the caller's mistake.
        code = nodes.rpc_code(
            lambda: resolver(primary).Resolve(
                resolver_pb2.ResolveRequest(identifier="88.118/ryw-1", min_sequence=ahead),
                timeout=10,
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        for proc in (replica, primary):
            if proc is not None:
                proc.stop()


def test_a_replica_resumes_after_sigkill_and_recopies_when_the_log_is_trimmed(
    tmp_path: Path,
) -> None:
    primary = nodes.start_primary(tmp_path / "primary")
    replica_dir = tmp_path / "replica"
    port = free_port()
    replica = None
    try:
        register_many(primary, "88.118", 200, "a")
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(replica_dir, primary.address, token, port=port)
        nodes.wait_converged(primary, replica)
        replica.kill()
        register_many(primary, "88.118", 100, "b")
        replica = nodes.start_replica(replica_dir, primary.address, token, port=port)
        nodes.wait_converged(primary, replica)
        log = (tmp_path / "replica.log").read_text()
        assert log.count("copying the primary by snapshot") == 1  # the first start only
        assert node_records(replica_dir) == node_records(tmp_path / "primary")
        # Since its copy, the replica's change log is the primary's, byte for byte.
        held = _changelog_bytes(replica_dir)
        assert held and held == [e for e in _changelog_bytes(tmp_path / "primary") if e >= held[0]]

        # Down again while the primary writes and trims its log past the replica's position.
        replica.stop()
        registry(primary).Delete(
            registry_pb2.DeleteRequest(identifier="88.118/a-5"), metadata=ADMIN, timeout=10
        )
        register_many(primary, "88.118", 50, "c")
        primary_store = Store(str(tmp_path / "primary"), StoreOptions(durable=False))
        try:
            assert retention.trim(primary_store, 10, 10, []) > 0
        finally:
            primary_store.close()
        replica = nodes.start_replica(replica_dir, primary.address, token, port=port)
        nodes.wait_converged(primary, replica)
        log = (tmp_path / "replica.log").read_text()
        assert "no longer reaches back" in log
        assert node_records(replica_dir) == node_records(tmp_path / "primary")
        restarted = replica
        gone = nodes.rpc_code(lambda: resolve(restarted, "88.118/a-5"))
        assert gone == grpc.StatusCode.NOT_FOUND
    finally:
        for proc in (replica, primary):
            if proc is not None:
                proc.stop()


def test_a_replica_of_a_replica_and_promotion(tmp_path: Path) -> None:
    """primary -> r1 -> r2; then the primary stops, r1 is promoted and takes writes, and r2
    goes on following it without a new copy."""
    primary = nodes.start_primary(tmp_path / "primary")
    r1_port = free_port()
    r1: Proc | None = None
    r2: Proc | None = None
    first: Proc | None = primary
    try:
        register_many(primary, "88.118", 100, "a")
        token = nodes.credential(tmp_path / "primary", "replica-1")
        r1 = nodes.start_replica(tmp_path / "r1", primary.address, token, port=r1_port)
        r2 = nodes.start_replica(tmp_path / "r2", r1.address, token)  # accounts replicate
        register_many(primary, "88.118", 50, "b")
        nodes.wait_converged(primary, r1, r2)
        assert node_records(tmp_path / "r2") == node_records(tmp_path / "primary")

        primary.stop()
        first = None
        r1.stop()
        promoted = subprocess.run(
            [IDNODE, "replica", "promote", "--data-dir", str(tmp_path / "r1"), "--json"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert promoted.returncode == 0, promoted.stderr
        again = subprocess.run(
            [IDNODE, "replica", "promote", "--data-dir", str(tmp_path / "r1")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert again.returncode == 2 and "not a replica" in again.stderr
        r1 = nodes.start_primary(tmp_path / "r1", port=r1_port)
        written = registry(r1).Create(
            record("88.118/after-promotion", ("URL", "https://example.com/p")),
            metadata=ADMIN, timeout=10,
        )  # fmt: skip
        assert nodes.position(r1).role == "primary"
        nodes.wait_converged(r1, r2)
        assert resolve(r2, "88.118/after-promotion").values[0].data == b"https://example.com/p"
        assert nodes.position(r2).log_id == nodes.position(r1).log_id
        assert nodes.position(r2).last_sequence == written.sequence
        assert (tmp_path / "r2.log").read_text().count("copying the primary by snapshot") == 1
    finally:
        for proc in (r2, r1, first):
            if proc is not None:
                proc.stop()


def test_a_primarys_data_dir_is_never_started_as_a_replica(tmp_path: Path) -> None:
    primary = nodes.start_primary(tmp_path / "primary")
    other = nodes.start_primary(tmp_path / "other")
    try:
        register_many(other, "88.118", 3, "mine")
        token = nodes.credential(tmp_path / "primary", "replica-1")
        other.stop()
        result = subprocess.run(
            [
                IDNODE, "serve", "--data-dir", str(tmp_path / "other"), "--replica-of",
                primary.address, "--replica-token", token, "--no-dns", "--workers", "1",
                "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode != 0
        assert "holds a primary's store" in result.stderr
        assert len(node_records(tmp_path / "other")) == 3 + 1  # and its prefix record
    finally:
        primary.stop()


def test_a_wrong_replication_credential_is_refused_and_shown(tmp_path: Path) -> None:
    primary = nodes.start_primary(tmp_path / "primary")
    try:
        enterprise = registry(primary).CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code="9", name="not a replica"), metadata=ADMIN
        )
        stub_code = nodes.rpc_code(
            lambda: list(
                replica_pb2_grpc.ReplicationStub(primary.channel()).Follow(
                    replica_pb2.FollowRequest(), metadata=bearer(enterprise.token), timeout=10
                )
            )
        )
        assert stub_code == grpc.StatusCode.PERMISSION_DENIED
        anonymous = nodes.rpc_code(
            lambda: list(
                replica_pb2_grpc.ReplicationStub(primary.channel()).Follow(
                    replica_pb2.FollowRequest(), timeout=10
                )
            )
        )
        assert anonymous == grpc.StatusCode.UNAUTHENTICATED
    finally:
        primary.stop()
