"""BatchResolve bounds: at most 1,000 identifiers in, a reply bounded in bytes out."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from proto import resolver_pb2
from registry.errors import TooLarge

MAX_BATCH_RESOLVE = 1000
RESPONSE_SLACK_BYTES = 4096  # what the budget keeps back for framing
CUT_STATUS = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]

Answerer = Callable[[resolver_pb2.ResolveRequest, resolver_pb2.BatchResolveResult], int]
"""Fills one result for one item; returns the bytes it adds to the reply (`entry_bytes`)."""


def check_count(request: resolver_pb2.BatchResolveRequest) -> None:
    """Raise TooLarge for a batch of more than MAX_BATCH_RESOLVE identifiers."""
    count = len(request.requests)
    if count > MAX_BATCH_RESOLVE:
        raise TooLarge(f"batch has {count} identifiers, more than {MAX_BATCH_RESOLVE}")


def cut_message(max_response_bytes: int) -> str:
    """The error of an entry left unanswered because the reply reached its size limit."""
    return (
        f"not answered: the response reached its size limit of {max_response_bytes} bytes; "
        "ask for this identifier again"
    )


class ReplyBudget:
    """A BatchResolve reply of at most `max_response_bytes` (less framing slack).

    Items are answered in order; where one would not leave room for every item after
    it to say it was cut, it and those after are marked RESOURCE_EXHAUSTED with
    `cut_message`, so the reply never outgrows the budget by more than one item
    while it is built."""

    def __init__(self, max_response_bytes: int) -> None:
        self.budget_bytes = max_response_bytes - RESPONSE_SLACK_BYTES
        self.cut_message = cut_message(max_response_bytes)
        cut = resolver_pb2.BatchResolveResult(status=CUT_STATUS, error=self.cut_message)
        self._cut_entry_bytes = entry_bytes(cut.ByteSize())

    def fill(
        self,
        reply: resolver_pb2.BatchResolveResponse,
        items: Sequence[resolver_pb2.ResolveRequest],
        answer: Answerer,
    ) -> bool:
        """Add one result per item to `reply`; False when the budget cut the reply short."""
        count = len(items)
        spent = 0
        for position, item in enumerate(items):
            added = answer(item, reply.results.add())
            # What is left must still fit, each cut entry saying it was cut.
            reserve = (count - position - 1) * self._cut_entry_bytes
            if spent + added + reserve > self.budget_bytes:
                del reply.results[position:]
                for _ in range(count - position):
                    reply.results.add(status=CUT_STATUS, error=self.cut_message)
                return False
            spent += added
        return True


def entry_bytes(size: int) -> int:
    """Bytes of a length-delimited field holding `size` bytes (tag, length varint, data)."""
    return 1 + (size.bit_length() + 6) // 7 + size if size else 2
