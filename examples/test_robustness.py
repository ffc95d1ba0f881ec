"""Robustness tests for an NER model, written the way a project that ships the model would write them.

The model and the data come from the command line, so the same file gates any model:

    pytest examples/test_robustness.py --ner-model=PATH --ner-data=FILE --attack-k=3

``--ner-model`` also adds the plugin's own attack test (``nerrobust::attack[k=3]``), which checks the
thresholds given on the command line. The tests below add checks that no flag expresses: clean accuracy,
label coverage, and per-type robustness on a small sample. scripts/demo.sh runs them on the demo model.
"""

from __future__ import annotations

import pytest

from pytest_nerrobust.metrics import entity_f1

# Settings for every attack in this file. The command line overrides them, so keep the values here
# to settings that the run command leaves unset.
pytestmark = pytest.mark.ner_robustness(sample=30, seed=1)

CLEAN_F1_FLOOR = 0.8
PERSON_F1_UNDER_ATTACK_FLOOR = 0.5


def test_model_predicts_data_types(ner_model, ner_corpus):
    missing = set(ner_corpus.entity_types) - set(ner_model.labels)
    assert not missing, f"the model never predicts {sorted(missing)}; pass --ner-label-map to rename types"


def test_clean_f1_above_floor(ner_model, ner_corpus):
    sentences = ner_corpus.sentences
    predicted = ner_model.predict([list(sentence.words) for sentence in sentences])
    gold = [list(sentence.tags) for sentence in sentences]
    assert entity_f1(gold, predicted) >= CLEAN_F1_FLOOR


def test_person_names_survive_attack(ner_attack):
    outcome = ner_attack()
    person = outcome.metrics["per_type"]["PER"]
    assert person["f1_under_attack"] >= PERSON_F1_UNDER_ATTACK_FLOOR


@pytest.mark.ner_robustness(selector="random")
def test_random_words_break_less(ner_attack):
    # Words picked by attribution should hurt the model at least as much as words picked at random;
    # when they do not, the attribution step is not finding the words the model relies on.
    guided = ner_attack(selector="ig")
    baseline = ner_attack()
    assert guided.metrics["f1_under_attack"] <= baseline.metrics["f1_under_attack"]
