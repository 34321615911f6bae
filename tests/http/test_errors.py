"""The HTTP face's error table covers every domain error, as Handle's REST API maps codes."""

from __future__ import annotations

import pytest

from registry import errors
from resolver.http.errors import STATUS_BY_ERROR, status_of

# Handle code -> HTTP status, from Handle's REST mapping.
BY_HANDLE_CODE = {1: 200, 2: 500, 100: 404, 101: 409, 102: 400, 200: 400, 201: 409, 202: 400,
                  301: 400, 303: 400, 402: 401, 401: 403, 4: 400, 3: 503}  # fmt: skip
# Where HTTP itself decides: a refused credential is 401, an oversized request 413, a
# sync copy the top-level node refuses as conflicting with what it holds 409, a full
# disk 507 (Insufficient Storage), a write to a replica that knows no HTTP site of its
# primary 503 (it answers 307 to the primary when it knows one), a record whose signed
# proof no longer exists 409.
HTTP_SAYS = {errors.AuthenticationFailed: 401, errors.TokenExpired: 401, errors.TooLarge: 413, errors.SyncRefused: 409,
             errors.StoreOutOfSpace: 507, errors.ReadOnlyReplica: 503, errors.ChainBroken: 409,
             errors.ProofUnavailable: 409}  # fmt: skip


@pytest.mark.parametrize("cls", errors.all_error_classes(), ids=lambda c: c.__name__)
def test_every_domain_error_has_a_status(cls: type[errors.IdnodeError]) -> None:
    assert cls in STATUS_BY_ERROR, f"{cls.__name__} is missing from resolver/http/errors.py"
    expected = HTTP_SAYS[cls] if cls in HTTP_SAYS else BY_HANDLE_CODE[cls.handle_code]
    assert STATUS_BY_ERROR[cls] == expected


def test_values_not_found_is_a_success_on_resolve_only() -> None:
    missing = errors.ValueNotFound("no value")

    assert (status_of(missing, resolving=True), status_of(missing)) == (200, 400)


def test_an_unlisted_subclass_takes_its_parents_status() -> None:
    class Special(errors.HandleNotFound):
        pass

    assert status_of(Special("x")) == 404
