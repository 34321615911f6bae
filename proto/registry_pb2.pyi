from proto import handle_pb2 as _handle_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WriteResponse(_message.Message):
    __slots__ = ("identifier", "operation", "sequence", "values")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    operation: str
    sequence: int
    values: _containers.RepeatedCompositeFieldContainer[_handle_pb2.HandleValue]
    def __init__(self, identifier: _Optional[str] = ..., operation: _Optional[str] = ..., sequence: _Optional[int] = ..., values: _Optional[_Iterable[_Union[_handle_pb2.HandleValue, _Mapping]]] = ...) -> None: ...

class RemoveValuesRequest(_message.Message):
    __slots__ = ("identifier", "indexes")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    indexes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, identifier: _Optional[str] = ..., indexes: _Optional[_Iterable[int]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("identifier",)
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    def __init__(self, identifier: _Optional[str] = ...) -> None: ...

class BatchRegisterRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Record]
    def __init__(self, records: _Optional[_Iterable[_Union[_handle_pb2.Record, _Mapping]]] = ...) -> None: ...

class BatchItemResult(_message.Message):
    __slots__ = ("outcome", "error")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[BatchItemResult.Outcome]
        CREATED: _ClassVar[BatchItemResult.Outcome]
        UPDATED: _ClassVar[BatchItemResult.Outcome]
        UNCHANGED: _ClassVar[BatchItemResult.Outcome]
        REJECTED: _ClassVar[BatchItemResult.Outcome]
    OUTCOME_UNSPECIFIED: BatchItemResult.Outcome
    CREATED: BatchItemResult.Outcome
    UPDATED: BatchItemResult.Outcome
    UNCHANGED: BatchItemResult.Outcome
    REJECTED: BatchItemResult.Outcome
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    outcome: BatchItemResult.Outcome
    error: str
    def __init__(self, outcome: _Optional[_Union[BatchItemResult.Outcome, str]] = ..., error: _Optional[str] = ...) -> None: ...

class BatchRegisterResponse(_message.Message):
    __slots__ = ("created", "updated", "unchanged", "rejected", "sequence", "results")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    unchanged: int
    rejected: int
    sequence: int
    results: _containers.RepeatedCompositeFieldContainer[BatchItemResult]
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., rejected: _Optional[int] = ..., sequence: _Optional[int] = ..., results: _Optional[_Iterable[_Union[BatchItemResult, _Mapping]]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("prefix", "page_size", "page_token")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    page_size: int
    page_token: str
    def __init__(self, prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("records", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Record]
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[_handle_pb2.Record, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateEnterpriseRequest(_message.Message):
    __slots__ = ("code", "name", "contact", "parent_prefix", "expires_in_seconds")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    PARENT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    contact: str
    parent_prefix: str
    expires_in_seconds: int
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., contact: _Optional[str] = ..., parent_prefix: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class CreateEnterpriseResponse(_message.Message):
    __slots__ = ("prefix", "account", "token")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    account: str
    token: str
    def __init__(self, prefix: _Optional[str] = ..., account: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class PutPrefixRequest(_message.Message):
    __slots__ = ("prefix", "sites")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    sites: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Site]
    def __init__(self, prefix: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[_handle_pb2.Site, _Mapping]]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEnterprisesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Enterprise(_message.Message):
    __slots__ = ("account", "prefix", "name", "contact", "created", "derived_prefixes", "sites")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DERIVED_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    account: str
    prefix: str
    name: str
    contact: str
    created: int
    derived_prefixes: _containers.RepeatedScalarFieldContainer[str]
    sites: _containers.RepeatedCompositeFieldContainer[_handle_pb2.Site]
    def __init__(self, account: _Optional[str] = ..., prefix: _Optional[str] = ..., name: _Optional[str] = ..., contact: _Optional[str] = ..., created: _Optional[int] = ..., derived_prefixes: _Optional[_Iterable[str]] = ..., sites: _Optional[_Iterable[_Union[_handle_pb2.Site, _Mapping]]] = ...) -> None: ...

class ListEnterprisesResponse(_message.Message):
    __slots__ = ("enterprises", "next_page_token")
    ENTERPRISES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    enterprises: _containers.RepeatedCompositeFieldContainer[Enterprise]
    next_page_token: str
    def __init__(self, enterprises: _Optional[_Iterable[_Union[Enterprise, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AccountSummary(_message.Message):
    __slots__ = ("account", "prefixes", "last_used")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_FIELD_NUMBER: _ClassVar[int]
    account: _handle_pb2.Account
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    last_used: int
    def __init__(self, account: _Optional[_Union[_handle_pb2.Account, _Mapping]] = ..., prefixes: _Optional[_Iterable[str]] = ..., last_used: _Optional[int] = ...) -> None: ...

class ListAccountsResponse(_message.Message):
    __slots__ = ("accounts", "next_page_token")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[AccountSummary]
    next_page_token: str
    def __init__(self, accounts: _Optional[_Iterable[_Union[AccountSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RotateTokenRequest(_message.Message):
    __slots__ = ("account", "grace_seconds", "expires_in_seconds")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    account: str
    grace_seconds: int
    expires_in_seconds: int
    def __init__(self, account: _Optional[str] = ..., grace_seconds: _Optional[int] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class RotateTokenResponse(_message.Message):
    __slots__ = ("account", "token", "credential", "old_valid_until")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    OLD_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    account: str
    token: str
    credential: _handle_pb2.Credential
    old_valid_until: int
    def __init__(self, account: _Optional[str] = ..., token: _Optional[str] = ..., credential: _Optional[_Union[_handle_pb2.Credential, _Mapping]] = ..., old_valid_until: _Optional[int] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("account", "credential_id")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    account: str
    credential_id: str
    def __init__(self, account: _Optional[str] = ..., credential_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("account", "revoked")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    account: str
    revoked: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account: _Optional[str] = ..., revoked: _Optional[_Iterable[str]] = ...) -> None: ...
