"""The generated demo corpus: sizes, labels, shapes of sentences, held-out entities and byte stability."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_nerrobust.corpus import Corpus, read_corpus
from pytest_nerrobust.demo import TEMPLATES, demo_sentences, write_demo_corpus
from pytest_nerrobust.errors import ConfigError


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    write_demo_corpus(directory)
    return directory


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> dict[str, Corpus]:
    return {split: read_corpus(demo_dir / f"{split}.conll") for split in ("train", "valid", "test")}


def _entities(corpus: Corpus) -> set[tuple[str, str]]:
    return {
        (" ".join(sentence.words[span.start : span.end]), span.label)
        for sentence in corpus
        for span in sentence.spans
    }


def test_write_returns_paths(tmp_path: Path) -> None:
    paths = write_demo_corpus(tmp_path / "new")
    assert paths == {split: tmp_path / "new" / f"{split}.conll" for split in ("train", "valid", "test")}


@pytest.mark.parametrize(("split", "size"), [("train", 600), ("valid", 100), ("test", 150)])
def test_split_sizes(demo: dict[str, Corpus], split: str, size: int) -> None:
    assert len(demo[split]) == size


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_split_labels(demo: dict[str, Corpus], split: str) -> None:
    assert demo[split].entity_types == ["LOC", "MISC", "ORG", "PER"]
    assert demo[split].scheme == "IOB2"


def test_template_count() -> None:
    assert len(TEMPLATES) >= 40


def test_one_word_sentences(demo: dict[str, Corpus]) -> None:
    one_word = [sentence for sentence in demo["train"] if len(sentence.words) == 1]
    assert any(sentence.tags == ("O",) for sentence in one_word)
    assert any(sentence.tags == ("B-PER",) for sentence in one_word)


def test_entity_positions(demo: dict[str, Corpus]) -> None:
    sentences = [sentence for sentence in demo["train"] if len(sentence.words) > 2]
    assert any(sentence.tags[0] == "B-LOC" for sentence in sentences)
    assert any(sentence.tags[-1] != "O" for sentence in sentences)


def test_multi_word_entities(demo: dict[str, Corpus]) -> None:
    lengths = {len(span) for sentence in demo["train"] for span in sentence.spans}
    assert 1 in lengths
    assert 2 in lengths
    assert 3 in lengths


def test_headlines_upper_case(demo: dict[str, Corpus]) -> None:
    headline_entities = [
        sentence.words[span.start]
        for sentence in demo["train"]
        if sentence.words[0] in ("SOCCER", "TENNIS") and len(sentence.words) > 1
        for span in sentence.spans
    ]
    assert headline_entities
    assert all(word.isupper() for word in headline_entities)


def test_test_split_has_unseen_entities(demo: dict[str, Corpus]) -> None:
    train = _entities(demo["train"]) | _entities(demo["valid"])
    test = _entities(demo["test"])
    unseen = test - train
    assert len(unseen) >= len(test) // 4
    assert len(test & train) >= len(test) // 4


def test_files_byte_identical(tmp_path: Path, demo_dir: Path) -> None:
    write_demo_corpus(tmp_path)
    for split in ("train", "valid", "test"):
        assert (tmp_path / f"{split}.conll").read_bytes() == (demo_dir / f"{split}.conll").read_bytes()


def test_files_identical_across_hash_seeds(tmp_path: Path, demo_dir: Path) -> None:
    code = "import sys; from pytest_nerrobust.demo import write_demo_corpus; write_demo_corpus(sys.argv[1])"
    environment = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=environment)
    for split in ("train", "valid", "test"):
        assert (tmp_path / f"{split}.conll").read_bytes() == (demo_dir / f"{split}.conll").read_bytes()


def test_seed_changes_sentences() -> None:
    assert demo_sentences("valid", count=20, seed=1) != demo_sentences("valid", count=20, seed=2)


def test_unknown_split() -> None:
    with pytest.raises(ConfigError, match="unknown demo split 'dev'; use one of train, valid, test"):
        demo_sentences("dev")
