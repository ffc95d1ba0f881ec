"""Sentences, entity spans, and readers and writers for CoNLL and JSON lines corpora.

Tags are held in IOB2 inside the library whatever the scheme of the file; readers convert on load and
writers convert back on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from pytest_nerrobust.errors import CorpusError


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

    def __iter__(self):
        return iter(self.sentences)

    @property
    def entity_types(self) -> list[str]:
        return sorted({span.label for sentence in self.sentences for span in sentence.spans})


def spans_from_tags(tags: Sequence[str]) -> list[Span]:
    """Chunk IOB2 tags into spans the way conlleval does: an ``I-X`` that does not continue an ``X``
    entity starts a new one.

    >>> spans_from_tags(["B-PER", "I-PER", "O", "I-LOC"])
    [Span(start=0, end=2, label='PER'), Span(start=3, end=4, label='LOC')]
    """
    spans: list[Span] = []
    start: int | None = None
    label = ""
    for position, tag in enumerate(list(tags) + ["O"]):
        prefix, _, tag_label = tag.partition("-")
        continues = prefix == "I" and start is not None and tag_label == label
        if start is not None and not continues:
            spans.append(Span(start, position, label))
            start = None
        if prefix in ("B", "I") and not continues:
            start, label = position, tag_label
    return spans


def tags_from_spans(spans: Iterable[Span], length: int) -> list[str]:
    """Write spans back as IOB2 tags over ``length`` words."""
    tags = ["O"] * length
    for span in spans:
        tags[span.start] = f"B-{span.label}"
        for position in range(span.start + 1, span.end):
            tags[position] = f"I-{span.label}"
    return tags


def read_corpus(path: str | Path, scheme: str = "auto", file_format: str = "auto") -> Corpus:
    """Read a CoNLL (2 or 4 columns, space or tab separated) or JSON lines file into IOB2 sentences.

    ``-DOCSTART-`` lines never become sentences. Raises :class:`CorpusError` naming the file and line for a
    missing, empty or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"data file {str(path)!r} was not found; pass an existing CoNLL or JSON lines file")
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    first_line = 0
    with path.open(encoding="utf-8", newline=None) as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                if words:
                    sentences.append(Sentence(tuple(words), tuple(tags), f"{path}:{first_line}"))
                    words, tags = [], []
                continue
            columns = line.split()
            if columns[0] == "-DOCSTART-":
                continue
            if len(columns) < 2:
                raise CorpusError(
                    f"{path}:{number}: malformed line {line!r}: expected a word and a tag separated by "
                    "whitespace"
                )
            if not words:
                first_line = number
            words.append(columns[0])
            tags.append(columns[-1])
    if words:
        sentences.append(Sentence(tuple(words), tuple(tags), f"{path}:{first_line}"))
    if not sentences:
        raise CorpusError(f"data file {str(path)!r} contains no sentences; give a file with labelled sentences")
    return Corpus(sentences=sentences, scheme="IOB2", path=str(path))
