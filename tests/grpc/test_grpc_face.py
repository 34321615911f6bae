"""Register and resolve through a real gRPC server: round trips, filters, every error path."""

from __future__ import annotations

import multiprocessing

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from proto import handle_pb2, registry_pb2, resolver_pb2
from registry import accounts, errors
from resolver.grpc_errors import STATUS_BY_ERROR
from tests.grpc.conftest import Node, bearer
from tests.rpc import failure

HandleValue = handle_pb2.HandleValue
Record = handle_pb2.Record


def values(*pairs: tuple[str, str]) -> list[HandleValue]:
    return [HandleValue(index=i, type=t, data=d.encode()) for i, (t, d) in enumerate(pairs, 1)]


def test_register_then_resolve_round_trip(node: Node) -> None:
    prefix, token = node.enterprise("8")
    written = node.registry.Create(
        Record(identifier=f"{prefix}/JXDY2106023", values=values(("URL", "https://x/1"))),
        metadata=token,
    )
    assert (written.operation, written.identifier) == ("created", "88.118.8/JXDY2106023")
    assert written.sequence > 0

    reply = node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier="88.118.8/JXDY2106023"))

    assert reply.identifier == "88.118.8/JXDY2106023"
    assert reply.code == 1
    assert [(v.index, v.type, v.data, v.ttl) for v in reply.values] == [
        (1, "URL", b"https://x/1", 86400)
    ]
    assert reply.values[0].timestamp > 0


def test_prefix_is_case_insensitive_and_suffix_is_not(node: Node) -> None:
    prefix, token = node.enterprise("ab")
    node.registry.Create(
        Record(identifier=f"{prefix}/Mixed", values=values(("URL", "u"))), metadata=token
    )

    assert node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier="88.118.AB/Mixed")).values
    code, _ = failure(
        lambda: node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier="88.118.ab/mixed"))
    )
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("types", "indexes", "expected"),
    [
        ([], [], [1, 2, 3]),
        (["url"], [], [1]),
        (["URL", "batch"], [], [1, 3]),
        ([], [2], [2]),
        (["batch"], [3], [3]),
    ],
)
def test_resolve_filters_by_type_and_index(
    node: Node, types: list[str], indexes: list[int], expected: list[int]
) -> None:
    prefix, token = node.enterprise()
    node.registry.Create(
        Record(
            identifier=f"{prefix}/F", values=values(("URL", "u"), ("EMAIL", "e"), ("batch", "b"))
        ),
        metadata=token,
    )
    reply = node.resolver.Resolve(
        resolver_pb2.ResolveRequest(identifier=f"{prefix}/F", types=types, indexes=indexes)
    )
    assert [v.index for v in reply.values] == expected


def test_filter_matching_nothing_is_not_found(node: Node) -> None:
    prefix, token = node.enterprise()
    node.registry.Create(
        Record(identifier=f"{prefix}/F", values=values(("URL", "u"))), metadata=token
    )
    code, details = failure(
        lambda: node.resolver.Resolve(
            resolver_pb2.ResolveRequest(identifier=f"{prefix}/F", types=["EMAIL"])
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert "no value matching" in details


@pytest.mark.parametrize(
    ("identifier", "status", "message"),
    [
        ("88.118.1/missing", grpc.StatusCode.NOT_FOUND, "not found"),
        ("no-slash", grpc.StatusCode.INVALID_ARGUMENT, "no '/'"),
        ("88/x", grpc.StatusCode.INVALID_ARGUMENT, "segments"),
        ("88.118.1/a\x01b", grpc.StatusCode.INVALID_ARGUMENT, "control character"),
        ("99.7/x", grpc.StatusCode.FAILED_PRECONDITION, "not under this node's prefix"),
    ],
)
def test_resolve_errors_have_status_and_message(
    node: Node, identifier: str, status: grpc.StatusCode, message: str
) -> None:
    node.enterprise()
    for _ in range(2):  # the second answer comes from the negative cache
        code, details = failure(
            lambda: node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=identifier))
        )
        assert code == status
        assert message in details


def test_write_errors_have_status_and_message(node: Node) -> None:
    prefix, token = node.enterprise()
    ident = f"{prefix}/W"
    node.registry.Create(Record(identifier=ident, values=values(("URL", "u"))), metadata=token)
    cases = [
        (lambda: node.registry.Create(Record(identifier=ident), metadata=token),
         grpc.StatusCode.ALREADY_EXISTS, "already exists"),
        (lambda: node.registry.AddValues(Record(identifier=ident, values=values(("X", "x"))), metadata=token),
         grpc.StatusCode.ALREADY_EXISTS, "index 1"),
        (lambda: node.registry.ModifyValues(
            Record(identifier=ident, values=[HandleValue(index=9, type="X")]), metadata=token),
         grpc.StatusCode.NOT_FOUND, "index 9"),
        (lambda: node.registry.RemoveValues(
            registry_pb2.RemoveValuesRequest(identifier=ident, indexes=[7]), metadata=token),
         grpc.StatusCode.NOT_FOUND, "index 7"),
        (lambda: node.registry.Delete(registry_pb2.DeleteRequest(identifier=f"{prefix}/nope"), metadata=token),
         grpc.StatusCode.NOT_FOUND, "not found"),
        (lambda: node.registry.Create(
            Record(identifier=f"{prefix}/V", values=[HandleValue(index=0, type="URL")]), metadata=token),
         grpc.StatusCode.INVALID_ARGUMENT, "index must be between"),
        (lambda: node.registry.Create(Record(identifier=f"{prefix}/A")),
         grpc.StatusCode.UNAUTHENTICATED, "needs a bearer token"),
        (lambda: node.registry.Create(Record(identifier=f"{prefix}/A"), metadata=bearer("idn_wrong-token-xyz")),
         grpc.StatusCode.UNAUTHENTICATED, "not valid"),
        (lambda: node.registry.Create(Record(identifier=f"{prefix}/A"), metadata=(("authorization", "Basic x"),)),
         grpc.StatusCode.UNAUTHENTICATED, "Bearer"),
        (lambda: node.registry.CreateEnterprise(registry_pb2.CreateEnterpriseRequest(), metadata=token),
         grpc.StatusCode.PERMISSION_DENIED, "administrator"),
        (lambda: node.registry.BatchRegister(
            registry_pb2.BatchRegisterRequest(records=[Record(identifier=f"{prefix}/{i}") for i in range(10_001)]),
            metadata=token),
         grpc.StatusCode.RESOURCE_EXHAUSTED, "more than 10000"),
        (lambda: node.registry.List(registry_pb2.ListRequest(prefix=prefix, page_size=5000), metadata=token),
         grpc.StatusCode.INVALID_ARGUMENT, "page_size"),
    ]  # fmt: skip
    for call, status, message in cases:
        code, details = failure(call)
        assert (code, message in details) == (status, True), (code, details)


def test_modify_add_remove_delete(node: Node) -> None:
    prefix, token = node.enterprise()
    ident = f"{prefix}/M"
    node.registry.Create(Record(identifier=ident, values=values(("URL", "u"))), metadata=token)
    node.registry.AddValues(
        Record(identifier=ident, values=[HandleValue(index=5, type="EMAIL", data=b"e")]),
        metadata=token,
    )
    node.registry.ModifyValues(
        Record(identifier=ident, values=[HandleValue(index=1, type="URL", data=b"v2")]),
        metadata=token,
    )
    reply = node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=ident))
    assert [(v.index, v.data) for v in reply.values] == [(1, b"v2"), (5, b"e")]
    removed = node.registry.RemoveValues(
        registry_pb2.RemoveValuesRequest(identifier=ident, indexes=[1]), metadata=token
    )
    assert [v.index for v in removed.values] == [5]
    node.registry.Delete(registry_pb2.DeleteRequest(identifier=ident), metadata=token)
    code, _ = failure(lambda: node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=ident)))
    assert code == grpc.StatusCode.NOT_FOUND


def test_batch_register_is_an_idempotent_upsert(node: Node) -> None:
    prefix, token = node.enterprise()
    other, _ = node.enterprise()
    records = [
        Record(identifier=f"{prefix}/B{i}", values=values(("URL", f"u{i}"))) for i in range(50)
    ]
    records.append(Record(identifier=f"{other}/stolen", values=values(("URL", "x"))))
    records.append(Record(identifier="bad", values=values(("URL", "x"))))

    first = node.registry.BatchRegister(
        registry_pb2.BatchRegisterRequest(records=records), metadata=token
    )
    again = node.registry.BatchRegister(
        registry_pb2.BatchRegisterRequest(records=records), metadata=token
    )
    records[0].values[0].data = b"changed"
    third = node.registry.BatchRegister(
        registry_pb2.BatchRegisterRequest(records=records), metadata=token
    )

    assert (first.created, first.updated, first.unchanged, first.rejected) == (50, 0, 0, 2)
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 50, 2)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 49)
    assert again.sequence == first.sequence  # nothing written, nothing logged
    item = registry_pb2.BatchItemResult
    assert [r.outcome for r in first.results] == [item.CREATED] * 50 + [item.REJECTED] * 2
    assert [r.outcome for r in third.results][:2] == [item.UPDATED, item.UNCHANGED]
    assert not any(r.error for r in third.results[:50])
    assert "may not write under prefix" in first.results[50].error
    assert "no '/'" in first.results[51].error
    reply = node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=f"{prefix}/B0"))
    assert reply.values[0].data == b"changed"


def test_batch_resolve_reports_each_identifier(node: Node) -> None:
    prefix, token = node.enterprise()
    node.registry.Create(
        Record(identifier=f"{prefix}/one", values=values(("URL", "u"))), metadata=token
    )
    reply = node.resolver.BatchResolve(
        resolver_pb2.BatchResolveRequest(
            requests=[
                resolver_pb2.ResolveRequest(identifier=f"{prefix}/one"),
                resolver_pb2.ResolveRequest(identifier=f"{prefix}/two"),
                resolver_pb2.ResolveRequest(identifier="nonsense"),
            ]
        )
    )
    assert [r.status for r in reply.results] == [
        grpc.StatusCode.OK.value[0],
        grpc.StatusCode.NOT_FOUND.value[0],
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
    ]
    assert reply.results[0].response.values[0].data == b"u"
    assert "not found" in reply.results[1].error


def test_list_pages_through_one_prefix(node: Node) -> None:
    prefix, token = node.enterprise()
    records = [
        Record(identifier=f"{prefix}/{i:03d}", values=values(("URL", "u"))) for i in range(25)
    ]
    node.registry.BatchRegister(registry_pb2.BatchRegisterRequest(records=records), metadata=token)
    node.registry.Create(
        Record(identifier=f"{prefix}.1/derived", values=values(("URL", "u"))), metadata=token
    )
    seen: list[str] = []
    page_token = ""
    while True:
        page = node.registry.List(
            registry_pb2.ListRequest(prefix=prefix, page_size=10, page_token=page_token),
            metadata=token,
        )
        seen.extend(r.identifier for r in page.records)
        page_token = page.next_page_token
        if not page_token:
            break
    assert seen == [r.identifier for r in records]


def test_enterprise_cannot_write_under_another_prefix(node: Node) -> None:
    a_prefix, a = node.enterprise()
    b_prefix, b = node.enterprise()
    node.registry.Create(
        Record(identifier=f"{b_prefix}/mine", values=values(("URL", "b"))), metadata=b
    )
    attempts = [
        lambda: node.registry.Create(Record(identifier=f"{b_prefix}/x", values=values(("URL", "a"))), metadata=a),
        lambda: node.registry.Create(Record(identifier=f"{b_prefix}.9/x", values=values(("URL", "a"))), metadata=a),
        lambda: node.registry.ModifyValues(Record(identifier=f"{b_prefix}/mine", values=values(("URL", "a"))), metadata=a),
        lambda: node.registry.AddValues(Record(identifier=f"{b_prefix}/mine", values=[HandleValue(index=2, type="X")]), metadata=a),
        lambda: node.registry.RemoveValues(registry_pb2.RemoveValuesRequest(identifier=f"{b_prefix}/mine", indexes=[1]), metadata=a),
        lambda: node.registry.Delete(registry_pb2.DeleteRequest(identifier=f"{b_prefix}/mine"), metadata=a),
        lambda: node.registry.List(registry_pb2.ListRequest(prefix=b_prefix), metadata=a),
    ]  # fmt: skip
    for attempt in attempts:
        code, details = failure(attempt)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert b_prefix in details
    reply = node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=f"{b_prefix}/mine"))
    assert reply.values[0].data == b"b"
    assert a_prefix != b_prefix


def test_restricted_values_only_for_owner_and_admin(node: Node) -> None:
    prefix, owner = node.enterprise()
    _, stranger = node.enterprise()
    secret = HandleValue(index=2, type="price", data=b"42", public_read=False)
    node.registry.Create(
        Record(identifier=f"{prefix}/R", values=[*values(("URL", "u")), secret]), metadata=owner
    )
    request = resolver_pb2.ResolveRequest(identifier=f"{prefix}/R")

    def indexes(metadata: tuple[tuple[str, str], ...] = ()) -> list[int]:
        return [v.index for v in node.resolver.Resolve(request, metadata=metadata).values]

    assert indexes() == [1]
    assert indexes(stranger) == [1]
    assert indexes(owner) == [1, 2]
    assert indexes(node.admin) == [1, 2]
    assert indexes() == [1]  # the owner's answer did not leak into the shared cache


def test_write_from_another_handle_is_seen_at_once(node: Node) -> None:
    prefix, _ = node.enterprise()
    ident = f"{prefix}/C"
    code, _ = failure(lambda: node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=ident)))
    assert code == grpc.StatusCode.NOT_FOUND  # now negatively cached
    node.worker.registry.create(_admin(), ident, values(("URL", "v1")))
    assert (
        node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=ident)).values[0].data == b"v1"
    )


def _admin() -> handle_pb2.Account:
    return handle_pb2.Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN)


def test_health_and_reflection(node: Node) -> None:
    health = health_pb2_grpc.HealthStub(node.channel)
    for service in ("", "idnode.v1.Resolver", "idnode.v1.Registry"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(node.channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"idnode.v1.Resolver", "idnode.v1.Registry", "grpc.health.v1.Health"} <= names


def test_every_domain_error_has_a_status() -> None:
    missing = [cls.__name__ for cls in errors.all_error_classes() if cls not in STATUS_BY_ERROR]
    assert missing == []


def test_unexpected_exception_is_internal_and_server_keeps_serving(node: Node) -> None:
    prefix, token = node.enterprise()
    original = node.worker.registry.locate

    def broken(identifier: object) -> object:
        raise RuntimeError("boom")

    node.worker.registry.locate = broken  # type: ignore[method-assign,assignment]
    code, details = failure(
        lambda: node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=f"{prefix}/boom"))
    )
    assert (code, details) == (grpc.StatusCode.INTERNAL, "internal error")
    node.worker.registry.locate = original  # type: ignore[method-assign]
    node.registry.Create(
        Record(identifier=f"{prefix}/ok", values=values(("URL", "u"))), metadata=token
    )
    assert node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=f"{prefix}/ok")).values


def _write_from_another_process(data_dir: str, identifier: str, data: bytes) -> None:
    from registry.registry import Registry
    from registry.store import Store

    store = Store(data_dir)
    try:
        registry = Registry(store, "88.118")
        record = registry.batch_register(
            _admin(),
            [Record(identifier=identifier, values=[HandleValue(index=1, type="URL", data=data)])],
        )
        assert record.rejected == 0
    finally:
        store.close()


def test_cache_follows_writes_made_by_another_process(node: Node) -> None:
    prefix, _ = node.enterprise()
    ident = f"{prefix}/other-process"
    data_dir = node.worker.config.data_dir
    context = multiprocessing.get_context("spawn")
    request = resolver_pb2.ResolveRequest(identifier=ident)
    code, _ = failure(lambda: node.resolver.Resolve(request))
    assert code == grpc.StatusCode.NOT_FOUND  # negatively cached in this process
    for version in (b"v1", b"v2", b"v3"):
        writer = context.Process(
            target=_write_from_another_process, args=(data_dir, ident, version)
        )
        writer.start()
        writer.join(60)
        assert writer.exitcode == 0
        assert node.resolver.Resolve(request).values[0].data == version


def test_batch_entry_matching_no_value_fails_alone(node: Node) -> None:
    prefix, token = node.enterprise()
    secret = HandleValue(index=2, type="price", data=b"9", public_read=False)
    node.registry.Create(
        Record(identifier=f"{prefix}/b", values=[*values(("URL", "u")), secret]), metadata=token
    )
    requests = [
        resolver_pb2.ResolveRequest(identifier=f"{prefix}/b"),
        resolver_pb2.ResolveRequest(identifier=f"{prefix}/b", types=["EMAIL"]),
        resolver_pb2.ResolveRequest(identifier=f"{prefix}/b", types=["price"]),
    ]
    batch = resolver_pb2.BatchResolveRequest(requests=requests)
    anonymous = node.resolver.BatchResolve(batch)
    owner = node.resolver.BatchResolve(batch, metadata=token)

    assert [r.status for r in anonymous.results] == [0, 5, 5]  # 5: NOT_FOUND
    assert "no value matching" in anonymous.results[1].error
    assert [v.index for v in anonymous.results[0].response.values] == [1]
    assert [r.status for r in owner.results] == [0, 5, 0]
    assert [v.index for v in owner.results[0].response.values] == [1, 2]
    assert [v.data for v in owner.results[2].response.values] == [b"9"]


def test_cached_not_found_answers_hold_no_lmdb_reader_slots(node: Node) -> None:
    """A cached error must not keep its traceback: the frames hold read transactions,
    and each would keep one of the environment's reader slots (max_readers) for good."""
    for i in range(600):
        with pytest.raises(grpc.RpcError):
            node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=f"88.118.8/absent-{i}"))

    assert node.worker.store.env.readers().count("\n") < 10
    prefix, _ = node.enterprise()
    with pytest.raises(grpc.RpcError) as failure:
        node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=f"{prefix}/still-readable"))
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
