from proto import handle_pb2 as _handle_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveRequest(_message.Message):
    __slots__ = ("identifier", "types", "indexes", "recursive", "min_sequence", "proof")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    types: _containers.RepeatedScalarFieldContainer[str]
    indexes: _containers.RepeatedScalarFieldContainer[int]
    recursive: bool
    min_sequence: int
    proof: bool
    def __init__(self, identifier: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., indexes: _Optional[_Iterable[int]] = ..., recursive: _Optional[bool] = ..., min_sequence: _Optional[int] = ..., proof: _Optional[bool] = ...) -> None: ...

class Referral(_message.Message):
    __slots__ = ("code", "prefix", "sites", "ttl")
    CODE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    code: int
    prefix: str
    sites: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Site]
    ttl: int
    def __init__(self, code: _Optional[int] = ..., prefix: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[_handle_pb2.Site, _Mapping]]] = ..., ttl: _Optional[int] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("identifier", "values", "referral", "takeover", "code", "proof")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_FIELD_NUMBER: _ClassVar[int]
    TAKEOVER_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    values: _containers.RepeatedCompositeFieldContainer[_handle_pb2.HandleValue]
    referral: Referral
    takeover: bool
    code: int
    proof: _handle_pb2.ChainProof
    def __init__(self, identifier: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_handle_pb2.HandleValue, _Mapping]]] = ..., referral: _Optional[_Union[Referral, _Mapping]] = ..., takeover: _Optional[bool] = ..., code: _Optional[int] = ..., proof: _Optional[_Union[_handle_pb2.ChainProof, _Mapping]] = ...) -> None: ...

class BatchResolveRequest(_message.Message):
    __slots__ = ("requests", "min_sequence")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ResolveRequest]
    min_sequence: int
    def __init__(self, requests: _Optional[_Iterable[_Union[ResolveRequest, _Mapping]]] = ..., min_sequence: _Optional[int] = ...) -> None: ...

class BatchResolveResult(_message.Message):
    __slots__ = ("response", "status", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: ResolveResponse
    status: int
    error: str
    def __init__(self, response: _Optional[_Union[ResolveResponse, _Mapping]] = ..., status: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class BatchResolveResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchResolveResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchResolveResult, _Mapping]]] = ...) -> None: ...
