from proto import handle_pb2 as _handle_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddNodeRequest(_message.Message):
    __slots__ = ("node_prefix", "sites", "token", "client_cert_sha256", "certificate_only")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    sites: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Site]
    token: str
    client_cert_sha256: _containers.RepeatedScalarFieldContainer[str]
    certificate_only: bool
    def __init__(self, node_prefix: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[_handle_pb2.Site, _Mapping]]] = ..., token: _Optional[str] = ..., client_cert_sha256: _Optional[_Iterable[str]] = ..., certificate_only: _Optional[bool] = ...) -> None: ...

class AddNodeResponse(_message.Message):
    __slots__ = ("node_prefix", "token", "client_cert_sha256")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    token: str
    client_cert_sha256: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_prefix: _Optional[str] = ..., token: _Optional[str] = ..., client_cert_sha256: _Optional[_Iterable[str]] = ...) -> None: ...

class HelloRequest(_message.Message):
    __slots__ = ("node_prefix", "log_id", "sites", "first_sequence", "last_sequence", "node_id", "public_key")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    log_id: str
    sites: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Site]
    first_sequence: int
    last_sequence: int
    node_id: str
    public_key: bytes
    def __init__(self, node_prefix: _Optional[str] = ..., log_id: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[_handle_pb2.Site, _Mapping]]] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., node_id: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class HelloResponse(_message.Message):
    __slots__ = ("acked_sequence",)
    ACKED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    acked_sequence: int
    def __init__(self, acked_sequence: _Optional[int] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("node_prefix", "log_id", "entries", "node_id", "checkpoints")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    log_id: str
    entries: _containers.RepeatedCompositeFieldContainer[_handle_pb2.ChangeEntry]
    node_id: str
    checkpoints: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Checkpoint]
    def __init__(self, node_prefix: _Optional[str] = ..., log_id: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[_handle_pb2.ChangeEntry, _Mapping]]] = ..., node_id: _Optional[str] = ..., checkpoints: _Optional[_Iterable[_Union[_handle_pb2.Checkpoint, _Mapping]]] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("acked_sequence", "snapshot_needed")
    ACKED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NEEDED_FIELD_NUMBER: _ClassVar[int]
    acked_sequence: int
    snapshot_needed: bool
    def __init__(self, acked_sequence: _Optional[int] = ..., snapshot_needed: _Optional[bool] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("node_prefix", "log_id", "sequence", "records", "prefixes", "node_id", "checkpoint")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    log_id: str
    sequence: int
    records: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Record]
    prefixes: _containers.RepeatedCompositeFieldContainer[_handle_pb2.PrefixInfo]
    node_id: str
    checkpoint: _handle_pb2.Checkpoint
    def __init__(self, node_prefix: _Optional[str] = ..., log_id: _Optional[str] = ..., sequence: _Optional[int] = ..., records: _Optional[_Iterable[_Union[_handle_pb2.Record, _Mapping]]] = ..., prefixes: _Optional[_Iterable[_Union[_handle_pb2.PrefixInfo, _Mapping]]] = ..., node_id: _Optional[str] = ..., checkpoint: _Optional[_Union[_handle_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class StatsReport(_message.Message):
    __slots__ = ("node_prefix", "period_start", "period_end", "identifiers", "registrations", "resolutions", "enterprise_prefixes")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    ENTERPRISE_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    period_start: int
    period_end: int
    identifiers: int
    registrations: int
    resolutions: int
    enterprise_prefixes: int
    def __init__(self, node_prefix: _Optional[str] = ..., period_start: _Optional[int] = ..., period_end: _Optional[int] = ..., identifiers: _Optional[int] = ..., registrations: _Optional[int] = ..., resolutions: _Optional[int] = ..., enterprise_prefixes: _Optional[int] = ...) -> None: ...

class StatsAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LocateRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class LocateResponse(_message.Message):
    __slots__ = ("code", "prefix", "sites", "ttl", "takeover")
    CODE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    TAKEOVER_FIELD_NUMBER: _ClassVar[int]
    code: int
    prefix: str
    sites: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Site]
    ttl: int
    takeover: bool
    def __init__(self, code: _Optional[int] = ..., prefix: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[_handle_pb2.Site, _Mapping]]] = ..., ttl: _Optional[int] = ..., takeover: _Optional[bool] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_prefix", "sites", "log_id", "acked_sequence", "last_push", "reachable", "takeover", "mirrored_records", "last_stats", "snapshots", "node_id", "refusal", "client_cert_sha256", "public_key", "chain_hash", "checkpoint_sequence")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    ACKED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_PUSH_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    TAKEOVER_FIELD_NUMBER: _ClassVar[int]
    MIRRORED_RECORDS_FIELD_NUMBER: _ClassVar[int]
    LAST_STATS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAIN_HASH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    sites: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Site]
    log_id: str
    acked_sequence: int
    last_push: int
    reachable: bool
    takeover: bool
    mirrored_records: int
    last_stats: StatsReport
    snapshots: int
    node_id: str
    refusal: str
    client_cert_sha256: _containers.RepeatedScalarFieldContainer[str]
    public_key: bytes
    chain_hash: bytes
    checkpoint_sequence: int
    def __init__(self, node_prefix: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[_handle_pb2.Site, _Mapping]]] = ..., log_id: _Optional[str] = ..., acked_sequence: _Optional[int] = ..., last_push: _Optional[int] = ..., reachable: _Optional[bool] = ..., takeover: _Optional[bool] = ..., mirrored_records: _Optional[int] = ..., last_stats: _Optional[_Union[StatsReport, _Mapping]] = ..., snapshots: _Optional[int] = ..., node_id: _Optional[str] = ..., refusal: _Optional[str] = ..., client_cert_sha256: _Optional[_Iterable[str]] = ..., public_key: _Optional[bytes] = ..., chain_hash: _Optional[bytes] = ..., checkpoint_sequence: _Optional[int] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStatus]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeStatus, _Mapping]]] = ...) -> None: ...

class ResetNodeRequest(_message.Message):
    __slots__ = ("node_prefix",)
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    def __init__(self, node_prefix: _Optional[str] = ...) -> None: ...

class ResetNodeResponse(_message.Message):
    __slots__ = ("node_prefix", "previous_node_id", "previous_acked_sequence")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ACKED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    previous_node_id: str
    previous_acked_sequence: int
    def __init__(self, node_prefix: _Optional[str] = ..., previous_node_id: _Optional[str] = ..., previous_acked_sequence: _Optional[int] = ...) -> None: ...

class PinNodeRequest(_message.Message):
    __slots__ = ("node_prefix", "client_cert_sha256", "add")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    client_cert_sha256: _containers.RepeatedScalarFieldContainer[str]
    add: bool
    def __init__(self, node_prefix: _Optional[str] = ..., client_cert_sha256: _Optional[_Iterable[str]] = ..., add: _Optional[bool] = ...) -> None: ...

class PinNodeResponse(_message.Message):
    __slots__ = ("node_prefix", "previous", "client_cert_sha256")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    previous: _containers.RepeatedScalarFieldContainer[str]
    client_cert_sha256: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_prefix: _Optional[str] = ..., previous: _Optional[_Iterable[str]] = ..., client_cert_sha256: _Optional[_Iterable[str]] = ...) -> None: ...
