"""The bad-input table of docs/reliability.md: run the hostile-input tests, count their cases.

    .venv/bin/python -m tests.hostile_counts      (the integration rows need `make stack-up`)

Each row names tests by `file::test name prefix`; every parametrized case is one bad input (or, for
the connection rows, one kind of abusive client). The table is printed in Markdown with the cases
collected and passed per row; the exit status is pytest's, so a failing case fails the command.
The fault suite's 120 poison messages (12 kinds) are counted by its own test, not here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import pytest

API = "tests/unit/api/test_hostile_input.py"
HOOK_IT = "tests/integration/test_hook_hostile.py"


@dataclass
class Row:
    what: str
    answer: str
    tests: list[str]
    collected: int = 0
    passed: int = 0
    failed: list[str] = field(default_factory=list)


ROWS = [
    Row(
        "lone surrogates (escaped or raw bytes) on sparse, dense, rerank, hugging_face; JSON nested too deep; "
        "a 5,000-digit compatible-with",
        "400 in Elasticsearch's envelope",
        [
            f"{API}::test_invalid_text_is_a_400_parse_error",
            f"{API}::test_deep_nesting_is_a_400",
            f"{API}::test_a_huge_compatibility_version_is_a_400",
        ],
    ),
    Row(
        "empty input list (3 routes); empty or whitespace-only text (sparse, dense, worker/hook/backfill)",
        "400 validation; sparse `{}`, dense 400; the document gets no value (an update removes the old one)",
        [
            f"{API}::test_an_empty_input_list_is_a_validation_error",
            "tests/unit/api/test_perform.py::test_an_empty_text_",
            "tests/unit/enrichment/test_enricher.py::test_an_input_with_no_content",
            "tests/unit/hook/test_window.py::test_an_update_emptying_the_inputs_removes_the_vector",
            f"{HOOK_IT}::test_emptying_the_input_removes_the_vector",
        ],
    ),
    Row(
        "inference id longer than a document id",
        "400 validation at PUT",
        [f"{API}::test_an_inference_id_longer_than_a_document_id_is_refused"],
    ),
    Row(
        "remote endpoints that could never work (malformed or file:// URL, CR/LF or non-ASCII key), "
        "stored before the checks or brought in by an update",
        "400 at PUT; 502 without the key when already stored",
        [
            f"{API}::test_remote_endpoints_that_could_never_work_are_refused_at_put",
            f"{API}::test_endpoints_stored_before_the_put_checks_fail_with_502_not_500",
            f"{API}::test_an_update_cannot_bring_in_what_a_put_refuses",
        ],
    ),
    Row(
        "secrets with CR/LF and URL credentials (API, hook upstream)",
        "redacted from every answer, log record and metric",
        [
            f"{API}::test_credentials_in_a_remote_url_are_not_echoed",
            f"{API}::test_a_transport_error_quoting_the_key_is_redacted",
            "tests/unit/hook/test_secrets.py::",
        ],
    ),
    Row(
        "local model paths outside the model directories (/etc/passwd, .., missing paths, vocabularies)",
        "one 400 whether or not the path exists",
        [
            f"{API}::test_local_model_paths_outside_the_model_directories_are_refused_alike",
            f"{API}::test_a_sparse_vocabulary_file_outside_the_model_directories_is_refused",
        ],
    ),
    Row(
        "idle, slow-header, slow-body and excess connections; malformed HTTP (API and worker health)",
        "408 / 503 and closed; malformed HTTP 400 in Elasticsearch's envelope",
        [
            "tests/unit/api/test_connections.py::",
            "tests/unit/worker/test_health.py::test_idle_connections_are_closed_and_capped",
        ],
    ),
    Row(
        "compressed bodies: gzip and deflate, corrupt or truncated, inflating past the limit",
        "read; 400; 413",
        ["tests/unit/api/test_compressed_bodies.py::"],
    ),
    Row(
        "hook paths: `..` and `.` ids and index names, unencoded slash, date math (unit and real OpenSearch)",
        "forwarded percent-encoded as names; no route; resolved like the engine",
        [
            "tests/unit/hook/test_routes.py::test_dot_segments_stay_names_on_the_way_to_the_engine",
            "tests/unit/hook/test_routes.py::test_an_unencoded_slash_in_an_index_is_no_route",
            "tests/unit/hook/test_routes.py::test_date_math_index_names_in_the_path_are_resolved",
            f"{HOOK_IT}::test_a_dot_dot_id_is_a_document_not_a_path",
            f"{HOOK_IT}::test_compressed_bulks_and_date_math_paths_like_the_engine",
        ],
    ),
    Row(
        "hook documents: comments, unreadable sources (deep, surrogate), malformed bulk lines",
        "enriched like the engine reads them; a per-item 400, the rest stored; a 400 for the bulk",
        [
            "tests/unit/hook/test_window.py::test_documents_with_comments_are_enriched_as_the_engines_read_them",
            "tests/unit/hook/test_window.py::test_unreadable_sources_get_their_own_400_item",
            "tests/unit/hook/test_ndjson_bulk.py::test_malformed_structure_fails_the_request",
            "tests/unit/hook/test_ndjson_bulk.py::test_a_deeply_nested_action_line_is_malformed_not_a_crash",
            f"{HOOK_IT}::test_documents_with_comments_are_enriched_and_updates_replace_vectors",
            f"{HOOK_IT}::test_unreadable_documents_get_their_own_400_the_rest_are_stored",
        ],
    ),
    Row(
        "worker poison messages (decoder cases; deep nesting and surrogates on both real engines)",
        "a dead letter with its error type, on the first try",
        [
            "tests/unit/worker/test_decode.py::test_poison_messages_become_dead_letters",
            "tests/unit/worker/test_decode.py::test_deep_nesting_and_lone_surrogates_are_poison",
            "tests/unit/worker/test_decode.py::test_bad_id_field",
            "tests/unit/worker/test_decode.py::test_tombstones_follow_on_null",
            "tests/integration/test_worker_poison.py::",
        ],
    ),
]


def _row_of(nodeid: str) -> Row | None:
    for row in ROWS:
        if any(nodeid.startswith(test) for test in row.tests):
            return row
    return None


class Counter:
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        kept = [item for item in items if _row_of(item.nodeid) is not None]
        items[:] = kept
        for item in kept:
            row = _row_of(item.nodeid)
            assert row is not None  # kept above
            row.collected += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = _row_of(report.nodeid)
        if row is None:
            return
        if report.when == "call" and report.passed:
            row.passed += 1
        elif report.failed or report.skipped:
            row.failed.append(report.nodeid)


def main() -> int:
    files = sorted({test.split("::")[0] for row in ROWS for test in row.tests})
    counter = Counter()
    status = pytest.main(["-q", "-p", "no:cacheprovider", *files], plugins=[counter])
    print("\n| bad input | answer | cases | passed |\n| --- | --- | --- | --- |")
    for row in ROWS:
        print(f"| {row.what} | {row.answer} | {row.collected} | {row.passed} |")
    total = sum(r.collected for r in ROWS)
    print(f"| **all** | | **{total}** | **{sum(r.passed for r in ROWS)}** |")
    for row in ROWS:
        for nodeid in row.failed:
            print(f"FAILED {nodeid}")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
