"""Shared fixtures: the demo corpus and a tiny BERT token classifier trained on it by the project's trainer.

The tiny model is real (a BertForTokenClassification with a word-level vocabulary written here) and small
enough to train in seconds, so engine and plugin tests exercise the same code paths as a full model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One torch thread per test process: the suite runs beside other work on two cores, and small models gain
# nothing from more threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """Return a file of the shared real corpora, or skip the test naming the missing path."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"real corpus {path} is absent; it is only present beside a development checkout")
    return path


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory) -> dict[str, Path]:
    from pytest_nerrobust.demo import write_demo_corpus

    return write_demo_corpus(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, demo_files) -> Path:
    """Write an untrained two-layer BERT encoder whose vocabulary holds the demo corpus's words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from pytest_nerrobust.corpus import read_corpus

    directory = tmp_path_factory.mktemp("tiny-encoder")
    words: set[str] = set()
    for path in demo_files.values():
        for sentence in read_corpus(path).sentences:
            words.update(word.lower() for word in sentence.words)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(code) for code in range(ord("a"), ord("z") + 1)]
    pieces = [f"##{letter}" for letter in letters]
    vocabulary = specials + sorted(words | set(letters)) + pieces
    (directory / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")

    # transformers 5 reads the vocabulary from ``vocab``. It ignores a ``vocab_file`` keyword and keeps only
    # the special tokens, so every word would become [UNK].
    tokenizer = BertTokenizerFast(vocab=str(directory / "vocab.txt"), do_lower_case=True)
    assert len(tokenizer) == len(vocabulary), f"tokenizer kept {len(tokenizer)} of {len(vocabulary)} vocabulary entries"
    tokenizer.save_pretrained(str(directory))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, demo_files, tiny_encoder_dir) -> Path:
    """Train the tiny encoder on the demo training split with ``train_token_classifier``."""
    import torch

    from pytest_nerrobust.train import TrainSettings, train_token_classifier

    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("tiny-model")
    settings = TrainSettings(epochs=6, batch_size=16, learning_rate=3e-3, max_length=32, seed=0, warmup_fraction=0.05)
    train_token_classifier(demo_files["train"], directory, encoder=tiny_encoder_dir, settings=settings)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from pytest_nerrobust.models.hf import HFTokenClassifier

    return HFTokenClassifier(tiny_model_dir)
