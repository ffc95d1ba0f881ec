"""Shared fixtures: the demo corpus, tiny BERT token classifiers and a tiny masked LM.

The tiny models are real (a BertForTokenClassification or BertForMaskedLM with a word-level vocabulary
written here) and small enough to train in seconds, so engine and plugin tests exercise the same code
paths as a full model. Test modules import the generated-sentence helpers from here with
``from conftest import ...``, which works because pytest's default ``prepend`` import mode puts
``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from pytest_nerrobust.corpus import Sentence

# One torch thread per test process: the suite runs beside other work on two cores, and small models gain
# nothing from more threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# The generated person and place sentences that ``tiny_tagger`` learns from. A name of one type only occurs
# in the templates of that type.
PEOPLE = ["anna", "boris", "clara", "david", "erik", "fiona", "greta", "hans"]
PLACES = ["paris", "berlin", "rome", "oslo", "madrid", "vienna", "lisbon", "dublin"]
PERSON_TEMPLATES = ["{} said hello", "we met {} today", "mister {} smiled at us"]
PLACE_TEMPLATES = ["we flew to {} yesterday", "the weather in {} is cold", "trains from {} run late"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


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
    """Write an untrained two-layer BERT encoder whose vocabulary contains the demo corpus's words."""
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


def make_sentences(count: int, seed: int) -> list[Sentence]:
    """Alternate person and place sentences; names of one type only occur in that type's templates."""
    rng = random.Random(seed)
    sentences = []
    for index in range(count):
        if index % 2 == 0:
            name, template, tag = rng.choice(PEOPLE), rng.choice(PERSON_TEMPLATES), "B-PER"
        else:
            name, template, tag = rng.choice(PLACES), rng.choice(PLACE_TEMPLATES), "B-LOC"
        words = template.format(name).split()
        tags = [tag if word == name else "O" for word in words]
        sentences.append(Sentence(tuple(words), tuple(tags), f"generated:{index}"))
    return sentences


@pytest.fixture(scope="session")
def tiny_tagger(tmp_path_factory):
    """Train a 2-layer, 32-wide BERT tagger on generated sentences and load it through the HF adapter."""
    import torch
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    from pytest_nerrobust.models.hf import HFTokenClassifier

    path = tmp_path_factory.mktemp("tiny-bert")
    words = sorted(set(PEOPLE + PLACES + " ".join(PERSON_TEMPLATES + PLACE_TEMPLATES).replace("{}", "").split()))
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(vocabulary)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(TAGS),
        id2label=dict(enumerate(TAGS)),
        label2id={tag: index for index, tag in enumerate(TAGS)},
    )
    torch.manual_seed(0)
    network = BertForTokenClassification(config)
    data = make_sentences(64, seed=1)
    encoded = tokenizer([list(s.words) for s in data], is_split_into_words=True, return_tensors="pt", padding=True)
    labels = torch.full(encoded["input_ids"].shape, -100)
    for row, sentence in enumerate(data):
        for position, word in enumerate(encoded.word_ids(row)):
            if word is not None:
                labels[row, position] = TAGS.index(sentence.tags[word])
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    network.train()
    for _ in range(60):
        loss = network(**encoded, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()
    network.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return HFTokenClassifier(path)


@pytest.fixture(scope="session")
def write_tiny_mlm(tmp_path_factory) -> Callable[[Sequence[str], Mapping[str, float]], Path]:
    """Return a writer of tiny BertForMaskedLM directories whose predictions are their output bias.

    ``write(words, bias)`` builds a vocabulary of the BERT special tokens, then ``words``, then the keys
    of ``bias``. Every output weight is zero, so whatever the input, the model ranks the ``bias`` words
    by their value, highest first, and every other token at 0.
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    def write(words: Sequence[str], bias: Mapping[str, float]) -> Path:
        vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *bias]
        directory = tmp_path_factory.mktemp("tiny-mlm")
        (directory / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
        BertTokenizerFast(vocab=str(directory / "vocab.txt"), do_lower_case=True).save_pretrained(str(directory))
        config = BertConfig(vocab_size=len(vocabulary), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=64, tie_word_embeddings=False)
        torch.manual_seed(0)
        model = BertForMaskedLM(config)
        output_bias = torch.zeros(len(vocabulary))
        for word, value in bias.items():
            output_bias[vocabulary.index(word)] = value
        with torch.no_grad():
            model.cls.predictions.decoder.weight.zero_()
            model.cls.predictions.decoder.bias.copy_(output_bias)
            model.cls.predictions.bias.copy_(output_bias)
        model.save_pretrained(str(directory))
        return directory

    return write
