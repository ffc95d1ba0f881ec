"""Tests of the trainer: what it writes, the tag set it learns, its quality on the demo corpus, and its
errors for bad settings."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from pytest_nerrobust.corpus import Sentence, read_corpus, write_corpus
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.metrics import entity_f1
from pytest_nerrobust.models.hf import METADATA_FILE, HFTokenClassifier
from pytest_nerrobust.train import TrainSettings, train_token_classifier

CONLL_ORDER = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
QUICK = TrainSettings(epochs=1, batch_size=16, learning_rate=3e-3, max_length=32, limit=40)


def corpus_f1(model: HFTokenClassifier, path: Path) -> float:
    sentences = read_corpus(path).sentences
    predicted = model.predict([list(sentence.words) for sentence in sentences])
    return entity_f1([list(sentence.tags) for sentence in sentences], predicted)


@pytest.fixture(scope="module")
def quick_model_dir(tmp_path_factory, demo_files, tiny_encoder_dir) -> tuple[Path, dict[str, float]]:
    """Train one epoch on 40 demo sentences, scoring the demo validation split."""
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("quick-model")
    metrics = train_token_classifier(
        demo_files["train"], directory, encoder=tiny_encoder_dir, settings=QUICK, valid_path=demo_files["valid"]
    )
    return directory, metrics


def test_tiny_model_train_f1(tiny_model, demo_files):
    assert corpus_f1(tiny_model, demo_files["train"]) >= 0.8


def test_tiny_model_test_f1(tiny_model, demo_files):
    # Half of the test entity slots hold names that never occur in training, whose embeddings stay untrained.
    assert corpus_f1(tiny_model, demo_files["test"]) >= 0.5


def test_trained_config_labels(quick_model_dir):
    directory, _ = quick_model_dir
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))

    assert config["architectures"] == ["BertForTokenClassification"]
    assert [config["id2label"][str(index)] for index in range(9)] == CONLL_ORDER


def test_trained_metadata(quick_model_dir, demo_files, tiny_encoder_dir):
    directory, _ = quick_model_dir
    metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))

    assert metadata["format_version"] == 1
    assert metadata["crf"] is False
    assert metadata["max_length"] == 32
    assert metadata["encoder"] == str(tiny_encoder_dir)
    assert metadata["train_file"] == str(demo_files["train"])
    assert metadata["settings"] == asdict(QUICK)


def test_valid_f1_matches_saved(quick_model_dir, demo_files):
    directory, metrics = quick_model_dir

    saved_f1 = corpus_f1(HFTokenClassifier(directory), demo_files["valid"])

    assert metrics["valid_f1"] == pytest.approx(saved_f1)
    assert metrics["train_seconds"] > 0


def test_tag_set_from_data(tmp_path, tiny_encoder_dir):
    data = [
        Sentence(("Anna", "sang"), ("B-PER", "O")),
        Sentence(("Luis", "Weber", "sang"), ("B-PER", "I-PER", "O")),
    ]
    train_file = write_corpus(data, tmp_path / "people.conll")

    train_token_classifier(train_file, tmp_path / "model", encoder=tiny_encoder_dir, settings=QUICK)
    model = HFTokenClassifier(tmp_path / "model")

    assert model.tag_names == ["O", "B-PER", "I-PER"]
    assert model.labels == ["PER"]


def test_long_sentence_trains(tmp_path, tiny_encoder_dir):
    words = (["Tokelau", "and", "Martinique", "signed", "a", "trade", "agreement", "in", "Dakar", "on", "Wednesday", "."]) * 3
    tags = ["B-LOC", "O", "B-LOC", "O", "O", "O", "O", "O", "B-LOC", "O", "O", "O"] * 3
    train_file = write_corpus([Sentence(tuple(words), tuple(tags))], tmp_path / "long.conll")
    settings = TrainSettings(epochs=1, batch_size=4, learning_rate=3e-3, max_length=12)

    train_token_classifier(train_file, tmp_path / "model", encoder=tiny_encoder_dir, settings=settings)
    model = HFTokenClassifier(tmp_path / "model")

    assert model.max_length == 12
    assert len(model.predict([words])[0]) == 36


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "invalid training setting epochs=0 (--epochs); pass an integer >= 1"),
        ({"batch_size": 0}, "invalid training setting batch_size=0 (--batch-size); pass an integer >= 1"),
        ({"learning_rate": -1.0}, "invalid training setting learning_rate=-1.0 (--learning-rate); pass a number > 0"),
        ({"warmup_fraction": 1.5}, "invalid training setting warmup_fraction=1.5; pass a number from 0 to 1"),
        ({"max_length": 2}, "invalid training setting max_length=2 (--max-length); pass an integer >= 3"),
        ({"limit": 0}, "invalid training setting limit=0 (--limit); pass an integer >= 1 or none"),
    ],
)
def test_invalid_settings(changes, message):
    with pytest.raises(ConfigError) as raised:
        TrainSettings(**changes)

    assert str(raised.value) == message


def test_max_length_over_positions(tmp_path, demo_files, tiny_encoder_dir):
    settings = TrainSettings(epochs=1, max_length=100, limit=4)

    with pytest.raises(ConfigError) as raised:
        train_token_classifier(demo_files["train"], tmp_path / "model", encoder=tiny_encoder_dir, settings=settings)

    assert str(raised.value) == (
        f"max_length 100 (--max-length) exceeds the 64 position embeddings of encoder {str(tiny_encoder_dir)!r}; "
        "pass 64 or less"
    )
    assert not (tmp_path / "model").exists()


def test_encoder_without_config(tmp_path, demo_files):
    with pytest.raises(ModelLoadError) as raised:
        train_token_classifier(demo_files["train"], tmp_path / "model", encoder=tmp_path, settings=QUICK)

    assert str(raised.value) == (
        f"encoder {str(tmp_path)!r} is not a Hugging Face model directory (no config.json); pass a local "
        "encoder directory with --encoder"
    )


def test_training_prints_no_load_report(tmp_path, demo_files, tiny_encoder_dir, capfd):
    train_token_classifier(demo_files["train"], tmp_path / "model", encoder=tiny_encoder_dir, settings=QUICK)

    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err
    assert "Loading weights" not in err
    assert "Writing model shards" not in err
