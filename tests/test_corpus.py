"""Corpus readers and writers on files written by the tests, and on the real CoNLL-2003 files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_nerrobust.corpus import (
    Corpus,
    Sentence,
    Span,
    read_corpus,
    spans_from_tags,
    tags_from_spans,
    write_corpus,
)
from pytest_nerrobust.errors import CorpusError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

FOUR_COLUMNS = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_text(tmp_path: Path, name: str, text: str) -> Path:
    return write_bytes(tmp_path, name, text.encode("utf-8"))


def test_conll_four_columns(tmp_path: Path) -> None:
    corpus = read_corpus(write_text(tmp_path, "a.conll", FOUR_COLUMNS))
    assert len(corpus) == 2
    assert corpus.sentences[0].words == ("EU", "rejects", "German", "call")
    assert corpus.sentences[0].tags == ("B-ORG", "O", "B-MISC", "O")
    assert corpus.sentences[1].spans == [Span(0, 2, "PER")]
    assert corpus.metadata == {"format": "conll", "columns": "4"}


def test_conll_origin_file_line(tmp_path: Path) -> None:
    path = write_text(tmp_path, "a.conll", FOUR_COLUMNS)
    corpus = read_corpus(path)
    assert corpus.sentences[0].origin == f"{path}:3"
    assert corpus.sentences[1].origin == f"{path}:8"
    assert corpus.path == str(path)


def test_conll_two_columns_tab(tmp_path: Path) -> None:
    corpus = read_corpus(write_text(tmp_path, "a.tsv", "New\tB-LOC\nYork\tI-LOC\nwins\tO\n"))
    assert corpus.sentences[0].words == ("New", "York", "wins")
    assert corpus.sentences[0].spans == [Span(0, 2, "LOC")]
    assert corpus.metadata["columns"] == "2"


def test_conll_mixed_separators(tmp_path: Path) -> None:
    corpus = read_corpus(write_text(tmp_path, "a.conll", "Paris \t NNP\tB-LOC\n  Rome  NNP   B-LOC  \n"))
    assert corpus.sentences[0].words == ("Paris", "Rome")
    assert corpus.sentences[0].tags == ("B-LOC", "B-LOC")


@pytest.mark.parametrize(
    "marker",
    [
        "-DOCSTART- -X- -X- O",
        "-DOCSTART- -X- O O",
        "-DOCSTART- O",
        "-DOCSTART-\tO",
        "-docstart- -x- -x- o",
        "-DocStart-",
    ],
)
def test_docstart_variants_never_count(tmp_path: Path, marker: str) -> None:
    text = f"{marker}\n\nParis B-LOC\n\n{marker}\nRome B-LOC\nfell O\n\n{marker}\n"
    corpus = read_corpus(write_text(tmp_path, "a.conll", text))
    assert [sentence.words for sentence in corpus] == [("Paris",), ("Rome", "fell")]
    assert all(span.label == "LOC" for sentence in corpus for span in sentence.spans)
    assert corpus.entity_types == ["LOC"]


def test_docstart_exempt_from_column_count(tmp_path: Path) -> None:
    text = "-DOCSTART- -X- -X- O\n\nParis B-LOC\n\n-DOCSTART- O\n\nRome B-LOC\n"
    corpus = read_corpus(write_text(tmp_path, "a.conll", text))
    assert len(corpus) == 2


def test_docstart_jsonl_never_counts(tmp_path: Path) -> None:
    lines = [
        {"tokens": ["-DOCSTART-"], "ner_tags": ["O"]},
        {"tokens": ["Paris"], "ner_tags": ["B-LOC"]},
    ]
    path = write_text(tmp_path, "a.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    corpus = read_corpus(path)
    assert [sentence.words for sentence in corpus] == [("Paris",)]


def test_blank_lines_in_a_row(tmp_path: Path) -> None:
    corpus = read_corpus(write_text(tmp_path, "a.conll", "\n\nParis B-LOC\n\n\n \t\n\nRome B-LOC\n\n\n"))
    assert [sentence.words for sentence in corpus] == [("Paris",), ("Rome",)]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path, "a.conll", b"-DOCSTART- O\r\n\r\nParis B-LOC\r\nfell O\r\n\r\nRome B-LOC\r\n"
    )
    corpus = read_corpus(path)
    assert [sentence.tags for sentence in corpus] == [("B-LOC", "O"), ("B-LOC",)]
    assert corpus.sentences[1].origin == f"{path}:6"


def test_no_final_newline(tmp_path: Path) -> None:
    corpus = read_corpus(write_text(tmp_path, "a.conll", "Paris B-LOC\n\nRome B-LOC\nfell O"))
    assert corpus.sentences[-1].words == ("Rome", "fell")
    assert corpus.sentences[-1].tags == ("B-LOC", "O")


def test_utf8_bom(tmp_path: Path) -> None:
    corpus = read_corpus(write_bytes(tmp_path, "a.conll", "\ufeffZürich B-LOC\n".encode()))
    assert corpus.sentences[0].words == ("Zürich",)


def test_utf8_bom_jsonl(tmp_path: Path) -> None:
    text = "\ufeff" + json.dumps({"tokens": ["Köln"], "tags": ["B-LOC"]})
    corpus = read_corpus(write_text(tmp_path, "a.jsonl", text))
    assert corpus.sentences[0].words == ("Köln",)


@pytest.mark.parametrize(
    ("words_key", "tags_key"),
    [("tokens", "tags"), ("words", "tags"), ("tokens", "ner_tags"), ("words", "ner_tags")],
)
def test_jsonl_keys(tmp_path: Path, words_key: str, tags_key: str) -> None:
    text = (
        json.dumps({"id": "7", words_key: ["Ann", "Lee", "ran"], tags_key: ["B-PER", "I-PER", "O"]}) + "\n\n"
    )
    corpus = read_corpus(write_text(tmp_path, "a.jsonl", text))
    assert corpus.sentences[0].spans == [Span(0, 2, "PER")]
    assert corpus.metadata == {"format": "jsonl"}


def test_jsonl_sniffed_without_suffix(tmp_path: Path) -> None:
    path = write_text(tmp_path, "a.txt", json.dumps({"tokens": ["Oslo"], "tags": ["B-LOC"]}) + "\n")
    corpus = read_corpus(path)
    assert corpus.metadata["format"] == "jsonl"
    assert corpus.sentences[0].origin == f"{path}:1"


def test_jsonl_integer_tags_with_label_names(tmp_path: Path) -> None:
    path = write_text(tmp_path, "a.jsonl", json.dumps({"tokens": ["Ann", "Lee"], "ner_tags": [1, 2]}) + "\n")
    corpus = read_corpus(path, label_names=["O", "B-PER", "I-PER"])
    assert corpus.sentences[0].tags == ("B-PER", "I-PER")


def test_jsonl_integer_tags_without_label_names(tmp_path: Path) -> None:
    lines = (
        json.dumps({"tokens": ["x"], "tags": ["O"]}) + "\n" + json.dumps({"tokens": ["Ann"], "ner_tags": [1]})
    )
    path = write_text(tmp_path, "ints.jsonl", lines)
    with pytest.raises(CorpusError) as raised:
        read_corpus(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:2: integer tag 1 has no label list")
    assert "label_names" in message


@pytest.mark.parametrize(
    ("scheme", "text", "expected_scheme"),
    [
        ("auto", "Ann I-PER\nLee I-PER\nand O\nBob I-PER\nBo B-PER\n", "IOB1"),
        ("auto", "Ann S-PER\nNew B-LOC\nYork E-LOC\n", "IOBES"),
        ("auto", "Ann U-PER\nNew B-LOC\nYork L-LOC\n", "BILOU"),
        ("auto", "Ann B-PER\nNew B-LOC\nYork I-LOC\n", "IOB2"),
        ("iob1", "Ann I-PER\nNew I-LOC\nYork I-LOC\n", "IOB1"),
        ("IOB2", "Ann I-PER\nNew I-LOC\nYork I-LOC\n", "IOB2"),
    ],
)
def test_scheme_detected_or_forced(tmp_path: Path, scheme: str, text: str, expected_scheme: str) -> None:
    corpus = read_corpus(write_text(tmp_path, "a.conll", text), scheme=scheme)
    assert corpus.scheme == expected_scheme


def test_scheme_converted_to_iob2(tmp_path: Path) -> None:
    corpus = read_corpus(write_text(tmp_path, "a.conll", "Ann U-PER\nNew B-LOC\nYork L-LOC\nsaid O\n"))
    assert corpus.sentences[0].tags == ("B-PER", "B-LOC", "I-LOC", "O")


def test_forced_scheme_rejects_prefix(tmp_path: Path) -> None:
    path = write_text(tmp_path, "a.conll", "Ann B-PER\n\nBob S-PER\n")
    with pytest.raises(CorpusError) as raised:
        read_corpus(path, scheme="IOB2")
    message = str(raised.value)
    assert message.startswith(f"{path}:3: tag 'S-PER' is not valid in IOB2")
    assert "scheme='auto'" in message


def test_mixed_schemes_rejected(tmp_path: Path) -> None:
    path = write_text(tmp_path, "a.conll", "Ann S-PER\n\nBob U-PER\n")
    with pytest.raises(CorpusError) as raised:
        read_corpus(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:3: tag 'U-PER' is BILOU")
    assert f"{path}:1" in message


def test_unknown_scheme_lists_names(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as raised:
        read_corpus(write_text(tmp_path, "a.conll", "Ann B-PER\n"), scheme="BIOUL")
    assert "auto, IOB1, IOB2, IOBES, BILOU" in str(raised.value)


def test_unknown_file_format(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown file_format 'csv'; use one of auto, conll, jsonl"):
        read_corpus(write_text(tmp_path, "a.conll", "Ann B-PER\n"), file_format="csv")


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        ("one.conll", "Ann B-PER\nLee\n", 2, "has one column"),
        ("tag.conll", "Ann B-PER\n\nLee PERSON\n", 3, "invalid tag 'PERSON'"),
        ("tag2.conll", "Ann B-PER\nLee B-\n", 2, "invalid tag 'B-'"),
        ("cols.conll", "Ann NNP B-PER\nLee NNP I-NP I-PER\n", 2, "line has 4 columns but line 1 has 3"),
        ("bad.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a"]\n', 2, "invalid JSON"),
        ("keys.jsonl", '{"text": "a b"}\n', 1, "has no 'tokens' or 'words' key"),
        ("len.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}\n', 1, "2 tokens but 1 tags"),
        ("list.jsonl", '["a", "O"]\n', 1, "expected a JSON object"),
        ("empty.jsonl", '{"tokens": [], "tags": []}\n', 1, "has no tokens"),
    ],
)
def test_malformed_line_error(tmp_path: Path, name: str, text: str, line: int, fragment: str) -> None:
    path = write_text(tmp_path, name, text)
    with pytest.raises(CorpusError) as raised:
        read_corpus(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:{line}: ")
    assert fragment in message


def test_invalid_utf8_line(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "latin.conll", b"Ann B-PER\n\nZ\xfcrich B-LOC\n")
    with pytest.raises(CorpusError) as raised:
        read_corpus(path)
    assert str(raised.value).startswith(f"{path}:3: invalid UTF-8 byte 0xfc")


@pytest.mark.parametrize("text", ["", "\n\n  \n", "\r\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write_text(tmp_path, "empty.conll", text)
    with pytest.raises(CorpusError, match="is empty"):
        read_corpus(path)


def test_markers_only_file(tmp_path: Path) -> None:
    path = write_text(tmp_path, "markers.conll", "-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(CorpusError) as raised:
        read_corpus(path)
    assert str(path) in str(raised.value)
    assert "only -DOCSTART- markers" in str(raised.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as raised:
        read_corpus(tmp_path / "nope.conll")
    assert f"{tmp_path / 'nope.conll'}' was not found" in str(raised.value)


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as raised:
        read_corpus(tmp_path)
    assert f"'{tmp_path}' is a directory" in str(raised.value)


ROUND_TRIP_SENTENCES = [
    Sentence(("Peter", "Blackburn"), ("B-PER", "I-PER")),
    Sentence(("EU", "rejects", "German", "call", "."), ("B-ORG", "O", "B-MISC", "O", "O")),
    Sentence(("Ann", "Bob", "Lee", "in", "New", "York"), ("B-PER", "B-PER", "I-PER", "O", "B-LOC", "I-LOC")),
    Sentence(("Zürich",), ("B-LOC",)),
    Sentence(("nothing", "here"), ("O", "O")),
]


@pytest.mark.parametrize("file_format", ["conll", "jsonl"])
@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "IOBES", "BILOU"])
@pytest.mark.parametrize("docstart", [False, True])
def test_write_read_round_trip(tmp_path: Path, file_format: str, scheme: str, docstart: bool) -> None:
    path = write_corpus(ROUND_TRIP_SENTENCES, tmp_path / f"out.{file_format}", file_format, scheme, docstart)
    corpus = read_corpus(path, scheme=scheme)
    assert [sentence.words for sentence in corpus] == [sentence.words for sentence in ROUND_TRIP_SENTENCES]
    assert [sentence.tags for sentence in corpus] == [sentence.tags for sentence in ROUND_TRIP_SENTENCES]
    assert read_corpus(path).scheme == scheme


def test_write_conll_exact_text(tmp_path: Path) -> None:
    corpus = Corpus(ROUND_TRIP_SENTENCES[:2])
    path = write_corpus(corpus, tmp_path / "out.conll", scheme="BILOU", docstart=True)
    expected = (
        "-DOCSTART- O\n\nPeter B-PER\nBlackburn L-PER\n\nEU U-ORG\nrejects O\nGerman U-MISC\ncall O\n. O\n\n"
    )
    assert path.read_bytes() == expected.encode()


def test_write_jsonl_exact_text(tmp_path: Path) -> None:
    path = write_corpus(ROUND_TRIP_SENTENCES[3:4], tmp_path / "out.jsonl", file_format="jsonl")
    assert path.read_text(encoding="utf-8") == '{"tokens": ["Zürich"], "tags": ["B-LOC"]}\n'


def test_write_conll_rejects_space_word(tmp_path: Path) -> None:
    sentence = Sentence(("New York",), ("B-LOC",), "x.jsonl:4")
    with pytest.raises(CorpusError) as raised:
        write_corpus([sentence], tmp_path / "out.conll")
    message = str(raised.value)
    assert message.startswith("x.jsonl:4: word 0 'New York' contains whitespace")
    assert "file_format='jsonl'" in message


def test_write_jsonl_keeps_space_word(tmp_path: Path) -> None:
    sentence = Sentence(("New York", "won"), ("B-LOC", "O"))
    corpus = read_corpus(write_corpus([sentence], tmp_path / "out.jsonl", file_format="jsonl"))
    assert corpus.sentences[0].words == ("New York", "won")


def test_write_rejects_docstart_word(tmp_path: Path) -> None:
    sentence = Sentence(("a", "-DOCSTART-"), ("O", "O"))
    with pytest.raises(CorpusError, match="would be read back as a document marker"):
        write_corpus([sentence], tmp_path / "out.conll")


def test_write_rejects_invalid_tag(tmp_path: Path) -> None:
    sentence = Sentence(("Ann",), ("S-PER",), "mem:1")
    with pytest.raises(CorpusError, match="^mem:1: tag 'S-PER' is not valid in IOB2"):
        write_corpus([sentence], tmp_path / "out.conll")


def test_sentence_length_mismatch() -> None:
    with pytest.raises(CorpusError, match="has 2 words but 1 tags"):
        Sentence(("a", "b"), ("O",), "f:1")


def test_spans_from_tags_conlleval() -> None:
    assert spans_from_tags(["I-PER", "B-PER", "I-LOC", "O", "I-LOC", "I-LOC"]) == [
        Span(0, 1, "PER"),
        Span(1, 2, "PER"),
        Span(2, 3, "LOC"),
        Span(4, 6, "LOC"),
    ]


def test_tags_from_spans_unsorted() -> None:
    assert tags_from_spans([Span(3, 5, "LOC"), Span(0, 1, "PER")], 5) == ["B-PER", "O", "O", "B-LOC", "I-LOC"]


def _needs_shared_data(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real corpus {path} is absent; it is only present in development checkouts")
    return path


def test_conll2003_iob1_matches_iob2() -> None:
    iob1 = read_corpus(_needs_shared_data("conll2003_iob1/eng.testb"))
    iob2 = read_corpus(_needs_shared_data("conll2003/test.txt"))
    assert iob1.scheme == "IOB1"
    assert iob2.scheme == "IOB2"
    assert len(iob1) == 3453
    assert len(iob2) == 3453
    assert [sentence.words for sentence in iob1] == [sentence.words for sentence in iob2]
    assert [sentence.spans for sentence in iob1] == [sentence.spans for sentence in iob2]
    assert sum(len(sentence.spans) for sentence in iob2) == 5648


def test_ontonotes_tab_two_columns() -> None:
    corpus = read_corpus(_needs_shared_data("ontonotes5/validation.conll"))
    assert corpus.scheme == "IOB2"
    assert len(corpus) == 9603
    assert sum(len(sentence.spans) for sentence in corpus) == 11066
    assert corpus.metadata["columns"] == "2"
