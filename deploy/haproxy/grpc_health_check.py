#!/usr/bin/env python3
"""Print the tcp-check lines with which HAProxy asks an idnode node's gRPC health service.

HAProxy 2.6 cannot send a gRPC request in an HTTP check (its body needs NUL bytes), so
the check speaks HTTP/2 itself, as bytes: the client preface, an empty SETTINGS frame,
a HEADERS frame (HPACK, no Huffman coding, nothing indexed: POST
/grpc.health.v1.Health/Check, content-type application/grpc, te: trailers) and a DATA
frame with an empty HealthCheckRequest (service "": the whole node). The answer's DATA
frame on stream 1 holds a HealthCheckResponse: 08 01 is SERVING, 08 02 NOT_SERVING.
The first expect waits until a status arrived, the second (min-recv 0) decides at once.

    python3 deploy/haproxy/grpc_health_check.py   # paste the output into a backend
"""

from __future__ import annotations

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PATH = b"/grpc.health.v1.Health/Check"
STREAM = 1


def _string(value: bytes) -> bytes:
    """An HPACK string literal without Huffman coding (all ours are under 127 bytes)."""
    assert len(value) < 127
    return bytes([len(value)]) + value


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def request() -> bytes:
    headers = (
        b"\x83"  # :method POST (static table 3)
        + b"\x86"  # :scheme http (static table 6)
        + b"\x04"
        + _string(PATH)  # :path, literal value, name from static table 4
        + b"\x01"
        + _string(b"idnode")  # :authority (static table 1)
        + b"\x0f\x10"
        + _string(b"application/grpc")  # content-type (static table 31)
        + b"\x00"
        + _string(b"te")
        + _string(b"trailers")  # te, literal name
    )
    settings = _frame(0x4, 0, 0, b"")
    header_frame = _frame(0x1, 0x4, STREAM, headers)  # END_HEADERS
    data_frame = _frame(0x0, 0x1, STREAM, b"\x00" + (0).to_bytes(4, "big"))  # END_STREAM
    return PREFACE + settings + header_frame + data_frame


def answered() -> str:
    """Any status on stream 1: a gRPC message of 2 bytes holding field 1."""
    return STREAM.to_bytes(4, "big").hex().upper() + "0000000002080[0-9A-F]"


def serving() -> str:
    return (STREAM.to_bytes(4, "big") + b"\x00\x00\x00\x00\x02\x08\x01").hex().upper()


def lines() -> list[str]:
    return [
        "option tcp-check",
        f"tcp-check send-binary {request().hex().upper()} comment grpc-health-request",
        f"tcp-check expect rbinary {answered()} comment grpc-health-answered",
        f"tcp-check expect min-recv 0 binary {serving()} comment grpc-health-SERVING",
    ]


if __name__ == "__main__":
    print("\n".join(lines()))
