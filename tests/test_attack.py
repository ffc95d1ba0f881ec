"""Tests of the attack engine ``run_attack`` with the tiny model, Integrated Gradients, the offline entity
sources, a tiny masked LM and the MiniLM sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_nerrobust.attack import Components, misclassified, run_attack
from pytest_nerrobust.attribution.ig import IntegratedGradientsSelector
from pytest_nerrobust.cache import Cache
from pytest_nerrobust.config import AttackConfig
from pytest_nerrobust.corpus import Corpus, Sentence, read_corpus
from pytest_nerrobust.errors import BackendError
from pytest_nerrobust.metrics import summarize
from pytest_nerrobust.results import Change, Status
from pytest_nerrobust.similarity import SentenceEncoder
from pytest_nerrobust.substitution.entities import (
    ChainEntitySource,
    CorpusEntitySource,
    GazetteerEntitySource,
)
from pytest_nerrobust.substitution.masked_lm import MaskedLMInfiller


def sentence(text: str, tags: str) -> Sentence:
    return Sentence(tuple(text.split()), tuple(tags.split()), f"test:{text.split()[0]}")


TOKELAU = sentence("Talks between Tokelau and the World Bank ended without agreement .", "O O B-LOC O O B-ORG I-ORG O O O O")
LOCATIONS = sentence(
    "Tajikistan and Martinique signed a trade agreement in Dakar on Wednesday .", "B-LOC O B-LOC O O O O O B-LOC O O O"
)
FORD = sentence("Ford said on Monday it would cut 53,734 jobs .", "B-ORG O O O O O O O O O")
HEADLINE = sentence("BELGIUM OPPOSITION WINS VOTE .", "B-LOC O O O O")
REPORTER = sentence("Reporting by Luis Weber", "O O B-PER I-PER")
SURNAME = sentence("Bianchi", "B-PER")

# Reference entities for substitution. Every one has as many words as the entities of that type above,
# except the three-word location, so most candidates keep the sentence length.
REFERENCE = [
    sentence("Lima Oslo Quito Accra Hanoi", "B-LOC B-LOC B-LOC B-LOC B-LOC"),
    sentence("Anna Costa met Hans Meyer , Olga Silva and Ivan Petrov", "B-PER I-PER O B-PER I-PER O B-PER I-PER O B-PER I-PER"),
    sentence("Red Cross and Arab League", "B-ORG I-ORG O B-ORG I-ORG"),
]
THREE_WORD_LOCATION = [sentence("Rio de Janeiro", "B-LOC I-LOC I-LOC")]

# Vocabulary of the tiny masked LM, with the output bias that fixes its ranking: highest first.
MLM_BIAS = {"also": 9.0, "later": 8.0, "again": 7.0, "still": 6.0, "soon": 5.0, "quietly": 4.0}


@pytest.fixture(scope="module")
def tiny_mlm_dir(write_tiny_mlm) -> Path:
    """Write a tiny masked LM that proposes the ``MLM_BIAS`` words, highest bias first, whatever the input."""
    return write_tiny_mlm([], MLM_BIAS)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.fixture(scope="module")
def gazetteer() -> GazetteerEntitySource:
    return GazetteerEntitySource(seed=0)


def make_components(
    encoder: SentenceEncoder,
    mlm_dir: Path,
    entity_source: Any,
    context: bool = True,
) -> Components:
    """Build IG, the given entity source, the masked LM and the encoder.

    Without ``context`` the masked LM's words are all in its lexicon of rejected words, so it proposes
    nothing and every candidate replaces an entity.
    """
    lexicon = frozenset() if context else frozenset(MLM_BIAS)
    return Components(
        selector=IntegratedGradientsSelector(steps=8, max_steps=16),
        entity_source=entity_source,
        infiller=MaskedLMInfiller(mlm_dir, Cache(None), lexicon=lexicon),
        encoder=encoder,
    )


def attack(config: AttackConfig, model: Any, sentences: Sequence[Sentence], components: Components, cache: Cache | None = None):
    return run_attack(config, model=model, corpus=Corpus(list(sentences), path="test.conll"), cache=cache or Cache(None),
                      components=components)


class ScriptedModel:
    """The tiny model's word features and gradients with scripted predictions, so outcomes are exact.

    A sentence containing ``trigger`` is tagged all ``O``. Any other sentence gets the gold tags of the
    attacked sentence of its length, except that the ``n``-th candidate of length ``L`` is tagged all ``O``
    for each ``L: n`` in ``fail_at``, and raises RuntimeError for each ``L: n`` in ``raise_at``. Every batch
    passed to :meth:`predict` is recorded in ``calls``.
    """

    def __init__(self, model: Any, attacked: Sequence[Sentence], trigger: str | None = None,
                 fail_at: dict[int, int] | None = None, raise_at: dict[int, int] | None = None) -> None:
        self.model = model
        self.originals = {sentence.words for sentence in attacked}
        self.gold = {len(sentence.words): list(sentence.tags) for sentence in attacked}
        self.trigger = trigger
        self.fail_at = dict(fail_at or {})
        self.raise_at = dict(raise_at or {})
        self.seen: dict[int, int] = {}
        self.calls: list[list[list[str]]] = []

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        self.calls.append([list(words) for words in sentences])
        output = []
        for words in sentences:
            length = len(words)
            if tuple(words) not in self.originals:
                self.seen[length] = self.seen.get(length, 0) + 1
            if length in self.raise_at and self.seen.get(length) == self.raise_at[length]:
                raise RuntimeError(f"scripted fault on candidate {self.raise_at[length]} of length {length}")
            failing = length in self.fail_at and self.seen.get(length) == self.fail_at[length]
            if (self.trigger is not None and self.trigger in words) or failing:
                output.append(["O"] * length)
            else:
                output.append(list(self.gold[length]))
        return output

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


class TruncatingModel:
    """The tiny model, returning one tag too few for ``REPORTER`` (``at="clean"``) or for every candidate."""

    def __init__(self, model: Any, at: str) -> None:
        self.model = model
        self.at = at

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        output = self.model.predict(sentences)
        for index, words in enumerate(sentences):
            clean = tuple(words) in {REPORTER.words, TOKELAU.words}
            if (self.at == "clean" and tuple(words) == REPORTER.words) or (self.at == "query" and not clean):
                output[index] = output[index][:-1]
        return output

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


class FlakySelector(IntegratedGradientsSelector):
    """Integrated Gradients that fails on its first call with more than one sentence."""

    def __init__(self) -> None:
        super().__init__(steps=8, max_steps=16)
        self.failed = False

    def scores(self, model, sentences, predictions):
        if len(sentences) > 1 and not self.failed:
            self.failed = True
            raise RuntimeError("out of memory")
        return super().scores(model, sentences, predictions)


class FailingSource(CorpusEntitySource):
    """A corpus entity source whose lookup of ``Tokelau`` fails like a knowledge base that timed out."""

    def candidates(self, mention, entity_type, limit):
        if list(mention) == ["Tokelau"]:
            raise BackendError("knowledge base timed out for 'Tokelau'")
        return super().candidates(mention, entity_type, limit)


# Label rewriting and positions ------------------------------------------------------------------------------


def test_three_word_replacement_tags(tiny_model, encoder, tiny_mlm_dir):
    # Every word is selected. Only a candidate with the three-word location fools the scripted model.
    model = ScriptedModel(tiny_model, [TOKELAU], trigger="Rio")
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(THREE_WORD_LOCATION))
    config = AttackConfig(k=20, max_candidates=100, min_similarity=0.0)

    result = attack(config, model, [TOKELAU], components).results[0]

    assert result.status is Status.SUCCESSFUL
    assert result.adversarial_words[2:5] == ["Rio", "de", "Janeiro"]
    assert result.adversarial_words[7:9] == ["World", "Bank"]
    assert result.adversarial_tags == ["O", "O", "B-LOC", "I-LOC", "I-LOC", "O", "O", "B-ORG", "I-ORG", "O", "O", "O", "O"]
    assert Change(2, ("Tokelau",), ("Rio", "de", "Janeiro"), "entity", "reference") in result.changes
    assert result.adversarial_predicted_tags == ["O"] * 13


@pytest.mark.parametrize(
    ("attacked", "position"),
    [(FORD, 0), (HEADLINE, 0), (REPORTER, 2), (SURNAME, 0)],
    ids=["first-org", "first-headline", "last", "one-word"],
)
def test_entity_positions_attackable(tiny_model, encoder, tiny_mlm_dir, gazetteer, attacked, position):
    source = ChainEntitySource([gazetteer, CorpusEntitySource(REFERENCE)])
    components = make_components(encoder, tiny_mlm_dir, source, context=False)
    config = AttackConfig(k=20, max_candidates=5, min_similarity=0.0)

    result = attack(config, tiny_model, [attacked], components).results[0]

    assert result.predicted_tags == list(attacked.tags)
    assert result.status in (Status.SUCCESSFUL, Status.FAILED)
    assert result.error is None
    assert result.candidates_tried >= 1
    assert [change.start for change in result.changes] == [position]
    assert result.changes[0].kind == "entity"
    assert result.adversarial_words[position] != attacked.words[position]


def test_headline_gets_capitals(tiny_model, encoder, tiny_mlm_dir, gazetteer):
    components = make_components(encoder, tiny_mlm_dir, gazetteer, context=False)
    config = AttackConfig(k=20, max_candidates=5, min_similarity=0.0)

    result = attack(config, tiny_model, [HEADLINE], components).results[0]

    assert result.changes[0].source == "gazetteer"
    assert all(word.isupper() for word in result.changes[0].replacement)


# Counting ----------------------------------------------------------------------------------------------------


def test_docstart_never_counts(tmp_path, tiny_model, encoder, tiny_mlm_dir):
    data = tmp_path / "docs.conll"
    data.write_text(
        "-DOCSTART- O\n\nBianchi B-PER\n\n-DOCSTART- O\n\nReporting O\nby O\nLuis B-PER\nWeber I-PER\n\n",
        encoding="utf-8",
    )
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE))
    config = AttackConfig(data=str(data), k=1, max_candidates=3, min_similarity=0.0)

    run = run_attack(config, model=tiny_model, cache=Cache(None), components=components)

    assert [result.words for result in run.results] == [["Bianchi"], ["Reporting", "by", "Luis", "Weber"]]
    assert [result.origin for result in run.results] == [f"{data}:3", f"{data}:7"]
    assert summarize(run)["sentences"] == 2


def test_queries_stop_at_success(tiny_model, encoder, tiny_mlm_dir):
    # LOCATIONS (12 words) is fooled by its third candidate, and REPORTER (4 words) never is.
    model = ScriptedModel(tiny_model, [LOCATIONS, REPORTER], fail_at={12: 3})
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE))
    config = AttackConfig(k=1, max_candidates=4, min_similarity=0.0)

    run = attack(config, model, [LOCATIONS, REPORTER], components)
    located, reporter = run.results
    queried = [words for call in model.calls[1:] for words in call if len(words) == 12]

    assert located.status is Status.SUCCESSFUL
    assert located.candidates_tried == 3
    assert located.queries == 4
    assert len(queried) == 3
    assert located.adversarial_words == queried[-1]
    assert reporter.status is Status.FAILED
    assert reporter.candidates_tried == 4
    assert reporter.queries == 5
    assert summarize(run)["avg_queries"] == 4.5


def test_query_retry_counts_once(tiny_model, encoder, tiny_mlm_dir):
    # The second candidate of REPORTER raises inside a batch, so both sentences are queried again alone.
    model = ScriptedModel(tiny_model, [LOCATIONS, REPORTER], raise_at={4: 2})
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE))
    config = AttackConfig(k=1, max_candidates=4, min_similarity=0.0)

    run = attack(config, model, [LOCATIONS, REPORTER], components)

    assert [result.status for result in run.results] == [Status.FAILED, Status.FAILED]
    assert [result.candidates_tried for result in run.results] == [4, 4]
    assert [result.queries for result in run.results] == [5, 5]


def test_attribution_retry_counts_once(tmp_path, tiny_model, encoder, tiny_mlm_dir):
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE))
    components.selector = FlakySelector()
    config = AttackConfig(k=1, max_candidates=2, min_similarity=0.0)

    run = attack(config, tiny_model, [TOKELAU, REPORTER], components, Cache(tmp_path / "cache"))

    assert components.selector.failed
    assert run.cache_stats["attribution"] == {"hits": 0, "misses": 2}
    assert run.selection_stats["selected_words"] == 2.0
    assert run.count(Status.ERRORED) == 0


def test_queries_first_real_success(tiny_model, encoder, tiny_mlm_dir):
    model = ScriptedModel(tiny_model, [TOKELAU], trigger="Rio")
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(THREE_WORD_LOCATION))
    config = AttackConfig(k=20, max_candidates=100, min_similarity=0.0)

    result = attack(config, model, [TOKELAU], components).results[0]
    queried = [words for call in model.calls[1:] for words in call]
    first_success = next(index for index, words in enumerate(queried) if "Rio" in words)

    assert result.candidates_tried == first_success + 1
    assert len(queried) == first_success + 1
    assert result.queries == first_success + 2
    assert not any(misclassified(TOKELAU.tags, model.predict([words])[0]) for words in queried[:first_success])


def test_sampling_seeded(tiny_model, encoder, tiny_mlm_dir):
    sentences = [TOKELAU, LOCATIONS, FORD, HEADLINE, REPORTER, SURNAME]
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE), context=False)

    first = attack(AttackConfig(k=1, sample=3, seed=5, min_similarity=0.0), tiny_model, sentences, components)
    again = attack(AttackConfig(k=1, sample=3, seed=5, min_similarity=0.0), tiny_model, sentences, components)
    other = attack(AttackConfig(k=1, sample=3, seed=6, min_similarity=0.0), tiny_model, sentences, components)

    def outcome(run):
        return [{**result.to_dict(), "seconds": 0.0} for result in run.results]

    assert [result.index for result in first.results] == [2, 4, 5]
    assert [result.index for result in other.results] == [0, 3, 4]
    assert outcome(again) == outcome(first)


def test_warm_run_hits_attribution_cache(tmp_path, tiny_model, encoder, tiny_mlm_dir):
    sentences = [TOKELAU, FORD, REPORTER]
    config = AttackConfig(k=1, max_candidates=3, min_similarity=0.0)

    cold_components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE))
    cold = attack(config, tiny_model, sentences, cold_components, Cache(tmp_path / "cache"))
    warm_components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE))
    warm = attack(config, tiny_model, sentences, warm_components, Cache(tmp_path / "cache"))

    assert cold.cache_stats["attribution"] == {"hits": 0, "misses": 3}
    assert warm.cache_stats["attribution"] == {"hits": 3, "misses": 0}
    assert cold_components.selector.passes > 0
    assert warm_components.selector.passes == 0
    assert [result.attribution_passes for result in warm.results] == [0, 0, 0]
    assert [result.selected_positions for result in warm.results] == [result.selected_positions for result in cold.results]


# Errors ------------------------------------------------------------------------------------------------------


def test_source_error_errored(tiny_model, encoder, tiny_mlm_dir):
    components = make_components(encoder, tiny_mlm_dir, FailingSource(REFERENCE), context=False)
    config = AttackConfig(k=20, max_candidates=3, min_similarity=0.0)

    run = attack(config, tiny_model, [TOKELAU, FORD], components)
    broken, other = run.results
    summary = summarize(run)

    assert broken.status is Status.ERRORED
    assert broken.error == "BackendError: knowledge base timed out for 'Tokelau'"
    assert other.status in (Status.SUCCESSFUL, Status.FAILED)
    assert other.error is None
    assert summary["errored"] == 1
    assert summary["successful"] + summary["failed"] == 1


@pytest.mark.parametrize(
    ("at", "errors"),
    [
        ("clean", [None, "ValueError: model returned 3 tags for a sentence of 4 words"]),
        ("query", ["ValueError: model returned 10 tags for a sentence of 11 words",
                   "ValueError: model returned 3 tags for a sentence of 4 words"]),
    ],
)
def test_wrong_tag_count_errored(tiny_model, encoder, tiny_mlm_dir, at, errors):
    model = TruncatingModel(tiny_model, at)
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE), context=False)
    config = AttackConfig(k=20, max_candidates=3, min_similarity=0.0)

    run = attack(config, model, [TOKELAU, REPORTER], components)

    assert [result.error for result in run.results] == errors
    assert run.results[1].status is Status.ERRORED
    assert run.count(Status.FAILED) + run.count(Status.SUCCESSFUL) == errors.count(None)


def test_reads_data_file(tmp_path, tiny_model, encoder, tiny_mlm_dir, demo_files):
    components = make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE), context=False)
    config = AttackConfig(data=str(demo_files["test"]), sample=4, seed=1, k=1, max_candidates=2, min_similarity=0.0)

    run = run_attack(config, model=tiny_model, cache=Cache(None), components=components)
    total = len(read_corpus(demo_files["test"]).sentences)

    assert len(run.results) == 4
    assert all(0 <= result.index < total for result in run.results)
    assert run.settings["data_scheme"] == "IOB2"
    assert run.settings["model_fingerprint"] == tiny_model.fingerprint
    assert run.count(Status.ERRORED) == 0


def test_cache_stats_count_one_run(tmp_path, tiny_model, encoder, tiny_mlm_dir):
    sentences = [TOKELAU, FORD, REPORTER]
    config = AttackConfig(k=1, max_candidates=3, min_similarity=0.0)
    shared = Cache(tmp_path / "cache")

    attack(config, tiny_model, sentences, make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE)), shared)
    second = attack(
        config, tiny_model, sentences, make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE)), shared
    )

    assert second.cache_stats["attribution"] == {"hits": 3, "misses": 0}


def test_smaller_budget_queries_prefix(tiny_model, encoder, tiny_mlm_dir):
    queried = {}
    for budget in (1, 8):
        model = ScriptedModel(tiny_model, [TOKELAU])
        config = AttackConfig(k=3, max_candidates=budget, min_similarity=0.0)
        attack(config, model, [TOKELAU], make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE)))
        queried[budget] = [words for batch in model.calls[1:] for words in batch]

    assert len(queried[8]) == 8
    assert queried[1] == queried[8][:1]


def test_fewer_units_when_none_similar_enough(tiny_model, encoder, tiny_mlm_dir):
    from pytest_nerrobust.similarity import detokenize

    def queried_candidates(min_similarity: float) -> tuple[list[list[str]], Any]:
        model = ScriptedModel(tiny_model, [TOKELAU])
        config = AttackConfig(k=3, max_candidates=30, min_similarity=min_similarity)
        run = attack(config, model, [TOKELAU], make_components(encoder, tiny_mlm_dir, CorpusEntitySource(REFERENCE)))
        return [words for batch in model.calls[1:] for words in batch], run.results[0]

    joint, joint_result = queried_candidates(0.0)
    embeddings = encoder.encode([detokenize(TOKELAU.words), detokenize(joint[0])])
    threshold = float(embeddings[1] @ embeddings[0]) + 1e-4
    fewer, fewer_result = queried_candidates(threshold)

    def changed(words: list[str]) -> int:
        return sum(word not in TOKELAU.words for word in words)

    assert len(joint_result.changes) >= 2
    assert fewer
    assert len(fewer_result.changes) < len(joint_result.changes)
    assert max(changed(words) for words in fewer) < max(changed(words) for words in joint)
