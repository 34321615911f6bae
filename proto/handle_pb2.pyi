from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HandleValue(_message.Message):
    __slots__ = ("index", "type", "data", "ttl", "timestamp", "public_read")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_READ_FIELD_NUMBER: _ClassVar[int]
    index: int
    type: str
    data: bytes
    ttl: int
    timestamp: int
    public_read: bool
    def __init__(self, index: _Optional[int] = ..., type: _Optional[str] = ..., data: _Optional[bytes] = ..., ttl: _Optional[int] = ..., timestamp: _Optional[int] = ..., public_read: _Optional[bool] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("identifier", "values")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    values: _containers.RepeatedCompositeFieldContainer[HandleValue]
    def __init__(self, identifier: _Optional[str] = ..., values: _Optional[_Iterable[_Union[HandleValue, _Mapping]]] = ...) -> None: ...

class Site(_message.Message):
    __slots__ = ("grpc_address", "dns_address", "http_address", "grpc_tls")
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DNS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GRPC_TLS_FIELD_NUMBER: _ClassVar[int]
    grpc_address: str
    dns_address: str
    http_address: str
    grpc_tls: bool
    def __init__(self, grpc_address: _Optional[str] = ..., dns_address: _Optional[str] = ..., http_address: _Optional[str] = ..., grpc_tls: _Optional[bool] = ...) -> None: ...

class PrefixInfo(_message.Message):
    __slots__ = ("prefix", "owner", "sites", "created", "name", "contact")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    owner: str
    sites: _containers.RepeatedCompositeFieldContainer[Site]
    created: int
    name: str
    contact: str
    def __init__(self, prefix: _Optional[str] = ..., owner: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[Site, _Mapping]]] = ..., created: _Optional[int] = ..., name: _Optional[str] = ..., contact: _Optional[str] = ...) -> None: ...

class ChangeEntry(_message.Message):
    __slots__ = ("sequence", "operation", "identifier", "record", "prefix", "timestamp_ns", "account")
    class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OPERATION_UNSPECIFIED: _ClassVar[ChangeEntry.Operation]
        CREATE: _ClassVar[ChangeEntry.Operation]
        UPDATE: _ClassVar[ChangeEntry.Operation]
        DELETE: _ClassVar[ChangeEntry.Operation]
        PREFIX_PUT: _ClassVar[ChangeEntry.Operation]
        ACCOUNT_PUT: _ClassVar[ChangeEntry.Operation]
    OPERATION_UNSPECIFIED: ChangeEntry.Operation
    CREATE: ChangeEntry.Operation
    UPDATE: ChangeEntry.Operation
    DELETE: ChangeEntry.Operation
    PREFIX_PUT: ChangeEntry.Operation
    ACCOUNT_PUT: ChangeEntry.Operation
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    operation: ChangeEntry.Operation
    identifier: str
    record: Record
    prefix: PrefixInfo
    timestamp_ns: int
    account: Account
    def __init__(self, sequence: _Optional[int] = ..., operation: _Optional[_Union[ChangeEntry.Operation, str]] = ..., identifier: _Optional[str] = ..., record: _Optional[_Union[Record, _Mapping]] = ..., prefix: _Optional[_Union[PrefixInfo, _Mapping]] = ..., timestamp_ns: _Optional[int] = ..., account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("name", "role", "prefixes", "contact", "created", "credentials")
    class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ROLE_UNSPECIFIED: _ClassVar[Account.Role]
        ADMIN: _ClassVar[Account.Role]
        ENTERPRISE: _ClassVar[Account.Role]
        REPLICA: _ClassVar[Account.Role]
    ROLE_UNSPECIFIED: Account.Role
    ADMIN: Account.Role
    ENTERPRISE: Account.Role
    REPLICA: Account.Role
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Account.Role
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    contact: str
    created: int
    credentials: _containers.RepeatedCompositeFieldContainer[Credential]
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Account.Role, str]] = ..., prefixes: _Optional[_Iterable[str]] = ..., contact: _Optional[str] = ..., created: _Optional[int] = ..., credentials: _Optional[_Iterable[_Union[Credential, _Mapping]]] = ...) -> None: ...

class Credential(_message.Message):
    __slots__ = ("id", "created", "expires", "last_used", "revoked", "scheme", "salt", "scrypt_n", "scrypt_r", "scrypt_p", "scrypt_key", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    SCRYPT_N_FIELD_NUMBER: _ClassVar[int]
    SCRYPT_R_FIELD_NUMBER: _ClassVar[int]
    SCRYPT_P_FIELD_NUMBER: _ClassVar[int]
    SCRYPT_KEY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    created: int
    expires: int
    last_used: int
    revoked: int
    scheme: str
    salt: bytes
    scrypt_n: int
    scrypt_r: int
    scrypt_p: int
    scrypt_key: bytes
    note: str
    def __init__(self, id: _Optional[str] = ..., created: _Optional[int] = ..., expires: _Optional[int] = ..., last_used: _Optional[int] = ..., revoked: _Optional[int] = ..., scheme: _Optional[str] = ..., salt: _Optional[bytes] = ..., scrypt_n: _Optional[int] = ..., scrypt_r: _Optional[int] = ..., scrypt_p: _Optional[int] = ..., scrypt_key: _Optional[bytes] = ..., note: _Optional[str] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("first_sequence", "last_sequence", "previous_hash", "head_hash", "merkle_root", "signed_ns", "log_id", "signature")
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    MERKLE_ROOT_FIELD_NUMBER: _ClassVar[int]
    SIGNED_NS_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    first_sequence: int
    last_sequence: int
    previous_hash: bytes
    head_hash: bytes
    merkle_root: bytes
    signed_ns: int
    log_id: str
    signature: bytes
    def __init__(self, first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., previous_hash: _Optional[bytes] = ..., head_hash: _Optional[bytes] = ..., merkle_root: _Optional[bytes] = ..., signed_ns: _Optional[int] = ..., log_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ChainProof(_message.Message):
    __slots__ = ("entry", "previous_hash", "path", "checkpoint")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    entry: ChangeEntry
    previous_hash: bytes
    path: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: Checkpoint
    def __init__(self, entry: _Optional[_Union[ChangeEntry, _Mapping]] = ..., previous_hash: _Optional[bytes] = ..., path: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...
