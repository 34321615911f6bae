from proto import handle_pb2 as _handle_pb2
from proto import sync_pb2 as _sync_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FollowRequest(_message.Message):
    __slots__ = ("log_id", "after_sequence", "after_timestamp_ns", "replica_id", "checkpoint_sequence", "checkpoint_signed_ns")
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AFTER_TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SIGNED_NS_FIELD_NUMBER: _ClassVar[int]
    log_id: str
    after_sequence: int
    after_timestamp_ns: int
    replica_id: str
    checkpoint_sequence: int
    checkpoint_signed_ns: int
    def __init__(self, log_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., after_timestamp_ns: _Optional[int] = ..., replica_id: _Optional[str] = ..., checkpoint_sequence: _Optional[int] = ..., checkpoint_signed_ns: _Optional[int] = ...) -> None: ...

class FollowMessage(_message.Message):
    __slots__ = ("start", "snapshot", "snapshot_end", "credentials", "changes")
    START_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_END_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    start: FollowStart
    snapshot: _sync_pb2.SnapshotChunk
    snapshot_end: SnapshotEnd
    credentials: Credentials
    changes: Changes
    def __init__(self, start: _Optional[_Union[FollowStart, _Mapping]] = ..., snapshot: _Optional[_Union[_sync_pb2.SnapshotChunk, _Mapping]] = ..., snapshot_end: _Optional[_Union[SnapshotEnd, _Mapping]] = ..., credentials: _Optional[_Union[Credentials, _Mapping]] = ..., changes: _Optional[_Union[Changes, _Mapping]] = ...) -> None: ...

class FollowStart(_message.Message):
    __slots__ = ("node_prefix", "log_id", "node_id", "first_sequence", "last_sequence", "snapshot", "reason", "http_site")
    NODE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HTTP_SITE_FIELD_NUMBER: _ClassVar[int]
    node_prefix: str
    log_id: str
    node_id: str
    first_sequence: int
    last_sequence: int
    snapshot: bool
    reason: str
    http_site: str
    def __init__(self, node_prefix: _Optional[str] = ..., log_id: _Optional[str] = ..., node_id: _Optional[str] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., snapshot: _Optional[bool] = ..., reason: _Optional[str] = ..., http_site: _Optional[str] = ...) -> None: ...

class SnapshotEnd(_message.Message):
    __slots__ = ("sequence", "timestamp_ns", "chain_from", "chain_previous", "chain_hashes")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FROM_FIELD_NUMBER: _ClassVar[int]
    CHAIN_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_HASHES_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    timestamp_ns: int
    chain_from: int
    chain_previous: bytes
    chain_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, sequence: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., chain_from: _Optional[int] = ..., chain_previous: _Optional[bytes] = ..., chain_hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TokenEntry(_message.Message):
    __slots__ = ("token_hash", "account")
    TOKEN_HASH_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    token_hash: bytes
    account: str
    def __init__(self, token_hash: _Optional[bytes] = ..., account: _Optional[str] = ...) -> None: ...

class Credentials(_message.Message):
    __slots__ = ("accounts", "tokens", "last")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Account]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenEntry]
    last: bool
    def __init__(self, accounts: _Optional[_Iterable[_Union[_handle_pb2.Account, _Mapping]]] = ..., tokens: _Optional[_Iterable[_Union[TokenEntry, _Mapping]]] = ..., last: _Optional[bool] = ...) -> None: ...

class Changes(_message.Message):
    __slots__ = ("entries", "last_sequence", "checkpoints")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_handle_pb2.ChangeEntry]
    last_sequence: int
    checkpoints: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Checkpoint]
    def __init__(self, entries: _Optional[_Iterable[_Union[_handle_pb2.ChangeEntry, _Mapping]]] = ..., last_sequence: _Optional[int] = ..., checkpoints: _Optional[_Iterable[_Union[_handle_pb2.Checkpoint, _Mapping]]] = ...) -> None: ...

class PositionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PositionResponse(_message.Message):
    __slots__ = ("last_sequence", "first_sequence", "log_id", "role")
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    last_sequence: int
    first_sequence: int
    log_id: str
    role: str
    def __init__(self, last_sequence: _Optional[int] = ..., first_sequence: _Optional[int] = ..., log_id: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...
