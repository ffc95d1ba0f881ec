"""Tag schemes IOB1, IOB2, IOBES and BILOU: validation, detection, chunking and conversion.

The library keeps tags in IOB2. Every scheme is chunked with the rules of seqeval's default
(conlleval-compatible) mode. An invalid sequence such as ``I-X`` after ``O`` therefore starts a new
entity instead of being dropped, so converting to IOB2 keeps every entity that the scorer would count.

Prefixes by scheme: IOB1 and IOB2 use ``B``/``I``, IOBES adds ``E`` (end) and ``S`` (single word), and
BILOU adds ``L`` (last) and ``U`` (unit). ``L`` and ``U`` chunk exactly like ``E`` and ``S``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from pytest_nerrobust.errors import CorpusError

SCHEMES: tuple[str, ...] = ("IOB1", "IOB2", "IOBES", "BILOU")
"""Canonical scheme names, as stored in ``Corpus.scheme``."""

SCHEME_ALIASES: dict[str, str] = {"BIO": "IOB2", "BIOES": "IOBES"}

PREFIXES: dict[str, frozenset[str]] = {
    "IOB1": frozenset("BI"),
    "IOB2": frozenset("BI"),
    "IOBES": frozenset("BIES"),
    "BILOU": frozenset("BILU"),
}

# BILOU's L and U play the roles of IOBES's E and S.
_ROLES = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}

Chunk = tuple[int, int, str]
"""An entity as ``(start, end, label)`` with ``end`` exclusive."""


def normalize_scheme(name: str, source: str = "scheme", allow_auto: bool = False) -> str:
    """Return the canonical name of a tag scheme, case-insensitively, accepting ``BIO`` and ``BIOES``.

    Args:
        name: the scheme name to check, for example ``"iob1"``.
        source: where the name came from, quoted in the error (default ``"scheme"``).
        allow_auto: also accept ``"auto"`` and return it unchanged (default ``False``).

    Raises:
        CorpusError: the name is not a known scheme; the message lists the accepted names.

    >>> normalize_scheme("bio")
    'IOB2'
    """
    upper = str(name).strip().upper()
    if allow_auto and upper == "AUTO":
        return "auto"
    upper = SCHEME_ALIASES.get(upper, upper)
    if upper in SCHEMES:
        return upper
    accepted = (["auto"] if allow_auto else []) + list(SCHEMES) + list(SCHEME_ALIASES)
    raise CorpusError(f"unknown tag scheme {name!r} in {source}; use one of {', '.join(accepted)}")


def parse_tag(tag: str) -> tuple[str, str]:
    """Split a tag into ``(prefix, type)``: ``"B-PER"`` gives ``("B", "PER")`` and ``"O"`` gives ``("O", "")``.

    Raises:
        CorpusError: the tag is neither ``O`` nor ``PREFIX-TYPE`` with a prefix of B, I, E, S, L or U and a
            non-empty type without whitespace.
    """
    if tag == "O":
        return "O", ""
    prefix, dash, label = tag.partition("-")
    if not dash or prefix not in _ROLES or not label or any(character.isspace() for character in label):
        raise CorpusError(
            f"invalid tag {tag!r}: expected O or PREFIX-TYPE such as B-PER, with prefix B, I, E, S, L or U"
        )
    return prefix, label


def check_tag(tag: str, scheme: str) -> None:
    """Raise :class:`CorpusError` unless ``tag`` is valid in ``scheme`` (a canonical name)."""
    prefix, _ = parse_tag(tag)
    if prefix != "O" and prefix not in PREFIXES[scheme]:
        allowed = ", ".join(sorted(PREFIXES[scheme]))
        raise CorpusError(
            f"tag {tag!r} is not valid in {scheme}, which uses the prefixes {allowed}; "
            "declare the file's scheme or pass scheme='auto'"
        )


def chunk_tags(tags: Sequence[str], scheme: str = "IOB2") -> list[Chunk]:
    """Return the entities of one tag sequence as ``(start, end, label)`` chunks, end exclusive.

    Chunking follows seqeval's default mode. ``B`` and ``S`` always start an entity. ``I`` and ``E``
    continue an open entity of the same type unless ``E`` or ``S`` closed it, and otherwise start one.

    Args:
        tags: the tags of one sentence.
        scheme: the scheme of ``tags`` (default ``"IOB2"``); IOB1 and IOB2 chunk identically.

    Raises:
        CorpusError: a tag is invalid or uses a prefix that ``scheme`` does not have.

    >>> chunk_tags(["S-PER", "B-LOC", "E-LOC"], "IOBES")
    [(0, 1, 'PER'), (1, 3, 'LOC')]
    """
    scheme = normalize_scheme(scheme)
    chunks: list[Chunk] = []
    start: int | None = None
    label = ""
    previous_role = "O"
    for position, tag in enumerate(tags):
        check_tag(tag, scheme)
        prefix, tag_label = parse_tag(tag)
        role = _ROLES.get(prefix, "O")
        if start is not None:
            closed = previous_role in ("E", "S") or role in ("B", "S", "O") or tag_label != label
            if closed:
                chunks.append((start, position, label))
                start = None
        if role != "O" and start is None:
            start, label = position, tag_label
        previous_role = role
    if start is not None:
        chunks.append((start, len(tags), label))
    return chunks


def tags_for_chunks(chunks: Iterable[Chunk], length: int, scheme: str = "IOB2") -> list[str]:
    """Write ``(start, end, label)`` chunks as tags over ``length`` words in ``scheme`` (default IOB2).

    IOB1 uses ``B`` only for an entity that directly follows another entity of the same type.

    Raises:
        CorpusError: a chunk is empty, lies outside ``0..length`` or overlaps another chunk.

    >>> tags_for_chunks([(0, 1, "PER"), (1, 3, "PER")], 3, "IOB1")
    ['I-PER', 'B-PER', 'I-PER']
    """
    scheme = normalize_scheme(scheme)
    tags = ["O"] * length
    previous_end = -1
    previous_label = ""
    for start, end, label in sorted(chunks):
        if not 0 <= start < end <= length or start < previous_end:
            raise CorpusError(
                f"entity ({start}, {end}, {label!r}) is empty, outside a {length}-word sentence, or "
                "overlaps another entity; give non-overlapping spans with start < end <= length"
            )
        size = end - start
        if scheme in ("IOBES", "BILOU") and size == 1:
            tags[start] = ("S-" if scheme == "IOBES" else "U-") + label
        else:
            first = "B"
            if scheme == "IOB1" and not (start == previous_end and label == previous_label):
                first = "I"
            tags[start] = f"{first}-{label}"
            for position in range(start + 1, end):
                tags[position] = f"I-{label}"
            if scheme in ("IOBES", "BILOU"):
                tags[end - 1] = ("E-" if scheme == "IOBES" else "L-") + label
        previous_end, previous_label = end, label
    return tags


def to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """Convert one sentence's tags from ``scheme`` to IOB2, rewriting invalid sequences as chunked.

    >>> to_iob2(["I-ORG", "I-ORG", "B-ORG", "O", "I-LOC"], "IOB1")
    ['B-ORG', 'I-ORG', 'B-ORG', 'O', 'B-LOC']
    """
    return tags_for_chunks(chunk_tags(tags, scheme), len(tags), "IOB2")


def from_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """Convert one sentence's IOB2 tags to ``scheme``.

    >>> from_iob2(["B-PER", "O", "B-LOC", "I-LOC"], "BILOU")
    ['U-PER', 'O', 'B-LOC', 'L-LOC']
    """
    return tags_for_chunks(chunk_tags(tags, "IOB2"), len(tags), scheme)


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Convert one sentence's tags from scheme ``source`` to scheme ``target``."""
    return tags_for_chunks(chunk_tags(tags, source), len(tags), target)


def _default_locate(sentence: int, position: int) -> str:
    return f"sentence {sentence}, word {position}"


def detect_scheme(
    sequences: Iterable[Sequence[str]],
    locate: Callable[[int, int], str] = _default_locate,
) -> str:
    """Detect the tag scheme of a corpus from its tag sequences.

    Rule, applied in order:

    1. A tag with prefix ``E-`` or ``S-`` means IOBES; a tag with prefix ``L-`` or ``U-`` means BILOU.
    2. Otherwise only ``B``, ``I`` and ``O`` occur. The corpus is IOB1 when some ``I-X`` starts an entity
       (first word, after ``O``, or after another type) and every ``B-X`` directly follows a tag of type
       ``X``. IOB1 uses ``B`` only between two adjacent entities of the same type.
    3. Everything else is IOB2, including a corpus without entities. An IOB2 corpus with invalid
       ``I-X`` starts is still IOB2, and both readings give the same entities.

    Args:
        sequences: tag sequences, one per sentence.
        locate: maps ``(sentence index, word index)`` to a location for error messages (default
            ``"sentence i, word j"``).

    Raises:
        CorpusError: a tag is invalid, or the corpus mixes IOBES and BILOU prefixes.

    >>> detect_scheme([["I-PER", "O", "I-LOC", "B-LOC"]])
    'IOB1'
    """
    first_end_tag: tuple[str, str] | None = None  # (tag, location) of the first E-/S- tag
    first_last_tag: tuple[str, str] | None = None  # (tag, location) of the first L-/U- tag
    inside_start = False
    outside_begin = False
    for sentence_index, tags in enumerate(sequences):
        previous_label = ""
        for position, tag in enumerate(tags):
            try:
                prefix, label = parse_tag(tag)
            except CorpusError as error:
                raise CorpusError(f"{locate(sentence_index, position)}: {error}") from None
            if prefix in ("E", "S") and first_end_tag is None:
                first_end_tag = (tag, locate(sentence_index, position))
            if prefix in ("L", "U") and first_last_tag is None:
                first_last_tag = (tag, locate(sentence_index, position))
            if prefix == "I" and label != previous_label:
                inside_start = True
            if prefix == "B" and label != previous_label:
                outside_begin = True
            previous_label = label

    if first_end_tag is not None and first_last_tag is not None:
        raise CorpusError(
            f"{first_last_tag[1]}: tag {first_last_tag[0]!r} is BILOU but {first_end_tag[1]} has "
            f"{first_end_tag[0]!r} from IOBES; use one scheme per file"
        )
    if first_end_tag is not None:
        return "IOBES"
    if first_last_tag is not None:
        return "BILOU"
    if inside_start and not outside_begin:
        return "IOB1"
    return "IOB2"
