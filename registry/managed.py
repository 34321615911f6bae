"""Values the node manages itself (reserved Handle types), written from inside the node only."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from proto import handle_pb2
from registry import values
from registry.identifier import parse
from registry.store import Store
from registry.writebatch import WriteBatch


def put_values(
    store: Store,
    identifier: str,
    new: Sequence[handle_pb2.HandleValue],
    clock: Callable[[], float] = time.time,
) -> int:
    """Create `identifier` or replace its values at the indexes of `new`, reserved types
    allowed (the node's own HS_PUBKEY, HS_SITE…); returns the change's sequence.

    This is not a caller's path: no account is checked, so only the composition root
    calls it, for records the node itself owns. Raises InvalidIdentifier, InvalidValue,
    TooLarge.
    """
    key = str(parse(identifier))
    stamped = {v.index: v for v in values.normalise(new, int(clock()), managed=True)}

    def work(batch: WriteBatch) -> int:
        current = batch.get_record(key)
        kept = [v for v in current.values if v.index not in stamped] if current else []
        after = sorted([*kept, *stamped.values()], key=lambda v: v.index)
        values.check_limits(after)
        return batch.put_record(key, handle_pb2.Record(values=after), created=current is None)

    return store.write(work)
