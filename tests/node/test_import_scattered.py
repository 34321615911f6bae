"""`idnode import` with one identifier's rows spread over the file: every row is stored."""

from __future__ import annotations

import json
from pathlib import Path

from tests.node.conftest import NodeProcess, run_cli


def values_of(node: NodeProcess, identifier: str, token: str) -> list[tuple[int, str, str]]:
    found = run_cli("resolve", identifier, "--server", node.grpc, "--json", token=token)
    assert found.returncode == 0, found.stderr
    return [(v["index"], v["type"], v["data"]) for v in json.loads(found.stdout)["values"]]


def test_rows_of_one_identifier_apart_are_merged_and_a_bad_one_rejects_it_whole(
    node: NodeProcess, tmp_path: Path
) -> None:
    token = json.loads(run_cli("enterprise", "create", "--server", node.grpc, "--json").stdout)[
        "token"
    ]
    source = tmp_path / "scattered.csv"
    source.write_text(
        "identifier,type,data,index\n"
        "88.118.1/DUP1,URL,https://e/dup1,\n"          # line 2
        "88.118.1/OTHER,URL,https://e/other,\n"
        "88.118.1/DUP1,batch,B7,\n"                    # DUP1 again, after OTHER
        "88.118.1/BAD,URL,https://e/bad,\n"
        "88.118.1/SORTED,URL,https://e/s,\n"
        "88.118.1/BAD,batch,B1,zero\n"                 # line 7: a bad row of BAD
        "88.118.1/SORTED,batch,B2,\n"
        "88.118.1/DUP1,cert.url,https://e/cert,9\n"
    )  # fmt: skip

    result = run_cli("import", str(source), "--server", node.grpc, "--json", "--batch-size", "2",
                     token=token)  # fmt: skip

    summary = json.loads(result.stdout)
    assert result.returncode == 1  # one identifier rejected
    assert (summary["rows"], summary["created"], summary["updated"], summary["rejected"]) == (
        8, 3, 0, 1,
    )  # fmt: skip
    assert values_of(node, "88.118.1/DUP1", token) == [
        (1, "URL", "https://e/dup1"), (2, "batch", "B7"), (9, "cert.url", "https://e/cert"),
    ]  # fmt: skip
    assert values_of(node, "88.118.1/SORTED", token) == [
        (1, "URL", "https://e/s"), (2, "batch", "B2"),
    ]  # fmt: skip
    missing = run_cli("resolve", "88.118.1/BAD", "--server", node.grpc, token=token)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    rejects = (tmp_path / "scattered.rejected.csv").read_text().splitlines()
    assert rejects == [
        "line,identifier,reason",
        "7,88.118.1/BAD,index 'zero' is not a whole number from 0 to 4294967295",
    ]

    again = run_cli("import", str(source), "--server", node.grpc, "--json", token=token)
    assert json.loads(again.stdout)["unchanged"] == 3  # the merged records, not halves of them


def test_a_file_that_is_not_csv_is_refused_naming_the_line(
    node: NodeProcess, tmp_path: Path
) -> None:
    source = tmp_path / "broken.csv"
    source.write_text('identifier,type,data\n88.118.1/x,URL,"never closed\n88.118.1/y,URL,z\n'
                      + "x" * 200_000 + "\n")  # fmt: skip
    result = run_cli("import", str(source), "--server", node.grpc)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "broken.csv: line" in result.stderr
