"""`idnode import` builds the next batch while the node stores the last: two in flight."""

from __future__ import annotations

import io

from idnode.cli import importer
from proto import registry_pb2


def test_a_batch_is_sent_before_the_previous_answer_is_awaited_and_never_more_than_two() -> None:
    rows = "".join(f"88.118.8/p{i},URL,https://example.com/{i}\n" for i in range(7))
    events: list[str] = []
    outstanding: list[int] = []

    def send(request: registry_pb2.BatchRegisterRequest) -> importer.Reply:
        number = len([e for e in events if e.startswith("send")])
        events.append(f"send {number}")
        outstanding.append(number)
        assert len(outstanding) <= 2, events

        def reply() -> registry_pb2.BatchRegisterResponse:
            events.append(f"wait {number}")
            outstanding.remove(number)
            answer = registry_pb2.BatchRegisterResponse(created=len(request.records))
            for _ in request.records:
                answer.results.add(outcome=registry_pb2.BatchItemResult.CREATED)
            return answer

        return reply

    summary = importer.run(io.StringIO("identifier,type,data\n" + rows), send, batch_size=3)

    assert events == ["send 0", "send 1", "wait 0", "send 2", "wait 1", "wait 2"]
    assert (summary.rows, summary.created, outstanding) == (7, 7, [])


def test_rejected_items_of_overlapping_batches_keep_their_lines() -> None:
    rows = "".join(f"88.118.8/p{i},URL,x\n" for i in range(4))

    def send(request: registry_pb2.BatchRegisterRequest) -> importer.Reply:
        answer = registry_pb2.BatchRegisterResponse()
        for record in request.records:
            refused = record.identifier.endswith(("1", "3"))
            answer.results.add(
                outcome=registry_pb2.BatchItemResult.REJECTED
                if refused
                else registry_pb2.BatchItemResult.CREATED,
                error="no" if refused else "",
            )
        return lambda: answer

    summary = importer.run(io.StringIO("identifier,type,data\n" + rows), send, batch_size=2)

    assert [(r.line, r.identifier) for r in summary.rejected] == [
        (3, "88.118.8/p1"),
        (5, "88.118.8/p3"),
    ]


def test_columns_in_any_order_short_rows_and_every_optional_column_make_the_records() -> None:
    csv_text = (
        "public_read,data,ttl,identifier,extra,type,index\n"
        "false,https://e/1,60,88.118.8/a,?,URL,7\n"
        ",2026-11,,88.118.8/a,,batch\n"  # a short row: no index, so its position (2)
        "yes,x,,88.118.8/b,,URL,\n"
        "maybe,x,,88.118.8/c,,URL,\n"  # a bad public_read rejects c whole
        ",x,,88.118.8/d,,a b,\n"  # a bad type too, with the checks' own message
    )
    sent: list[registry_pb2.BatchRegisterRequest] = []

    def send(request: registry_pb2.BatchRegisterRequest) -> importer.Reply:
        sent.append(request)
        answer = registry_pb2.BatchRegisterResponse(created=len(request.records))
        for _ in request.records:
            answer.results.add(outcome=registry_pb2.BatchItemResult.CREATED)
        return lambda: answer

    summary = importer.run(io.StringIO(csv_text), send, batch_size=10)

    records = {r.identifier: r for request in sent for r in request.records}
    assert sorted(records) == ["88.118.8/a", "88.118.8/b"]
    first, second = records["88.118.8/a"].values
    assert (first.index, first.type, first.data, first.ttl) == (7, "URL", b"https://e/1", 60)
    assert first.HasField("public_read") and not first.public_read
    assert (second.index, second.type, second.data) == (2, "batch", b"2026-11")
    assert not second.HasField("ttl") and not second.HasField("public_read")
    assert not records["88.118.8/b"].values[0].HasField("public_read")  # "yes": the default
    reasons = {r.identifier: r.reason for r in summary.rejected}
    assert reasons["88.118.8/c"] == "public_read 'maybe' is not true or false"
    assert (
        reasons["88.118.8/d"]
        == "value 1 (index 1): type 'a b' contains a space or control character"
    )
    assert (summary.rows, summary.created) == (5, 2)
