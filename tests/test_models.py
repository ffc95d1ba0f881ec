"""Tests of the model adapters: the Hugging Face token classifier (softmax and CRF heads), models given as
``module:attr``, label maps and the label check."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_nerrobust.corpus import read_corpus
from pytest_nerrobust.errors import ConfigError, LabelMismatchError, ModelLoadError
from pytest_nerrobust.models.base import GradientNERModel, NERModel
from pytest_nerrobust.models.callable import CallableModel, RelabelledModel
from pytest_nerrobust.models.hf import CRF_FILE, METADATA_FILE, HFTokenClassifier
from pytest_nerrobust.models.loading import check_labels, load_model, parse_label_map

# Every word of these sentences is one piece of the tiny model's vocabulary.
LONG_WORDS = ["Tajikistan", "and", "Martinique", "signed", "a", "trade", "agreement", "in", "Dakar", "on", "Wednesday", ".", "Talks", "between", "Tokelau", "and", "the", "World", "Bank", "ended", "without", "agreement", ".", "Ford", "said"]
# Made-up words that the tiny vocabulary spells out letter by letter ("z ##o ##r ...").
SPELLED_WORDS = ["Zorvak", "Quimby", "visited", "Tokelau", "."]
BATCH = [
    ["Talks", "between", "Tokelau", "and", "the", "World", "Bank", "ended", "without", "agreement", "."],
    ["Bianchi"],
    ["Reporting", "by", "Luis", "Weber"],
]


def plain_first_piece_log_probs(model: HFTokenClassifier, words: list[str]) -> tuple[torch.Tensor, list[int]]:
    """Run the network on the tokenized words directly and return its log-softmax and each word's first piece."""
    encoded = model.tokenizer([words], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        log_probs = torch.log_softmax(model.network(**encoded).logits[0], dim=-1)
    first_pieces: list[int] = []
    previous = None
    for position, word in enumerate(encoded.word_ids(0)):
        if word is not None and word != previous:
            first_pieces.append(position)
        previous = word
    return log_probs, first_pieces


def viterbi(emissions: np.ndarray, start: np.ndarray, transitions: np.ndarray, end: np.ndarray) -> list[int]:
    """Return the best tag path of a linear-chain CRF over ``emissions`` ``[words, tags]``."""
    score = start + emissions[0]
    backpointers = []
    for row in emissions[1:]:
        candidates = score[:, None] + transitions
        backpointers.append(candidates.argmax(axis=0))
        score = candidates.max(axis=0) + row
    path = [int((score + end).argmax())]
    for pointers in reversed(backpointers):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


@pytest.fixture(scope="module")
def crf_model_dir(tmp_path_factory, demo_files, tiny_encoder_dir) -> Path:
    from pytest_nerrobust.train import TrainSettings, train_token_classifier

    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("tiny-crf")
    settings = TrainSettings(
        epochs=6, batch_size=16, learning_rate=3e-3, max_length=32, seed=0, warmup_fraction=0.05, crf=True, limit=300
    )
    train_token_classifier(demo_files["train"], directory, encoder=tiny_encoder_dir, settings=settings)
    return directory


@pytest.fixture
def module_dir(tmp_path, monkeypatch) -> Path:
    """Write ``taggers.py`` with model objects of every supported kind and put it on ``sys.path``."""
    source = textwrap.dedent(
        '''
        def tagger(sentences):
            return [["B-PER" if word == "Anna" else "O" for word in words] for words in sentences]

        def short_tagger(sentences):
            return [["O"] * (len(words) - 1) for words in sentences]

        def dropping_tagger(sentences):
            return [["O"] * len(words) for words in sentences[1:]]

        def person_tagger(sentences):
            return [["B-PERSON" if word == "Anna" else "O" for word in words] for words in sentences]

        person_tagger.labels = ["PERSON"]

        class Tagger:
            labels = ["PER"]

            def predict(self, sentences):
                return [["B-PER"] + ["O"] * (len(words) - 1) for words in sentences]

        class FingerprintedTagger(Tagger):
            fingerprint = "fixed-fingerprint"

        def make_tagger():
            return FingerprintedTagger()

        instance = Tagger()
        '''
    )
    (tmp_path / "taggers.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "taggers", raising=False)
    return tmp_path


# Hugging Face adapter -------------------------------------------------------------------------------------


def test_tiny_model_protocols(tiny_model):
    assert isinstance(tiny_model, NERModel)
    assert isinstance(tiny_model, GradientNERModel)
    assert tiny_model.labels == ["LOC", "MISC", "ORG", "PER"]
    assert tiny_model.tag_names[0] == "O"


def test_word_label_first_piece(tiny_model):
    log_probs, first_pieces = plain_first_piece_log_probs(tiny_model, SPELLED_WORDS)
    piece_tags = [tiny_model.tag_names[int(index)] for index in log_probs.argmax(dim=-1)]
    expected = [piece_tags[position] for position in first_pieces]

    predicted = tiny_model.predict([SPELLED_WORDS])[0]

    # The first word has six pieces, and a later piece must disagree with the first for this test to tell
    # the first piece from the others.
    assert first_pieces[:2] == [1, 7]
    assert set(piece_tags[2:7]) - {piece_tags[1]}
    assert predicted == expected


def test_forward_features_match_plain(tiny_model):
    log_probs, first_pieces = plain_first_piece_log_probs(tiny_model, SPELLED_WORDS)
    features = tiny_model.word_features([SPELLED_WORDS])

    with torch.no_grad():
        output = tiny_model.forward_features(features.values, features)

    assert output.shape == (1, len(SPELLED_WORDS), len(tiny_model.tag_names))
    assert torch.allclose(output[0], log_probs[first_pieces], atol=1e-5)


def test_forward_features_expanded_batch(tiny_model):
    features = tiny_model.word_features(BATCH)
    with torch.no_grad():
        single = tiny_model.forward_features(features.values, features)
        expanded = tiny_model.forward_features(torch.cat([features.values, features.values * 0.5]), features)

    assert expanded.shape[0] == 2 * len(BATCH)
    assert torch.allclose(expanded[: len(BATCH)], single, atol=1e-5)
    assert not torch.allclose(expanded[len(BATCH) :], single, atol=1e-3)


def test_long_sentence_windows(tiny_model_dir):
    model = HFTokenClassifier(tiny_model_dir, max_length=12)
    words = LONG_WORDS
    # 10 single-piece words fit beside [CLS] and [SEP]. Windows step by half their length, and each word
    # takes its tag from the window where it sits farthest from an edge (the earlier window on a tie).
    windows = [words[0:10], words[5:15], words[10:20], words[15:25]]
    parts = model.predict(windows)
    expected = parts[0][:8] + parts[1][3:8] + parts[2][3:8] + parts[3][3:]

    predicted = model.predict([words])[0]

    assert len(words) == 25
    assert all(len(model.tokenizer.tokenize(word)) == 1 for word in words)
    assert len(predicted) == 25
    assert predicted == expected


def test_long_sentence_word_too_long(tiny_model_dir):
    model = HFTokenClassifier(tiny_model_dir, max_length=6)

    with pytest.raises(ModelLoadError) as raised:
        model.predict([[".", "Zorvakian"]])

    assert str(raised.value) == (
        "word 'Zorvakian' alone has 9 sub-word pieces, more than the model's maximum length 6; raise "
        "max_length or clean the data"
    )


def test_batch_order_kept(tiny_model):
    singles = [tiny_model.predict([words])[0] for words in BATCH]

    assert tiny_model.predict(BATCH) == singles
    assert tiny_model.predict(BATCH[::-1]) == singles[::-1]
    assert [len(tags) for tags in singles] == [11, 1, 4]
    assert tiny_model.predict([]) == []


def test_crf_saved_files(crf_model_dir):
    metadata = json.loads((crf_model_dir / METADATA_FILE).read_text(encoding="utf-8"))

    assert (crf_model_dir / CRF_FILE).is_file()
    assert metadata["crf"] is True
    assert metadata["max_length"] == 32


def test_crf_loads_weights(crf_model_dir):
    model = HFTokenClassifier(crf_model_dir)
    saved = torch.load(crf_model_dir / CRF_FILE, weights_only=True)

    assert model.crf is not None
    assert torch.equal(model.crf.transitions, saved["transitions"])
    assert torch.equal(model.crf.start_transitions, saved["start_transitions"])
    assert torch.equal(model.crf.end_transitions, saved["end_transitions"])
    assert saved["transitions"].abs().max() > 0.01


def test_crf_viterbi_decode(crf_model_dir):
    model = HFTokenClassifier(crf_model_dir)
    crf = model.crf
    expected = []
    for words in BATCH + [SPELLED_WORDS]:
        log_probs, first_pieces = plain_first_piece_log_probs(model, words)
        path = viterbi(
            log_probs[first_pieces].numpy(),
            crf.start_transitions.detach().numpy(),
            crf.transitions.detach().numpy(),
            crf.end_transitions.detach().numpy(),
        )
        expected.append([model.tag_names[index] for index in path])

    assert model.predict(BATCH + [SPELLED_WORDS]) == expected


def test_crf_model_f1(crf_model_dir, demo_files):
    from pytest_nerrobust.metrics import entity_f1

    model = HFTokenClassifier(crf_model_dir)
    sentences = read_corpus(demo_files["train"]).sentences[:300]
    predicted = model.predict([list(sentence.words) for sentence in sentences])

    assert entity_f1([list(sentence.tags) for sentence in sentences], predicted) >= 0.8


def test_crf_file_missing(crf_model_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(crf_model_dir, copy)
    (copy / CRF_FILE).unlink()

    with pytest.raises(ModelLoadError) as raised:
        HFTokenClassifier(copy)

    assert str(raised.value) == (
        f"model directory {str(copy)!r} declares a CRF head but crf.pt is missing; re-run "
        '`nerrobust train --crf` or remove "crf" from nerrobust_model.json'
    )


def test_plain_encoder_rejected(tiny_encoder_dir):
    with pytest.raises(ModelLoadError) as raised:
        load_model(str(tiny_encoder_dir))

    message = str(raised.value)
    assert f"model directory {str(tiny_encoder_dir)!r} is not a token classifier" in message
    assert "(architectures: BertModel)" in message
    assert message.endswith(
        f"fine-tune it on your labelled data first: `nerrobust train TRAIN_FILE --encoder {tiny_encoder_dir} "
        "-o MODEL_DIR`"
    )
    assert "\n" not in message


def test_missing_path_rejected(tmp_path):
    missing = tmp_path / "no-model"

    with pytest.raises(ModelLoadError) as raised:
        load_model(str(missing))

    message = str(raised.value)
    assert f"model path {str(missing)!r} does not exist" in message
    assert "pass a directory written by `nerrobust train` or `save_pretrained`" in message
    assert "\n" not in message


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelLoadError) as raised:
        load_model(str(tmp_path))

    assert f"model path {str(tmp_path)!r} is not a Hugging Face model directory (no config.json)" in str(raised.value)


def test_label_mismatch_message(tiny_model):
    with pytest.raises(LabelMismatchError) as raised:
        check_labels(tiny_model, ["GPE", "PER"], "data/dev.conll")

    message = str(raised.value)
    assert "entity types of data/dev.conll ['GPE', 'PER'] differ from the model's" in message
    assert "['LOC', 'MISC', 'ORG', 'PER']" in message
    assert "(GPE not predicted by the model)" in message
    assert message.endswith("map them with --ner-label-map GPE=MODEL_TYPE")
    assert "\n" not in message


def test_label_subset_accepted(tiny_model):
    check_labels(tiny_model, ["LOC", "PER"], "data/dev.conll")


# Models given as module:attr --------------------------------------------------------------------------------


def test_load_function(module_dir):
    model = load_model("taggers:tagger")

    assert isinstance(model, CallableModel)
    assert model.labels == []
    assert model.predict([["Anna", "sang"], ["ok"]]) == [["B-PER", "O"], ["O"]]


def test_load_object_predict(module_dir):
    model = load_model("taggers:instance")

    assert isinstance(model, CallableModel)
    assert model.labels == ["PER"]
    assert model.predict([["Anna", "sang"]]) == [["B-PER", "O"]]


def test_load_object_labels_checked(module_dir):
    model = load_model("taggers:instance")

    with pytest.raises(LabelMismatchError):
        check_labels(model, ["LOC"], "data.conll")


def test_load_factory(module_dir):
    model = load_model("taggers:make_tagger")

    assert type(model).__name__ == "FingerprintedTagger"
    assert model.fingerprint == "fixed-fingerprint"
    assert model.predict([["Anna", "sang"]]) == [["B-PER", "O"]]


def test_load_class(module_dir):
    model = load_model("taggers:Tagger")

    assert isinstance(model, CallableModel)
    assert model.predict([["x", "y", "z"]]) == [["B-PER", "O", "O"]]


def test_callable_fingerprint_stable(module_dir):
    first = load_model("taggers:tagger").fingerprint
    second = load_model("taggers:tagger").fingerprint

    assert first == second
    assert first != load_model("taggers:person_tagger").fingerprint


def test_wrong_tag_count(module_dir):
    model = load_model("taggers:short_tagger")

    with pytest.raises(ModelLoadError) as raised:
        model.predict([["Anna", "sang", "well"]])

    assert str(raised.value) == (
        "model 'taggers:short_tagger' returned 2 tags for a sentence of 3 words ('Anna sang well'); return "
        "one tag per word"
    )


def test_wrong_list_count(module_dir):
    model = load_model("taggers:dropping_tagger")

    with pytest.raises(ModelLoadError) as raised:
        model.predict([["a"], ["b"]])

    assert str(raised.value) == (
        "model 'taggers:dropping_tagger' returned 1 tag lists for 2 sentences; return one list per sentence"
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("taggers", "model spec 'taggers' is not module:attr; write it like mypackage.models:tagger"),
        ("no_such_module_x:tagger", "model spec 'no_such_module_x:tagger': module 'no_such_module_x' cannot be imported"),
        ("taggers:missing", "model spec 'taggers:missing': 'taggers' has no attribute 'missing'; check the name after the colon"),
    ],
)
def test_bad_spec_message(module_dir, spec, expected):
    from pytest_nerrobust.models.callable import import_callable

    with pytest.raises(ModelLoadError) as raised:
        import_callable(spec)

    assert str(raised.value).startswith(expected)


def test_not_a_model_object(module_dir):
    from pytest_nerrobust.models.callable import model_from_object

    with pytest.raises(ModelLoadError) as raised:
        model_from_object(42, "taggers:answer")

    assert str(raised.value).startswith("model spec 'taggers:answer' names a int, not a model;")


def test_empty_spec_rejected():
    with pytest.raises(ModelLoadError, match=r"^no model given; pass --ner-model PATH or --ner-model module:attr$"):
        load_model("")


# Label maps ------------------------------------------------------------------------------------------------


def test_parse_label_map_pairs():
    assert parse_label_map("PERSON=PER, GPE = LOC") == {"PERSON": "PER", "GPE": "LOC"}
    assert parse_label_map(None) == {}
    assert parse_label_map("") == {}


@pytest.mark.parametrize("text", ["PERSON", "PERSON=", "=PER", "PERSON=PER,GPE"])
def test_parse_label_map_invalid(text):
    with pytest.raises(ConfigError) as raised:
        parse_label_map(text, source="ini ner_label_map")

    message = str(raised.value)
    assert message.startswith("ini ner_label_map: invalid entry ")
    assert f"in {text!r}; write DATA_TYPE=MODEL_TYPE pairs separated by commas, e.g. PERSON=PER,GPE=LOC" in message


def test_relabelled_predictions(module_dir):
    model = load_model("taggers:person_tagger", label_map={"PER": "PERSON"})

    assert isinstance(model, RelabelledModel)
    assert model.labels == ["PER"]
    assert model.predict([["Anna", "sang"]]) == [["B-PER", "O"]]
    check_labels(model, ["PER"], "data.conll")


def test_relabelled_keeps_unmapped(tiny_model):
    model = RelabelledModel(tiny_model, {"PERSON": "PER", "GPE": "LOC"})

    assert model.labels == ["GPE", "MISC", "ORG", "PERSON"]
    assert model.predict([["Bianchi"]]) == [["B-PERSON"]]
    assert model.fingerprint == f"{tiny_model.fingerprint}+map:[('GPE', 'LOC'), ('PERSON', 'PER')]"
    assert model.tag_names[:3] == ["O", "B-GPE", "I-GPE"]
    assert model.tag_names[-2:] == ["B-PERSON", "I-PERSON"]


def test_relabelled_ig_targets(tiny_model):
    from pytest_nerrobust.attribution.ig import IntegratedGradientsSelector
    from pytest_nerrobust.corpus import Sentence

    model = RelabelledModel(tiny_model, {"PERSON": "PER"})
    sentence = Sentence(("Bianchi",), ("B-PERSON",))
    selector = IntegratedGradientsSelector(steps=8, max_steps=8)

    relabelled = selector.attribute(model, [sentence], model.predict([["Bianchi"]]), refine=False)
    plain = selector.attribute(tiny_model, [sentence], tiny_model.predict([["Bianchi"]]), refine=False)

    assert torch.allclose(relabelled.attributions, plain.attributions)


def test_loading_prints_no_progress_bar(tiny_model_dir, capfd):
    from transformers.utils import logging as transformers_logging

    HFTokenClassifier(tiny_model_dir)

    assert "Loading weights" not in capfd.readouterr().err
    assert transformers_logging.is_progress_bar_enabled()


def test_label_map_unknown_model_type_rejected(tiny_model):
    with pytest.raises(LabelMismatchError) as raised:
        RelabelledModel(tiny_model, {"PER": "PERSON", "GPE": "LOC"})

    assert str(raised.value) == (
        "--ner-label-map entries PER=PERSON name types the model never predicts; the model's types are "
        f"{sorted(tiny_model.labels)}, so write DATA_TYPE=MODEL_TYPE with one of them on the right"
    )
