import pytest

from sidecar.errors import SettingsValidationError
from sidecar.inference.chunking import DEFAULT_CHUNKING, ChunkingSettings, chunk_text


def test_default_is_sentence_250_overlap_1() -> None:
    assert ChunkingSettings.from_dict(None).to_dict() == {
        "strategy": "sentence",
        "max_chunk_size": 250,
        "sentence_overlap": 1,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"strategy": "sentence"}, "does not contain the required setting [max_chunk_size]"),
        (
            {"strategy": "sentence", "max_chunk_size": 19},
            "[max_chunk_size] must be a greater than or equal to [20]",
        ),
        ({"strategy": "sentence", "max_chunk_size": 50, "sentence_overlap": 2}, "must be either 0 or 1"),
        (
            {"strategy": "sentence", "max_chunk_size": 50, "overlap": 2},
            "can not have the following settings: [overlap]",
        ),
        ({"strategy": "word", "max_chunk_size": 50}, "required setting [overlap]"),
        (
            {"strategy": "word", "max_chunk_size": 50, "overlap": 26},
            "less than or equal to half of [max_chunk_size]",
        ),
        ({"strategy": "word", "max_chunk_size": 301, "overlap": 1}, "less than or equal to [300]"),
        ({"strategy": "none", "max_chunk_size": 50}, "None based chunking settings can not have"),
        ({"strategy": "paragraph"}, "Invalid chunkingStrategy paragraph"),
        ({"max_chunk_size": 50}, "required setting [strategy]"),
    ],
)
def test_validation_matches_elasticsearch(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsValidationError) as err:
        ChunkingSettings.from_dict(raw)
    assert message in err.value.reason
    assert err.value.reason.startswith("Validation Failed: 1: ")


def test_word_windows_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(25))
    chunks = chunk_text(
        text, ChunkingSettings.from_dict({"strategy": "word", "max_chunk_size": 10, "overlap": 5})
    )
    assert chunks[0].split() == [f"w{i}" for i in range(10)]
    assert chunks[1].split()[0] == "w5"
    assert chunks[-1].split()[-1] == "w24"
    assert all(len(c.split()) <= 10 for c in chunks)


def test_sentence_chunks_repeat_the_last_sentence_when_overlapping() -> None:
    sentences = [f"Sentence number {i} has six words." for i in range(10)]
    text = " ".join(sentences)
    chunks = chunk_text(text, ChunkingSettings("sentence", 20, 0, 1))
    assert chunks[0] == " ".join(sentences[:3])
    assert chunks[1].startswith(sentences[2])
    assert all(len(c.split()) <= 20 for c in chunks)
    no_overlap = chunk_text(text, ChunkingSettings("sentence", 20, 0, 0))
    assert no_overlap[1].startswith(sentences[3])


def test_long_sentence_is_cut_into_word_windows_and_short_text_is_one_chunk() -> None:
    long_sentence = " ".join(["word"] * 45)
    assert [len(c.split()) for c in chunk_text(long_sentence, ChunkingSettings("sentence", 20, 0, 0))] == [
        20,
        20,
        5,
    ]
    assert chunk_text("short text.", DEFAULT_CHUNKING) == ["short text."]
    assert chunk_text(long_sentence, ChunkingSettings(strategy="none")) == [long_sentence]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"strategy": "recursive"}, "does not contain the required setting [max_chunk_size]"),
        (
            {"strategy": "recursive", "max_chunk_size": 9, "separators": ["\n"]},
            "[max_chunk_size] must be a greater than or equal to [10]",
        ),
        (
            {
                "strategy": "recursive",
                "max_chunk_size": 20,
                "separators": ["\n"],
                "separator_group": "markdown",
            },
            "can not have both separators and separator_set",
        ),
        ({"strategy": "recursive", "max_chunk_size": 20, "separators": []}, "empty list of separators"),
        ({"strategy": "recursive", "max_chunk_size": 20, "separators": ["x"] * 51}, "must not exceed [50]"),
        ({"strategy": "recursive", "max_chunk_size": 20, "separator_group": "html"}, "must be one of"),
        ({"strategy": "recursive", "max_chunk_size": 20, "separators": ["("]}, "not a valid regex"),
        (
            {"strategy": "recursive", "max_chunk_size": 20, "overlap": 2},
            "Recursive chunking settings can not have the following settings: [overlap]",
        ),
    ],
)
def test_recursive_validation(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsValidationError) as err:
        ChunkingSettings.from_dict(raw)
    assert message in err.value.reason


def test_recursive_settings_store_the_separators() -> None:
    group = ChunkingSettings.from_dict(
        {"strategy": "recursive", "max_chunk_size": 20, "separator_group": "Markdown"}
    )
    assert group.to_dict()["separators"][0] == "\n# "
    default = ChunkingSettings.from_dict({"strategy": "recursive", "max_chunk_size": 20})
    assert default.to_dict() == {
        "strategy": "recursive",
        "max_chunk_size": 20,
        "separators": ["(?<!\\n)\\n\\n(?!\\n)", "(?<!\\n)\\n(?!\\n)"],
    }
    assert ChunkingSettings.from_dict(default.to_dict()) == default  # a stored endpoint reads back


def test_recursive_chunks_split_paragraphs_then_lines_and_merge_what_fits() -> None:
    paragraph = lambda tag, n: " ".join(f"{tag}{i}" for i in range(n))  # noqa: E731
    text = "\n\n".join([paragraph("a", 6), paragraph("b", 6), paragraph("c", 14)])
    settings = ChunkingSettings.from_dict(
        {"strategy": "recursive", "max_chunk_size": 12, "separator_group": "plaintext"}
    )
    chunks = chunk_text(text, settings)
    # a+b fit together (12 words); c (14) is split further: no line breaks, so sentences cut it.
    assert chunks[0].split() == paragraph("a", 6).split() + paragraph("b", 6).split()
    assert all(len(c.split()) <= 12 for c in chunks)
    assert " ".join(" ".join(c.split()) for c in chunks) == " ".join(text.split())  # nothing lost


def test_recursive_markdown_headings_start_chunks() -> None:
    sections = [f"# Part {i}\n" + " ".join(f"p{i}w{j}" for j in range(6)) for i in range(3)]
    text = "\n".join(sections)
    settings = ChunkingSettings.from_dict(
        {"strategy": "recursive", "max_chunk_size": 10, "separator_group": "markdown"}
    )
    chunks = chunk_text(text, settings)
    assert [c.strip().splitlines()[0] for c in chunks] == ["# Part 0", "# Part 1", "# Part 2"]
