"""pyhandle, unchanged, against a real `idnode serve` with the credentials onboarding prints."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pyhandle.handleclient import RESTHandleClient
from pyhandle.handleexceptions import (
    HandleAlreadyExistsException,
    HandleAuthenticationError,
    HandleNotFoundException,
)

from tests.node.conftest import NodeProcess, run_cli, start_node


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NodeProcess, str, dict[str, str]]]:
    node = start_node(tmp_path_factory.mktemp("pyhandle") / "data", "--http-listen", "127.0.0.1:0")
    try:
        created = run_cli("enterprise", "create", "--server", node.grpc, "--code", "8", "--json")
        assert created.returncode == 0, created.stderr
        enterprise = json.loads(created.stdout)
        yield node, "http://" + node.ready["http"][0], enterprise
    finally:
        node.stop()


def client(url: str, user: str, password: str) -> RESTHandleClient:
    return RESTHandleClient.instantiate_with_username_and_password(
        url, user, password, HTTPS_verify=False
    )


def test_pyhandle_registers_retrieves_modifies_and_deletes(
    served: tuple[NodeProcess, str, dict[str, str]],
) -> None:
    _, url, enterprise = served
    pid = client(url, f"300:0.NA/{enterprise['prefix']}", enterprise["token"])
    handle = f"{enterprise['prefix']}/pyhandle-1"

    assert pid.register_handle(handle, "https://example.com/1", checksum="abc") == handle
    assert pid.retrieve_handle_record(handle)["URL"] == "https://example.com/1"
    assert pid.retrieve_handle_record(handle)["CHECKSUM"] == "abc"
    assert pid.modify_handle_value(handle, URL="https://example.com/2") == handle
    assert pid.get_value_from_handle(handle, "URL") == "https://example.com/2"
    assert pid.delete_handle_value(handle, "CHECKSUM") == handle
    assert "CHECKSUM" not in pid.retrieve_handle_record(handle)
    assert pid.delete_handle(handle) == handle
    assert pid.retrieve_handle_record(handle) is None


def test_pyhandle_sees_the_servers_errors(served: tuple[NodeProcess, str, dict[str, str]]) -> None:
    _, url, enterprise = served
    user = f"300:0.NA/{enterprise['prefix']}"
    pid = client(url, user, enterprise["token"])
    handle = f"{enterprise['prefix']}/pyhandle-2"
    pid.register_handle(handle, "https://example.com/a")

    with pytest.raises(HandleAlreadyExistsException):
        pid.register_handle(handle, "https://example.com/b")
    with pytest.raises(HandleNotFoundException):
        pid.delete_handle(f"{enterprise['prefix']}/never-registered")
    with pytest.raises(HandleNotFoundException):
        client(url, "300:0.NA/88.118.77", enterprise["token"])  # no such user handle
    intruder = client(url, user, "idn_" + "x" * 43)
    with pytest.raises(HandleAuthenticationError):
        intruder.delete_handle(handle)
    assert pid.retrieve_handle_record(handle)["URL"] == "https://example.com/a"
