"""What a refused gRPC call ended with, for tests that expect a refusal."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest


def failure(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """The status code and details of `call()`, which must raise grpc.RpcError."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert isinstance(error, grpc.Call)
    return error.code(), error.details() or ""
