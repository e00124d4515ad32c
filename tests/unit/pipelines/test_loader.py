from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sidecar.errors import PipelineConfigError
from sidecar.inference.types import TaskType
from sidecar.pipelines import load_pipeline, load_pipelines, parse_pipeline_text, validate_file
from sidecar.pipelines.schema import DocumentIdFrom, Engine, Operation, TargetType

ROOT = Path(__file__).resolve().parents[3]
ENV = {
    "SIDECAR_KAFKA_BOOTSTRAP": "127.0.0.1:9092,127.0.0.1:9093",
    "SIDECAR_OPENSEARCH_URL": "http://os:9200",
    "SIDECAR_ES_URL": "http://es:9200",
}

VALID = """\
name: p1
source:
  kafka:
    bootstrap_servers: ${SIDECAR_KAFKA_BOOTSTRAP}
    topics: docs
    group_id: g1
fields:
  - input: title
    endpoint: .splade-tiny
    target: ml.tokens
sink:
  engine: opensearch
  urls: ${SIDECAR_OPENSEARCH_URL}
  index: docs
"""


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    config, problems = parse_pipeline_text(textwrap.dedent(text), "p.yaml", ENV if env is None else env)
    assert (config is None) == bool(problems)
    return [str(p) for p in problems]


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("**/*.yaml")), ids=lambda p: p.name)
def test_shipped_pipelines_are_valid(path: Path) -> None:
    config, problems = validate_file(path, ENV)
    assert problems == [] and config is not None


def test_valid_pipeline_with_defaults_and_interpolation() -> None:
    config, problems = parse_pipeline_text(VALID, "p.yaml", ENV)
    assert problems == [] and config is not None
    assert config.kafka.bootstrap_servers == ["127.0.0.1:9092", "127.0.0.1:9093"]
    assert config.kafka.topics == ["docs"]
    assert config.kafka.document_id.from_ is DocumentIdFrom.KEY
    assert config.fields[0].input == ["title"] and config.fields[0].type is TargetType.RANK_FEATURES
    assert config.fields[0].hash_path == "ml.tokens_hash"
    assert config.sink.engine is Engine.OPENSEARCH and config.sink.urls == ["http://os:9200"]
    assert config.sink.operation is Operation.INDEX and config.errors.max_retries == 5
    assert config.endpoint_ids == [".splade-tiny"]


def test_every_problem_is_reported_with_line_and_key() -> None:
    text = """\
    name: Bad Name
    source:
      kafka:
        bootstrap_servers: ${MISSING_VAR}
        topics: docs
        group_id: g1
        start: yesterday
        typo_key: 1
    fields:
      - input: "two words"
        endpoint: .splade-tiny
        target: ml.tokens
        pruning: {top_k: 0}
      - endpoint: .splade-tiny
        target: other
    sink:
      engine: solr
      urls: http://x
      index: docs
      bulk: {max_docs: many}
    """
    problems = problems_of(text)
    expected = [
        "p.yaml:4: source.kafka.bootstrap_servers: environment variable [MISSING_VAR] is not set",
        "p.yaml:1: name: must be lowercase letters",
        "p.yaml:7: source.kafka.start: Input should be 'earliest' or 'latest'",
        "p.yaml:8: source.kafka.typo_key: Extra inputs are not permitted",
        "p.yaml:10: fields[0].input[0]: [two words] is not a field path",
        "p.yaml:13: fields[0].pruning.top_k: Input should be greater than 0",
        "p.yaml:14: fields[1].input: Field required",
        "p.yaml:17: sink.engine: Input should be 'elasticsearch' or 'opensearch'",
        "p.yaml:20: sink.bulk.max_docs: Input should be a valid integer",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), (line, problems)


def test_cross_field_problems_point_at_the_key_to_change() -> None:
    text = VALID.replace("    topics: docs\n", "    topics: docs\n    pattern: 'docs-.*'\n").replace(
        "    target: ml.tokens\n",
        "    target: ml.tokens\n    type: sparse_vector\n  - input: body\n    endpoint: .splade-tiny\n"
        "    target: ml.tokens\n    type: dense_vector\n",
    )
    problems = problems_of(text)
    assert "p.yaml:3: source.kafka: set exactly one of [topics] and [pattern]" in problems
    assert (
        "p.yaml:12: fields[0].type: OpenSearch has no [sparse_vector] field; use [rank_features]" in problems
    )
    assert "p.yaml:15: fields[1].target: [ml.tokens] is also written by fields[0]" in problems
    assert any(
        p.startswith("p.yaml:14: fields[1].endpoint: endpoint [.splade-tiny] is [sparse_embedding]")
        for p in problems
    )


def test_endpoints_checked_against_a_registry_lookup() -> None:
    def lookup(inference_id: str) -> TaskType | None:
        return {"my-dense": TaskType.TEXT_EMBEDDING}.get(inference_id)

    _, problems = parse_pipeline_text(VALID, "p.yaml", ENV, lookup)
    assert [str(p) for p in problems] == [
        "p.yaml:9: fields[0].endpoint: Inference endpoint not found [.splade-tiny]"
    ]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "    security: {protocol: SASL_SSL}\n",
            "source.kafka.security.sasl: required with protocol [SASL_SSL]",
        ),
        (
            "    security: {sasl: {username: u, password: p}}\n",
            "source.kafka.security.sasl: not used with protocol",
        ),
        (
            "    document_id: {from: field}\n",
            "source.kafka.document_id.field: required when [from] is [field]",
        ),
        ("    pattern: '(['\n", "source.kafka.pattern: invalid regular expression"),
    ],
)
def test_source_rules(snippet: str, expected: str) -> None:
    text = VALID.replace("    group_id: g1\n", "    group_id: g1\n" + snippet)
    assert any(expected in p for p in problems_of(text)), problems_of(text)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ("Docs", "index names must be lowercase"),
        ("<docs-{later}>", "invalid date math expression [later]"),
        ("<docs-{now/d}", "date math index names are written"),
    ],
)
def test_index_rules(index: str, expected: str) -> None:
    problems = problems_of(VALID.replace("  index: docs", f"  index: '{index}'"))
    assert any(p.startswith("p.yaml:14: sink.index:") and expected in p for p in problems), problems


def test_chunking_settings_validated_like_elasticsearch() -> None:
    text = VALID.replace(
        "    target: ml.tokens\n",
        "    target: ml.tokens\n    chunking: {strategy: word, max_chunk_size: 5}\n",
    )
    [problem] = problems_of(text)
    assert problem.startswith(
        "p.yaml:11: fields[0].chunking: Validation Failed: 1: [chunking_settings] Invalid value [5]"
    )


def test_env_defaults_and_escapes() -> None:
    text = VALID.replace("group_id: g1", "group_id: ${GROUP:-fallback}-$${literal}")
    config, problems = parse_pipeline_text(text, "p.yaml", ENV)
    assert problems == [] and config is not None and config.kafka.group_id == "fallback-${literal}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "p.yaml:2: <file>: invalid YAML"),
        ("- just\n- a list\n", "p.yaml:1: <file>: a pipeline file must hold one mapping"),
        (VALID + "name: again\n", "p.yaml:15: name: duplicate key"),
    ],
)
def test_file_level_problems(text: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems_of(text)), problems_of(text)


def test_load_pipelines_raises_all_problems_and_rejects_duplicate_names(tmp_path: Path) -> None:
    good = tmp_path / "a.yaml"
    good.write_text(VALID)
    same_name = tmp_path / "b.yaml"
    same_name.write_text(VALID)
    broken = tmp_path / "c.yaml"
    broken.write_text(VALID.replace("group_id: g1", "group_id: [1, 2]"))
    with pytest.raises(PipelineConfigError) as caught:
        load_pipelines([good, same_name, broken], ENV)
    problems = caught.value.problems
    assert any("pipeline name [p1] is also used by" in p for p in problems)
    assert any(p.startswith(f"{broken}:6: source.kafka.group_id:") for p in problems)
    assert load_pipeline(good, ENV).name == "p1"
    with pytest.raises(PipelineConfigError, match="cannot read the file"):
        load_pipeline(tmp_path / "missing.yaml", ENV)
