"""Sentences, entity spans, and readers and writers for CoNLL and JSON lines corpora.

Tags are held in IOB2 inside the library whatever the scheme of the file; readers convert on load and
writers convert back on request. ``-DOCSTART-`` document markers never become sentences and are not
counted anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_nerrobust.errors import CorpusError
from pytest_nerrobust.schemes import (
    check_tag,
    chunk_tags,
    detect_scheme,
    from_iob2,
    normalize_scheme,
    tags_for_chunks,
    to_iob2,
)

FILE_FORMATS: tuple[str, ...] = ("auto", "conll", "jsonl")
DOCSTART = "-DOCSTART-"

_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_CONLL_FORBIDDEN = re.compile(r"[ \t\r\n]")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Span:
    """An entity: words ``start`` (inclusive) to ``end`` (exclusive) with entity type ``label``."""

    start: int
    end: int
    label: str

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence. ``tags`` are IOB2; ``origin`` is ``"file:line"`` of its first word."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    origin: str = ""

    def __post_init__(self) -> None:
        if len(self.words) != len(self.tags):
            raise CorpusError(
                f"sentence at {self.origin or '<memory>'} has {len(self.words)} words but {len(self.tags)} tags; "
                "give exactly one tag per word"
            )

    @property
    def spans(self) -> list[Span]:
        """Entities of the sentence, chunked from its IOB2 tags."""
        return spans_from_tags(self.tags)


@dataclass
class Corpus:
    """Sentences read from one file, with the tag scheme detected or declared for that file."""

    sentences: list[Sentence]
    scheme: str = "IOB2"
    path: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self) -> Iterator[Sentence]:
        return iter(self.sentences)

    @property
    def entity_types(self) -> list[str]:
        """Sorted entity types that occur in the gold tags."""
        return sorted({span.label for sentence in self.sentences for span in sentence.spans})


def spans_from_tags(tags: Sequence[str]) -> list[Span]:
    """Chunk IOB2 tags into spans the way conlleval does: an ``I-X`` that does not continue an ``X``
    entity starts a new one.

    Raises :class:`CorpusError` for a tag that is not ``O``, ``B-TYPE`` or ``I-TYPE``.

    >>> spans_from_tags(["B-PER", "I-PER", "O", "I-LOC"])
    [Span(start=0, end=2, label='PER'), Span(start=3, end=4, label='LOC')]
    """
    return [Span(start, end, label) for start, end, label in chunk_tags(tags, "IOB2")]


def tags_from_spans(spans: Iterable[Span], length: int) -> list[str]:
    """Write spans back as IOB2 tags over ``length`` words.

    Raises :class:`CorpusError` for an empty, out-of-range or overlapping span.
    """
    return tags_for_chunks([(span.start, span.end, span.label) for span in spans], length, "IOB2")


@dataclass
class _RawSentence:
    """Words and tags as written in the file, with the line number of each word."""

    words: list[str]
    tags: list[str]
    lines: list[int]


def read_corpus(
    path: str | Path,
    scheme: str = "auto",
    file_format: str = "auto",
    label_names: Sequence[str] | None = None,
) -> Corpus:
    """Read a CoNLL or JSON lines file into sentences with IOB2 tags.

    CoNLL: one word per line with two or more columns separated by spaces or tabs. The first column is
    the word and the last the tag, and every word line of a file has the same number of columns. A blank
    line (or several) ends a sentence. ``-DOCSTART-`` lines, in any case and with any columns, are
    document markers. JSON lines: one object per line with ``tokens`` (or ``words``) and ``tags`` (or
    ``ner_tags``); an object whose first token is ``-DOCSTART-`` is a marker. Both accept CRLF line
    endings, a UTF-8 byte order mark and a missing final newline.

    Args:
        path: the file to read.
        scheme: the file's tag scheme, ``"auto"`` (default) to detect it with
            :func:`pytest_nerrobust.schemes.detect_scheme`, or one of IOB1, IOB2, IOBES, BILOU.
        file_format: ``"auto"`` (default; ``.jsonl``/``.ndjson`` files and files whose first line is a JSON
            object are JSON lines), ``"conll"`` or ``"jsonl"``.
        label_names: tag names for JSON lines files with integer tags, indexed by the integer (default
            ``None``: integer tags are rejected).

    Returns:
        A :class:`Corpus` whose ``scheme`` is the detected or declared scheme of the file and whose
        sentences have IOB2 tags and ``origin`` ``"path:line"``.

    Raises:
        CorpusError: the file is missing, a directory, empty, not UTF-8, or has a malformed line; the
            message gives the file and line and the fix.

    >>> corpus = read_corpus("data/test.conll")  # doctest: +SKIP
    """
    path = Path(path)
    declared = normalize_scheme(scheme, "scheme", allow_auto=True)
    file_format = _normalize_format(file_format)
    lines = _read_lines(path)
    if not any(line.strip(" \t") for line in lines):
        raise CorpusError(f"data file {str(path)!r} is empty; give a file with labelled sentences")

    if file_format == "auto":
        file_format = _sniff_format(path, lines)
    if file_format == "jsonl":
        raw_sentences, columns = _parse_jsonl(path, lines, label_names), 0
    else:
        raw_sentences, columns = _parse_conll(path, lines)
    if not raw_sentences:
        raise CorpusError(
            f"data file {str(path)!r} contains only {DOCSTART} markers and no sentences; "
            "give a file with labelled sentences"
        )

    resolved = _resolve_scheme(path, raw_sentences, declared)
    sentences = [
        Sentence(tuple(raw.words), tuple(to_iob2(raw.tags, resolved)), f"{path}:{raw.lines[0]}")
        for raw in raw_sentences
    ]
    metadata = {"format": file_format}
    if columns:
        metadata["columns"] = str(columns)
    return Corpus(sentences=sentences, scheme=resolved, path=str(path), metadata=metadata)


def _normalize_format(file_format: str) -> str:
    normalized = str(file_format).strip().lower()
    if normalized not in FILE_FORMATS:
        raise CorpusError(f"unknown file_format {file_format!r}; use one of {', '.join(FILE_FORMATS)}")
    return normalized


def _read_lines(path: Path) -> list[str]:
    """Return the lines of a UTF-8 file without line endings, after dropping a byte order mark."""
    if path.is_dir():
        raise CorpusError(
            f"data path {str(path)!r} is a directory; pass one CoNLL or JSON lines file inside it"
        )
    if not path.is_file():
        raise CorpusError(f"data file {str(path)!r} was not found; pass an existing CoNLL or JSON lines file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CorpusError(
            f"{path}:{line}: invalid UTF-8 byte {data[error.start]:#04x}; re-encode the file as UTF-8"
        ) from None
    # Only \n, \r\n and \r end a line: str.splitlines would also split on form feeds and U+2028.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _sniff_format(path: Path, lines: list[str]) -> str:
    if path.suffix.lower() in _JSONL_SUFFIXES:
        return "jsonl"
    first = next(line.strip() for line in lines if line.strip())
    return "jsonl" if first.startswith("{") and first.endswith("}") else "conll"


def _is_docstart(word: str) -> bool:
    return word.upper() == DOCSTART


def _parse_conll(path: Path, lines: list[str]) -> tuple[list[_RawSentence], int]:
    """Split CoNLL lines into raw sentences; return them and the file's column count."""
    sentences: list[_RawSentence] = []
    current = _RawSentence([], [], [])
    expected_columns = 0
    expected_line = 0

    for number, line in enumerate(lines, start=1):
        stripped = line.strip(" \t")
        columns = _FIELD_SEPARATOR.split(stripped) if stripped else []
        # A blank line ends a sentence, and so does a marker written without a blank line before it.
        if not columns or _is_docstart(columns[0]):
            if current.words:
                sentences.append(current)
                current = _RawSentence([], [], [])
            continue

        if len(columns) < 2:
            raise CorpusError(
                f"{path}:{number}: line {stripped!r} has one column; write the word and its tag separated "
                "by a space or a tab, such as 'Paris B-LOC'"
            )
        if not expected_columns:
            expected_columns, expected_line = len(columns), number
        elif len(columns) != expected_columns:
            raise CorpusError(
                f"{path}:{number}: line has {len(columns)} columns but line {expected_line} has "
                f"{expected_columns}; give every word line of the file the same columns"
            )
        current.words.append(columns[0])
        current.tags.append(columns[-1])
        current.lines.append(number)

    if current.words:
        sentences.append(current)
    return sentences, expected_columns


def _parse_jsonl(path: Path, lines: list[str], label_names: Sequence[str] | None) -> list[_RawSentence]:
    sentences: list[_RawSentence] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusError(
                f"{where}: invalid JSON ({error.msg} at column {error.colno}); write one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise CorpusError(
                f"{where}: expected a JSON object with 'tokens' and 'tags', got {type(record).__name__}"
            )

        words = _field(record, ("tokens", "words"), where)
        raw_tags = _field(record, ("tags", "ner_tags"), where)
        if words and isinstance(words[0], str) and _is_docstart(words[0]):
            continue
        if not words:
            raise CorpusError(f"{where}: the sentence has no tokens; remove the line or add its tokens")
        for word in words:
            if not isinstance(word, str) or not word:
                raise CorpusError(
                    f"{where}: token {word!r} is not a non-empty string; write tokens as strings"
                )
        tags = _tag_names(raw_tags, label_names, where)
        if len(tags) != len(words):
            raise CorpusError(
                f"{where}: {len(words)} tokens but {len(tags)} tags; give exactly one tag per token"
            )
        sentences.append(_RawSentence(list(words), tags, [number] * len(words)))
    return sentences


def _field(record: dict, keys: tuple[str, str], where: str) -> list:
    for key in keys:
        if key in record:
            value = record[key]
            if not isinstance(value, list):
                raise CorpusError(f"{where}: {key!r} is {type(value).__name__}; write it as a JSON list")
            return value
    raise CorpusError(f"{where}: the object has no {keys[0]!r} or {keys[1]!r} key; add one of them")


def _tag_names(raw_tags: list, label_names: Sequence[str] | None, where: str) -> list[str]:
    """Return string tags, mapping integer tags through ``label_names``."""
    tags: list[str] = []
    for tag in raw_tags:
        if isinstance(tag, str):
            tags.append(tag)
        elif isinstance(tag, int) and not isinstance(tag, bool):
            if label_names is None:
                raise CorpusError(
                    f"{where}: integer tag {tag} has no label list; write string tags such as 'B-PER' or "
                    "pass label_names (the tag names in index order) to read_corpus"
                )
            if not 0 <= tag < len(label_names):
                raise CorpusError(
                    f"{where}: integer tag {tag} is outside label_names, which has {len(label_names)} "
                    "names; pass the full label list"
                )
            tags.append(label_names[tag])
        else:
            raise CorpusError(f"{where}: tag {tag!r} is neither a string nor an integer; write string tags")
    return tags


def _resolve_scheme(path: Path, sentences: list[_RawSentence], declared: str) -> str:
    """Return the declared scheme after checking every tag against it, or detect one for ``"auto"``."""
    if declared == "auto":
        return detect_scheme(
            (raw.tags for raw in sentences),
            locate=lambda sentence, position: f"{path}:{sentences[sentence].lines[position]}",
        )
    for raw in sentences:
        for tag, line in zip(raw.tags, raw.lines):
            try:
                check_tag(tag, declared)
            except CorpusError as error:
                raise CorpusError(f"{path}:{line}: {error}") from None
    return declared


def write_corpus(
    corpus_or_sentences: Corpus | Iterable[Sentence],
    path: str | Path,
    file_format: str = "conll",
    scheme: str = "IOB2",
    docstart: bool = False,
) -> Path:
    """Write sentences as a CoNLL or JSON lines file that :func:`read_corpus` reads back unchanged.

    CoNLL output has two space-separated columns (word, tag) and a blank line after each sentence.
    JSON lines output has one ``{"tokens": [...], "tags": [...]}`` object per line. Files are UTF-8
    with ``\\n`` line endings and a final newline.

    Args:
        corpus_or_sentences: a :class:`Corpus` or sentences with IOB2 tags.
        path: the file to write; missing parent folders are created.
        file_format: ``"conll"`` (default) or ``"jsonl"``.
        scheme: the tag scheme to write, one of IOB1, IOB2 (default), IOBES, BILOU.
        docstart: start the file with a ``-DOCSTART-`` marker (default ``False``).

    Returns:
        The path written.

    Raises:
        CorpusError: a word cannot be written in the format (empty, contains whitespace in CoNLL, or
            is ``-DOCSTART-``), a sentence has no words, or the scheme or format is unknown.
    """
    path = Path(path)
    target = normalize_scheme(scheme, "scheme")
    file_format = _normalize_format(file_format)
    if file_format == "auto":
        raise CorpusError("file_format 'auto' cannot be written; pass file_format='conll' or 'jsonl'")
    if isinstance(corpus_or_sentences, Corpus):
        sentences: Iterable[Sentence] = corpus_or_sentences.sentences
    else:
        sentences = corpus_or_sentences

    blocks: list[str] = []
    if docstart:
        marker = {"tokens": [DOCSTART], "tags": ["O"]}
        blocks.append(f"{DOCSTART} O\n\n" if file_format == "conll" else json.dumps(marker) + "\n")
    for index, sentence in enumerate(sentences):
        where = sentence.origin or f"sentence {index}"
        _check_writable(sentence, where, file_format)
        try:
            tags = from_iob2(sentence.tags, target)
        except CorpusError as error:
            raise CorpusError(f"{where}: {error}") from None
        if file_format == "conll":
            blocks.append("".join(f"{word} {tag}\n" for word, tag in zip(sentence.words, tags)) + "\n")
        else:
            record = {"tokens": list(sentence.words), "tags": tags}
            blocks.append(json.dumps(record, ensure_ascii=False) + "\n")

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(blocks), encoding="utf-8", newline="\n")
    return path


def _check_writable(sentence: Sentence, where: str, file_format: str) -> None:
    if not sentence.words:
        raise CorpusError(f"{where}: the sentence has no words; drop it before writing")
    for position, word in enumerate(sentence.words):
        if not word:
            raise CorpusError(f"{where}: word {position} is empty; give every word at least one character")
        if file_format == "conll" and _CONLL_FORBIDDEN.search(word):
            raise CorpusError(
                f"{where}: word {position} {word!r} contains whitespace, which CoNLL uses as a separator; "
                "write file_format='jsonl' instead"
            )
        if _is_docstart(word) and (file_format == "conll" or position == 0):
            raise CorpusError(
                f"{where}: word {position} {word!r} would be read back as a document marker; "
                "rename or drop it"
            )
