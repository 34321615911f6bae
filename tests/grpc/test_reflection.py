"""Server reflection as grpcurl and Postman use it: grpc.reflection.v1 first, then v1alpha."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.grpc.conftest import Node

V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def _string_field(number: int, text: str) -> bytes:
    """One length-delimited protobuf field, encoded by hand (a v1 client's request)."""
    data = text.encode()
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


def _ask_v1(channel: grpc.Channel, request: bytes) -> reflection_pb2.ServerReflectionResponse:
    call = channel.stream_stream(
        V1_METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    (raw,) = list(call(iter([request]), timeout=10))
    return reflection_pb2.ServerReflectionResponse.FromString(raw)


def test_v1_lists_the_services(node: Node) -> None:
    reply = _ask_v1(node.channel, _string_field(7, ""))  # list_services
    names = {s.name for s in reply.list_services_response.service}
    assert {
        "idnode.v1.Resolver", "idnode.v1.Registry", "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
    } <= names  # fmt: skip


def test_v1_describes_a_service_and_itself(node: Node) -> None:
    for symbol, package in [
        ("idnode.v1.Resolver", "idnode.v1"),
        ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1"),
    ]:
        reply = _ask_v1(node.channel, _string_field(4, symbol))  # file_containing_symbol
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in reply.file_descriptor_response.file_descriptor_proto
        ]
        assert package in {f.package for f in files}, symbol
