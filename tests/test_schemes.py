"""Tag scheme detection, chunking and conversion, checked against tables and against seqeval."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from pytest_nerrobust.errors import CorpusError
from pytest_nerrobust.schemes import (
    chunk_tags,
    convert_tags,
    detect_scheme,
    from_iob2,
    normalize_scheme,
    parse_tag,
    tags_for_chunks,
    to_iob2,
)

TO_IOB2_CASES = [
    ("IOB1", "I-PER I-PER O I-LOC", "B-PER I-PER O B-LOC"),
    ("IOB1", "I-PER B-PER I-PER", "B-PER B-PER I-PER"),
    ("IOB1", "I-ORG I-LOC", "B-ORG B-LOC"),
    ("IOB2", "O I-PER I-PER", "O B-PER I-PER"),
    ("IOB2", "B-PER I-LOC", "B-PER B-LOC"),
    ("IOB2", "B-PER I-PER B-PER", "B-PER I-PER B-PER"),
    ("IOBES", "S-PER B-LOC I-LOC E-LOC O", "B-PER B-LOC I-LOC I-LOC O"),
    ("IOBES", "S-PER S-PER", "B-PER B-PER"),
    ("IOBES", "O I-PER E-PER", "O B-PER I-PER"),
    ("IOBES", "B-PER E-PER I-PER", "B-PER I-PER B-PER"),
    ("IOBES", "B-PER O", "B-PER O"),
    ("BILOU", "U-MISC B-ORG L-ORG", "B-MISC B-ORG I-ORG"),
    ("BILOU", "B-ORG I-ORG I-ORG L-ORG U-ORG", "B-ORG I-ORG I-ORG I-ORG B-ORG"),
    ("BILOU", "L-LOC L-LOC", "B-LOC B-LOC"),
]

FROM_IOB2_CASES = [
    ("IOB1", "B-PER I-PER O B-LOC", "I-PER I-PER O I-LOC"),
    ("IOB1", "B-PER B-PER I-PER", "I-PER B-PER I-PER"),
    ("IOB1", "B-PER B-LOC", "I-PER I-LOC"),
    ("IOBES", "B-PER O B-LOC I-LOC I-LOC", "S-PER O B-LOC I-LOC E-LOC"),
    ("IOBES", "B-PER B-PER", "S-PER S-PER"),
    ("BILOU", "B-PER O B-LOC I-LOC", "U-PER O B-LOC L-LOC"),
    ("IOB2", "O I-PER", "O B-PER"),
]


@pytest.mark.parametrize(("scheme", "tags", "expected"), TO_IOB2_CASES)
def test_to_iob2_table(scheme: str, tags: str, expected: str) -> None:
    assert to_iob2(tags.split(), scheme) == expected.split()


@pytest.mark.parametrize(("scheme", "tags", "expected"), FROM_IOB2_CASES)
def test_from_iob2_table(scheme: str, tags: str, expected: str) -> None:
    assert from_iob2(tags.split(), scheme) == expected.split()


@pytest.mark.parametrize(
    ("tags", "scheme", "expected"),
    [
        ("S-PER B-LOC E-LOC", "IOBES", [(0, 1, "PER"), (1, 3, "LOC")]),
        ("O I-PER I-PER B-PER", "IOB2", [(1, 3, "PER"), (3, 4, "PER")]),
        ("B-WORK_OF_ART I-WORK_OF_ART", "IOB2", [(0, 2, "WORK_OF_ART")]),
        ("B-X-Y I-X-Y", "IOB2", [(0, 2, "X-Y")]),
        ("", "IOB2", []),
    ],
)
def test_chunk_tags_table(tags: str, scheme: str, expected: list) -> None:
    assert chunk_tags(tags.split(), scheme) == expected


def _random_tags(rng: random.Random, prefixes: str, length: int) -> list[str]:
    tags = []
    for _ in range(length):
        prefix = rng.choice("O" + prefixes)
        tags.append("O" if prefix == "O" else f"{prefix}-{rng.choice(['PER', 'LOC'])}")
    return tags


@pytest.mark.parametrize("prefixes", ["BI", "BIES"])
def test_chunk_tags_matches_seqeval(prefixes: str) -> None:
    rng = random.Random(7)
    scheme = "IOB2" if prefixes == "BI" else "IOBES"
    for _ in range(500):
        tags = _random_tags(rng, prefixes, rng.randint(0, 9))
        ours = [(label, start, end - 1) for start, end, label in chunk_tags(tags, scheme)]
        assert ours == get_entities(tags), tags


def test_bilou_chunks_like_iobes() -> None:
    rng = random.Random(11)
    for _ in range(300):
        tags = _random_tags(rng, "BIES", rng.randint(0, 9))
        bilou = [tag.replace("E-", "L-").replace("S-", "U-") for tag in tags]
        assert chunk_tags(bilou, "BILOU") == chunk_tags(tags, "IOBES"), tags


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "IOBES", "BILOU"])
def test_round_trip_random_iob2(scheme: str) -> None:
    rng = random.Random(3)
    for _ in range(300):
        tags = to_iob2(_random_tags(rng, "BI", rng.randint(0, 9)), "IOB2")
        assert to_iob2(from_iob2(tags, scheme), scheme) == tags, tags


def test_convert_tags_iobes_to_iob1() -> None:
    assert convert_tags(["S-PER", "S-PER", "B-LOC", "E-LOC"], "IOBES", "IOB1") == [
        "I-PER",
        "B-PER",
        "I-LOC",
        "I-LOC",
    ]


@pytest.mark.parametrize(
    ("sequences", "expected"),
    [
        ([["B-PER", "I-PER", "O"], ["I-LOC"]], "IOB2"),
        ([["I-PER", "I-PER", "O"], ["I-LOC", "B-LOC"]], "IOB1"),
        ([["I-PER", "O", "B-LOC"]], "IOB2"),
        ([["O", "O"]], "IOB2"),
        ([], "IOB2"),
        ([["B-PER", "E-PER"], ["B-LOC"]], "IOBES"),
        ([["S-PER"]], "IOBES"),
        ([["U-PER", "O"]], "BILOU"),
        ([["B-PER", "L-PER"]], "BILOU"),
        ([["B-LOC"], ["I-PER"]], "IOB2"),
    ],
)
def test_detect_scheme_table(sequences: list[list[str]], expected: str) -> None:
    assert detect_scheme(sequences) == expected


def test_detect_scheme_mixed_iobes_bilou() -> None:
    with pytest.raises(CorpusError) as raised:
        detect_scheme([["S-PER"], ["O", "U-LOC"]])
    assert "sentence 1, word 1" in str(raised.value)
    assert "sentence 0, word 0" in str(raised.value)


def test_detect_scheme_invalid_tag_located() -> None:
    with pytest.raises(CorpusError) as raised:
        detect_scheme([["O"], ["O", "PER"]], locate=lambda sentence, word: f"f.conll:{10 + sentence + word}")
    assert str(raised.value).startswith("f.conll:12: invalid tag 'PER'")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("iob1", "IOB1"), ("IOB2", "IOB2"), ("bio", "IOB2"), ("BIOES", "IOBES"), ("bilou", "BILOU")],
)
def test_normalize_scheme_names(name: str, expected: str) -> None:
    assert normalize_scheme(name) == expected


def test_normalize_scheme_unknown() -> None:
    with pytest.raises(CorpusError) as raised:
        normalize_scheme("IOB3", source="--ner-scheme")
    message = str(raised.value)
    assert "'IOB3'" in message
    assert "--ner-scheme" in message
    assert "IOB1, IOB2, IOBES, BILOU" in message


def test_normalize_scheme_auto_only_when_allowed() -> None:
    assert normalize_scheme("AUTO", allow_auto=True) == "auto"
    with pytest.raises(CorpusError):
        normalize_scheme("auto")


@pytest.mark.parametrize("tag", ["PER", "B-", "X-PER", "b-PER", "B-NEW YORK", ""])
def test_parse_tag_invalid(tag: str) -> None:
    with pytest.raises(CorpusError, match="expected O or PREFIX-TYPE"):
        parse_tag(tag)


def test_chunk_tags_prefix_outside_scheme() -> None:
    with pytest.raises(CorpusError, match="'S-PER' is not valid in IOB2"):
        chunk_tags(["S-PER"], "IOB2")


@pytest.mark.parametrize("chunks", [[(0, 2, "PER"), (1, 3, "LOC")], [(2, 2, "PER")], [(0, 4, "PER")]])
def test_tags_for_chunks_invalid(chunks: list) -> None:
    with pytest.raises(CorpusError, match="give non-overlapping spans"):
        tags_for_chunks(chunks, 3)
