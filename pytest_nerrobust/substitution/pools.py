"""Entity substitutes from typed pool files: an offline knowledge base of Wikidata classes and instances.

A pool directory contains JSON lines files named after an entity type (``GPE.jsonl``), in the directory or
in its subfolders. Two line forms are read:

- a class: ``{"class_id": "Q515", "class_title": "city", "instances": {"Q90": "Paris", ...}}``;
- a bare instance, for types without classes: ``{"instance_id": 42, "instance_title": "Douglas Adams"}``.

Files named ``TYPE.ent_classes.jsonl`` link mentions to classes:
``{"ent_text": "Beijing", "linked_title": "Beijing", "ent_id": "Q956", "classes": {"Q515": "city"}}``.
Files of one type in different subfolders are merged, so the directory of a Wikidata pool export
(``class_instances/``, ``class_data/`` and filtered pools side by side) works as it is.

A mention is linked to classes through the link files, or by finding it among the instances of a class.
Its substitutes are other instances of those classes (same category, not just same type). Bare instances
have one implicit category per type. Pools built by entity linking contain wrong classes (a moth genus
under GPE), so a class is used only when its title passes the :class:`ClassFilter` of its type.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_nerrobust.errors import ConfigError
from pytest_nerrobust.substitution.base import EntityCandidate
from pytest_nerrobust.substitution.entities import match_case

logger = logging.getLogger(__name__)

LINK_SUFFIX = ".ent_classes.jsonl"
POOL_SUFFIX = ".jsonl"
# Punctuation that a CoNLL tokenizer splits off a word; "." stays attached for abbreviations ("F.C.").
_SPLIT_PUNCTUATION = ',;:!?()[]{}"'
# Wikipedia-style disambiguation: "Paris (Texas)".
_DISAMBIGUATION = re.compile(r"\s+\([^()]*\)$")

# The pool types that hold substitutes for each CoNLL-2003 type; any other type uses the pool of its name.
CONLL_POOL_TYPES: dict[str, tuple[str, ...]] = {
    "PER": ("PERSON",),
    "LOC": ("GPE", "LOC", "FAC"),
    "ORG": ("ORG",),
    "MISC": ("NORP", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW", "LANGUAGE"),
}


# OntoNotes types that CoNLL-2003 does not have; a label set with any of them uses the pools of its own names.
_ONTONOTES_ONLY = frozenset({"PERSON", "NORP", "FAC", "GPE", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
                             "LANGUAGE", "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})


def pool_types_for_labels(labels: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Return entity type -> pool types for a data set's labels: :data:`CONLL_POOL_TYPES` for CoNLL-style
    labels, else every label to the pool of its own name (OntoNotes pools are named after its types)."""
    if set(labels) & _ONTONOTES_ONLY:
        return {label: (label,) for label in labels}
    return dict(CONLL_POOL_TYPES)


@dataclass(frozen=True)
class ClassFilter:
    """Class titles that fit an entity type: a title is kept when it contains an ``allow`` word start and
    no ``deny`` word start (case-insensitive). An empty ``allow`` keeps every title that is not denied."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def accepts(self, title: str) -> bool:
        """Return whether a class titled ``title`` may give substitutes."""
        text = title.casefold()
        if any(re.search(rf"\b{re.escape(word)}", text) for word in self.deny):
            return False
        return not self.allow or any(re.search(rf"\b{re.escape(word)}", text) for word in self.allow)


# Denied everywhere: Wikimedia pages and titles that name kinds of things no entity type means.
_COMMON_DENY = ("wikimedia", "wikipedia", "taxon", "placeholder", "nickname", "pejorative", "name")
# A class without an English label shows its id as the title.
_BARE_ID = re.compile(r"^Q[0-9]+$")

DEFAULT_CLASS_FILTERS: dict[str, ClassFilter] = {
    "PERSON": ClassFilter(),
    "GPE": ClassFilter(
        allow=("city", "town", "village", "municipal", "commune", "comune", "county", "country", "state",
               "province", "capital", "settlement", "district", "prefecture", "borough", "suburb", "hamlet",
               "township", "metropol", "megacity", "burgh", "canton", "republic", "kingdom", "emirate",
               "sultanate", "colony", "territor", "enclave", "exclave", "federation", "monarchy", "nation",
               "department of", "populated place", "place with town"),
        deny=("council", "party", "period", "aspect", "agency", "network", "enterprise", "business",
              "publisher", "airport", "aerodrome", "material", "dosage", "science park", "biblical",
              "electoral", "language", "human", "navy", "alignment", "episode", "factory", "written",
              "manga", "seinen", "tribe"),
    ),
    "LOC": ClassFilter(
        allow=("mountain", "river", "sea", "ocean", "gulf", "lake", "island", "peninsula", "valley", "plain",
               "strait", "coast", "continent", "region", "area", "reef", "desert", "forest", "bay", "range",
               "territor", "city", "capital", "country", "sovereign state", "state of", "settlement",
               "protected area", "national park", "subcontinent", "moraine", "current"),
        deny=("fictional", "organization", "newspaper", "legislature", "station", "relations", "planet",
              "census", "cultural", "historic district", "direction"),
    ),
    "FAC": ClassFilter(
        allow=("building", "house", "bridge", "airport", "aerodrome", "station", "road", "highway",
               "street", "avenue", "square", "park", "museum", "hotel", "hospital", "school", "prison",
               "fort", "base", "tower", "skyscraper", "stadium", "temple", "church", "hall", "mansion",
               "estate", "camp", "residence", "headquarters", "railway", "rapid transit", "barracks",
               "arsenal", "thoroughfare", "archaeological site", "complex", "power station", "capitol"),
        deny=("organization", "agency", "ministry", "department", "business", "settlement", "city",
              "country", "island", "maneuver", "attack", "project", "operator", "fictional"),
    ),
    "ORG": ClassFilter(
        allow=("organization", "organisation", "company", "corporation", "club", "team", "party", "agency",
               "ministry", "department", "university", "college", "school", "institut", "association",
               "union", "bank", "newspaper", "magazine", "broadcaster", "channel", "radio station",
               "television station", "network", "publisher", "manufacturer", "airline", "chain", "firm",
               "musical group", "league", "federation", "council", "committee", "government", "parliament",
               "legislature", "court", "army", "navy", "air force", "armed forces", "military", "militia",
               "stock exchange", "enterprise", "business", "retail", "store", "brewery", "record company",
               "think tank", "foundation", "charit", "trust", "subsidiary", "conglomerate", "holding",
               "news agency", "authority", "service", "institution", "academy", "coast guard", "group"),
        deny=("ethnic", "social group", "family", "chemical", "compound", "discipline", "video game",
              "act of congress", "activity", "community", "census", "award", "position", "aircraft",
              "concept", "database", "town", "city", "village", "event", "series", "software", "treaty",
              "architectural", "tourist", "human", "legal case", "venue", "building", "theater", "degree",
              "movement", "trademark", "carcinogen", "major", "river", "street", "index", "district",
              "program", "model", "toxicant", "industry", "science", "century", "visa", "ingredient",
              "fungicide", "element", "idiom", "technique", "unit", "material", "format", "solid",
              "substance", "journal", "work", "payment", "product", "form of state", "genre",
              "headquarters", "residence", "branch office", "scholarship", "fellowship", "input method"),
    ),
    "NORP": ClassFilter(
        allow=("ethnic", "nationalit", "demonym", "people", "religio", "denomination", "church",
               "political party", "tribe", "population", "inhabitant", "nation"),
        deny=("mythological", "fictional", "disease", "defect", "state", "country", "organization",
              "organisation", "region", "language", "union", "regime", "régime"),
    ),
    "EVENT": ClassFilter(
        allow=("war", "battle", "event", "festival", "protest", "revolution", "attack", "campaign",
               "offensive", "holiday", "holy day", "games", "championship", "tournament", "election",
               "hurricane", "disaster", "scandal", "fair", "invasion", "hijacking", "murder", "affair",
               "march", "olympic", "cup"),
        deny=("organization", "treaty", "region", "city", "tripoint", "award", "period"),
    ),
    "PRODUCT": ClassFilter(
        allow=("model", "aircraft", "automobile", "car", "ship", "liner", "missile", "tank", "destroyer",
               "submarine", "carrier", "software", "platform", "drink", "cereal", "weapon", "probe",
               "instrument", "vehicle", "orbiter", "server"),
        deny=("human", "ethnic", "company", "enterprise", "business", "river", "accident", "attack",
              "bombing", "event", "toxicant", "indigenous", "abuse", "manufacturer", "trademark", "scientific",
              "shipwrecking"),
    ),
    "WORK_OF_ART": ClassFilter(
        allow=("film", "album", "song", "single", "book", "novel", "play", "painting", "series", "season",
               "program", "sitcom", "musical theatre", "opera", "poem", "literary work", "written work",
               "podcast", "dramatico-musical", "religious text", "speech"),
        deny=("character", "supervillain", "court", "bible", "directive", "company", "human", "organization",
              "award", "festival", "newspaper", "magazine", "degree", "city", "town", "freguesia", "channel",
              "newscast", "instrument", "competition", "prize", "genre", "format", "police"),
    ),
    "LAW": ClassFilter(
        allow=("law", "act", "treaty", "constitution", "resolution", "accord", "amendment", "bill of rights",
               "directive", "convention", "agreement", "code", "statute"),
        deny=("organisation", "organization", "unit"),
    ),
    "LANGUAGE": ClassFilter(allow=("language", "dialect"), deny=("academic",)),
}


def label_words(label: str) -> tuple[str, ...]:
    """Split a knowledge-base label into CoNLL-style words: drop a trailing disambiguation in brackets and
    split off commas, brackets and quotes.

    >>> label_words("Washington, D.C.")
    ('Washington', ',', 'D.C.')
    """
    text = _DISAMBIGUATION.sub("", label.strip())
    words: list[str] = []
    for chunk in text.split():
        leading: list[str] = []
        trailing: list[str] = []
        while chunk and chunk[0] in _SPLIT_PUNCTUATION:
            leading.append(chunk[0])
            chunk = chunk[1:]
        while chunk and chunk[-1] in _SPLIT_PUNCTUATION:
            trailing.insert(0, chunk[-1])
            chunk = chunk[:-1]
        words.extend(leading)
        if chunk:
            words.append(chunk)
        words.extend(trailing)
    return tuple(words)


def _name_key(text: str) -> str:
    """Return the lookup key of a name: its CoNLL-style words, lowercased, joined by spaces."""
    return " ".join(label_words(text)).casefold()


def discover_pool_files(directory: str | Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Find pool files and link files under ``directory``, by entity type (the file name without suffix).

    Raises :class:`ConfigError` when the directory is missing or contains no pool file.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"--kb-pools directory {str(root)!r} was not found; pass a directory of JSON lines "
                          "pool files named TYPE.jsonl")
    pools: dict[str, list[Path]] = {}
    links: dict[str, list[Path]] = {}
    for path in sorted(root.rglob(f"*{POOL_SUFFIX}")):
        if path.name.endswith(LINK_SUFFIX):
            links.setdefault(path.name[: -len(LINK_SUFFIX)], []).append(path)
        else:
            pools.setdefault(path.name[: -len(POOL_SUFFIX)], []).append(path)
    if not pools:
        raise ConfigError(f"--kb-pools directory {str(root)!r} contains no TYPE.jsonl pool files; pass a "
                          "directory of JSON lines pool files")
    return pools, links


@dataclass
class _PoolClass:
    """A usable class; ``implicit`` marks the single category of a pool of bare instances."""

    class_id: str
    title: str
    instances: dict[str, str] = field(default_factory=dict)
    implicit: bool = False


@dataclass
class _Link:
    """The classes a mention was linked to, and the ids and labels of the item it was linked to."""

    class_ids: set[str] = field(default_factory=set)
    item_ids: set[str] = field(default_factory=set)
    item_labels: set[str] = field(default_factory=set)


@dataclass
class _Match:
    """A substitute found in one or more of the mention's classes."""

    words: tuple[str, ...]
    class_ids: set[str] = field(default_factory=set)
    category: str = ""
    category_size: int | None = None


@dataclass
class _TypeIndex:
    """The usable classes of one pool type, the mention links, and which classes hold each label."""

    classes: dict[str, _PoolClass] = field(default_factory=dict)
    links: dict[str, _Link] = field(default_factory=dict)
    classes_by_label: dict[str, set[str]] = field(default_factory=dict)
    rejected_titles: set[str] = field(default_factory=set)

    def linked_classes(self, key: str) -> set[str]:
        """Return the usable classes of a casefolded mention: linked, holding it, or implicit."""
        link = self.links.get(key)
        found = set(link.class_ids) if link else set()
        found |= self.classes_by_label.get(key, set())
        found |= {class_id for class_id, pool_class in self.classes.items() if pool_class.implicit}
        return found & set(self.classes)


class PoolEntitySource:
    """An :class:`~pytest_nerrobust.substitution.base.EntitySource` over a directory of typed pool files.

    Args:
        directory: the pool directory (see the module docstring for the layout).
        pool_types: entity type -> pool types whose files hold its substitutes (default
            :data:`CONLL_POOL_TYPES`; a type missing here uses the pool of its own name).
        class_filters: pool type -> :class:`ClassFilter` (default :data:`DEFAULT_CLASS_FILTERS`; a pool type
            missing here keeps every class that no common filter denies).
        seed: seed for sampling, mixed with the mention and type (default 0).
        fallback_to_type: give an unlinked mention instances of any usable class of its type, not only of
            its own classes (default ``False``, so every candidate shares a class with the mention).
    """

    name = "pools"

    def __init__(self, directory: str | Path, *, pool_types: Mapping[str, Sequence[str]] | None = None,
                 class_filters: Mapping[str, ClassFilter] | None = None, seed: int = 0,
                 fallback_to_type: bool = False) -> None:
        self.directory = Path(directory)
        self.pool_types = {key: tuple(value) for key, value in (pool_types or CONLL_POOL_TYPES).items()}
        self.class_filters = dict(DEFAULT_CLASS_FILTERS if class_filters is None else class_filters)
        self.seed = seed
        self.fallback_to_type = fallback_to_type
        self._pool_files, self._link_files = discover_pool_files(self.directory)
        self._indexes: dict[str, _TypeIndex] = {}

    def fingerprint(self) -> str:
        """Identify the pool files (names, sizes, modification times) and the settings."""
        files = sorted(path for paths in (*self._pool_files.values(), *self._link_files.values()) for path in paths)
        stats = [(str(path.relative_to(self.directory)), path.stat().st_size, path.stat().st_mtime_ns)
                 for path in files]
        settings = json.dumps([stats, sorted(self.pool_types.items()), self.seed, self.fallback_to_type,
                               sorted((key, f.allow, f.deny) for key, f in self.class_filters.items())])
        return f"pools:{hashlib.sha256(settings.encode('utf-8')).hexdigest()[:16]}"

    def types(self) -> list[str]:
        """Return the pool types found in the directory."""
        return sorted(self._pool_files)

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` instances that share a usable class with ``mention``.

        Instances that share more of the mention's classes come first, so "Germany" gets countries before
        historical countries. A shuffle seeded with the mention breaks ties.
        """
        if limit <= 0 or not mention:
            return []
        key = _name_key(" ".join(mention))
        linked: dict[str, _Match] = {}
        unlinked: dict[str, _Match] = {}
        for pool_type in self._pool_types_for(entity_type):
            index = self._index(pool_type)
            class_ids = index.linked_classes(key)
            if class_ids:
                self._collect(index, key, class_ids, linked)
            elif self.fallback_to_type:
                self._collect(index, key, set(index.classes), unlinked)
        matches = linked or unlinked
        rng = random.Random(f"{self.seed}:{entity_type}:{key}")
        ranked = sorted(matches.values(), key=lambda match: (-len(match.class_ids), match.words))
        tiebreak = {match.words: rng.random() for match in ranked}
        ranked.sort(key=lambda match: (-len(match.class_ids), tiebreak[match.words]))
        # A headline mention in capitals gets candidates in capitals, like the offline sources give.
        return [EntityCandidate(match_case(match.words, mention), self.name, match.category)
                for match in ranked[:limit]]

    @staticmethod
    def _collect(index: _TypeIndex, key: str, class_ids: set[str], matches: dict[str, _Match]) -> None:
        link = index.links.get(key, _Link())
        for class_id in sorted(class_ids):
            pool_class = index.classes[class_id]
            for instance_id, label in pool_class.instances.items():
                words = label_words(label)
                label_key = " ".join(words).casefold()
                if not words or label_key == key or instance_id in link.item_ids or label_key in link.item_labels:
                    continue
                match = matches.setdefault(label_key, _Match(words))
                match.class_ids.add(class_id)
                # The category shown is the smallest shared class, the most specific one.
                size = len(pool_class.instances)
                if match.category_size is None or size < match.category_size:
                    match.category, match.category_size = pool_class.title, size

    def _pool_types_for(self, entity_type: str) -> tuple[str, ...]:
        mapped = self.pool_types.get(entity_type, (entity_type,))
        return tuple(pool_type for pool_type in mapped if pool_type in self._pool_files)

    def _index(self, pool_type: str) -> _TypeIndex:
        index = self._indexes.get(pool_type)
        if index is None:
            index = self._build_index(pool_type)
            self._indexes[pool_type] = index
        return index

    def _build_index(self, pool_type: str) -> _TypeIndex:
        class_filter = self.class_filters.get(pool_type, ClassFilter())
        common = ClassFilter(deny=_COMMON_DENY)
        index = _TypeIndex()
        for path in self._pool_files.get(pool_type, []):
            for number, row in _read_rows(path):
                if "class_id" in row:
                    class_id, title = str(row["class_id"]), str(row.get("class_title") or row["class_id"])
                    if _BARE_ID.match(title) or not (common.accepts(title) and class_filter.accepts(title)):
                        index.rejected_titles.add(title)
                        continue
                    instances = row.get("instances") or {}
                    if not isinstance(instances, dict):
                        raise ConfigError(f"{path}:{number}: 'instances' must map ids to labels; fix the pool "
                                          "file or remove it from --kb-pools")
                    target = index.classes.setdefault(class_id, _PoolClass(class_id, title))
                    target.instances.update({str(key): str(value) for key, value in instances.items() if value})
                elif "instance_title" in row:
                    # A pool without classes: every instance shares one category, named after the type.
                    target = index.classes.setdefault(pool_type, _PoolClass(pool_type, pool_type.lower(),
                                                                             implicit=True))
                    target.instances[str(row.get("instance_id", row["instance_title"]))] = str(row["instance_title"])
                else:
                    raise ConfigError(f"{path}:{number}: a pool line needs 'class_id' and 'instances', or "
                                      "'instance_title'; fix the pool file or remove it from --kb-pools")
        for pool_class in index.classes.values():
            for label in pool_class.instances.values():
                index.classes_by_label.setdefault(_name_key(label), set()).add(pool_class.class_id)
        for path in self._link_files.get(pool_type, []):
            for _, row in _read_rows(path):
                self._add_link(index, row)
        logger.info("pool type %s: %d usable classes, %d classes rejected by title, %d linked mentions",
                    pool_type, len(index.classes), len(index.rejected_titles), len(index.links))
        return index

    @staticmethod
    def _add_link(index: _TypeIndex, row: Mapping[str, object]) -> None:
        text = row.get("ent_text")
        classes = row.get("classes")
        if not isinstance(text, str) or not isinstance(classes, dict):
            return
        link = index.links.setdefault(_name_key(text), _Link())
        link.class_ids.update(str(class_id) for class_id in classes)
        # The linked item and its title are the mention itself under another name, so never substitutes.
        item_id, title = row.get("ent_id"), row.get("linked_title")
        if isinstance(item_id, str) and item_id:
            link.item_ids.add(item_id)
        if isinstance(title, str) and title:
            link.item_labels.add(_name_key(title))


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}:{number}: invalid JSON in a pool file ({error.msg}); fix the line or "
                                  "remove the file from --kb-pools") from error
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: a pool line must be a JSON object; fix the line or remove "
                                  "the file from --kb-pools")
            yield number, row
