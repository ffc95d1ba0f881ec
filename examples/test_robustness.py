"""Robustness tests for an NER model, written the way a project that ships the model would write them.

The model and the data come from the command line, so the same file gates any model:

    pytest examples/test_robustness.py --ner-model=PATH --ner-data=FILE --attack-k=3

``--ner-model`` also adds the plugin's own attack test (``nerrobust::attack[k=3]``), which checks the
thresholds given on the command line. It takes only command-line, ini and environment settings, so the
marker below does not limit it: add ``--attack-sample=40`` to attack the same number of sentences. The tests below add checks that no flag expresses: label coverage,
clean accuracy, per-type robustness and robustness against an attacker with a small query budget.
scripts/demo.sh runs them on the demo model.
"""

from __future__ import annotations

import pytest

from pytest_nerrobust.metrics import entity_f1

# Attack settings for every test in this file. The command line overrides them, so a run with
# --attack-sample=N attacks N sentences here too.
pytestmark = pytest.mark.ner_robustness(sample=40)

CLEAN_F1_MIN = 0.8
PERSON_F1_UNDER_ATTACK_MIN = 0.5
SMALL_BUDGET_CANDIDATES = 3
SMALL_BUDGET_SUCCESS_RATE_MAX = 0.4


def test_model_predicts_data_types(ner_model, ner_corpus):
    missing = set(ner_corpus.entity_types) - set(ner_model.labels)
    assert not missing, f"the model never predicts {sorted(missing)}; pass --ner-label-map to rename types"


def test_clean_f1_above_minimum(ner_model, ner_corpus):
    sentences = ner_corpus.sentences
    predicted = ner_model.predict([list(sentence.words) for sentence in sentences])
    gold = [list(sentence.tags) for sentence in sentences]
    assert entity_f1(gold, predicted) >= CLEAN_F1_MIN


def test_person_names_survive_attack(ner_attack):
    outcome = ner_attack()
    outcome.check()
    assert outcome.metrics["per_type"]["PER"]["f1_under_attack"] >= PERSON_F1_UNDER_ATTACK_MIN


def test_small_budget_attack_mostly_fails(ner_attack):
    # The same attack, allowed only the most similar candidates. After the attack above, its
    # attributions, substitutes and embeddings are in the cache, so this one costs little more than queries.
    outcome = ner_attack(max_candidates=SMALL_BUDGET_CANDIDATES)
    assert outcome.metrics["attack_success_rate"] <= SMALL_BUDGET_SUCCESS_RATE_MAX
