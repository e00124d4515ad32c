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
