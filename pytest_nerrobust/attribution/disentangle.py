"""Disentangle entity-word features from the context of their sentence before attribution.

Integrated Gradients over raw word features mostly picks context words. The disentangler trains an entity
code E' to keep what is needed to rebuild an entity word's features E, and adversarially against a
discriminator that tries to recover the sentence's context features C from it:

    Enc(E; C) -> E'        Dec(E'; C) -> Ê        Dis(E') -> Ĉ
    autoencoder loss  = MSE(E, Ê) - beta * MSE(C, Ĉ)
    discriminator loss = MSE(C, Ĉ)

The two losses are minimised in alternation. :meth:`Disentangler.transform` then puts Ê in place of E at the
entity positions of a batch, and Integrated Gradients attributes over those features.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from pytest_nerrobust.cache import make_key
from pytest_nerrobust.errors import ConfigError, NerRobustError

if TYPE_CHECKING:
    from pytest_nerrobust.cache import Cache
    from pytest_nerrobust.corpus import Sentence
    from pytest_nerrobust.models.base import GradientNERModel

logger = logging.getLogger(__name__)

CACHE_NAMESPACE = "disentangler"
STATE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class DisentanglerSettings:
    """Training settings of the disentangler.

    ``hidden_sizes`` are the encoder's layer widths, and the last one is the width of the entity code E'.
    The decoder and the discriminator use the same widths in reverse. ``discriminator_steps`` is the number
    of discriminator updates before each autoencoder update. ``batch_size`` counts entity words per update.
    ``feature_batch_size`` counts sentences per call of ``model.word_features`` and is the only setting that
    leaves the trained weights unchanged, so cache keys leave it out.
    """

    hidden_sizes: tuple[int, ...] = (64, 10)
    beta: float = 0.5
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    epochs: int = 25
    batch_size: int = 32
    discriminator_steps: int = 1
    feature_batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not self.hidden_sizes or any(not isinstance(size, int) or size < 1 for size in self.hidden_sizes):
            raise ConfigError(
                f"disentangler hidden_sizes {list(self.hidden_sizes)!r} is invalid; give one or more positive "
                "integers, for example [64, 10]"
            )
        for name in ("epochs", "batch_size", "discriminator_steps", "feature_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"disentangler {name} {value!r} is invalid; give a positive integer")
        for name in ("learning_rate", "beta", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or (name == "learning_rate" and value == 0):
                raise ConfigError(
                    f"disentangler {name} {value!r} is invalid; give a non-negative number"
                    + (" above 0" if name == "learning_rate" else "")
                )

    def result_key(self) -> dict[str, Any]:
        """Return the settings that change the trained weights, for cache keys and fingerprints."""
        values = asdict(self)
        del values["feature_batch_size"]
        return values

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DisentanglerSettings:
        """Build settings from a mapping such as a parsed ini or JSON section, rejecting unknown keys."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown disentangler setting(s) {unknown}; accepted settings are {sorted(known)}"
            )
        return cls(**dict(values))


@dataclass
class TrainingHistory:
    """Mean losses per epoch, on standardised features.

    ``reconstruction`` is MSE(E, Ê), ``adversarial`` is MSE(C, Ĉ) seen by the autoencoder step and
    ``discriminator`` is MSE(C, Ĉ) seen by the discriminator step.
    """

    reconstruction: list[float] = field(default_factory=list)
    adversarial: list[float] = field(default_factory=list)
    discriminator: list[float] = field(default_factory=list)


@dataclass
class TrainingPairs:
    """Entity-word features E ``[N, D]`` with the pooled context features C ``[N, D]`` of their sentences."""

    entities: torch.Tensor
    contexts: torch.Tensor


def gold_entity_mask(sentences: Sequence[Sentence], width: int) -> torch.Tensor:
    """Return a ``[len(sentences), width]`` bool mask that is true at words with a gold entity tag."""
    mask = torch.zeros(len(sentences), width, dtype=torch.bool)
    for row, sentence in enumerate(sentences):
        for position, tag in enumerate(sentence.tags[:width]):
            mask[row, position] = tag != "O"
    return mask


def pooled_context(values: torch.Tensor, mask: torch.Tensor, entity_mask: torch.Tensor) -> torch.Tensor:
    """Return the mean features of each sentence's context words, ``[B, D]``.

    A sentence with no context word (only entities) gets a zero vector.
    """
    context = (mask.bool() & ~entity_mask.bool()).unsqueeze(-1).to(values.dtype)
    counts = context.sum(dim=1).clamp(min=1.0)
    return (values * context).sum(dim=1) / counts


def data_fingerprint(sentences: Sequence[Sentence]) -> str:
    """Return a SHA-256 of the words and gold tags of ``sentences``, in order."""
    digest = hashlib.sha256()
    for sentence in sentences:
        digest.update(json.dumps([sentence.words, sentence.tags], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def collect_training_pairs(
    model: GradientNERModel, sentences: Sequence[Sentence], batch_size: int = 64
) -> TrainingPairs:
    """Compute the model's word features in batches of ``batch_size`` sentences and split them into E and C.

    Entity words are found by gold tags. Words outside the model's ``mask`` are left out of both E and C.
    """
    entity_rows: list[torch.Tensor] = []
    context_rows: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = sentences[start : start + batch_size]
            features = model.word_features([list(sentence.words) for sentence in batch])
            values = features.values.detach().float().cpu()
            mask = features.mask.bool().cpu()
            entity_mask = gold_entity_mask(batch, values.shape[1]) & mask
            contexts = pooled_context(values, mask, entity_mask)
            rows, _ = entity_mask.nonzero(as_tuple=True)
            entity_rows.append(values[entity_mask])
            context_rows.append(contexts[rows])

    if not entity_rows:
        raise NerRobustError("the disentangler got no sentences; pass a non-empty corpus")
    return TrainingPairs(torch.cat(entity_rows), torch.cat(context_rows))


@dataclass
class Standardiser:
    """Per-dimension mean and standard deviation ``[D]`` that map features to zero mean and unit variance."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, rows: torch.Tensor) -> Standardiser:
        return cls(rows.mean(dim=0), rows.std(dim=0, unbiased=False).clamp(min=1e-6))

    def apply(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean.to(values.device)) / self.std.to(values.device)

    def invert(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.std.to(values.device) + self.mean.to(values.device)


def _mlp(sizes: Sequence[int], final: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


class DisentanglerNetworks(nn.Module):
    """The encoder, decoder and discriminator over standardised features of width ``feature_dim``."""

    def __init__(self, feature_dim: int, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        code = hidden_sizes[-1]
        inner = list(hidden_sizes[:-1])
        # C conditions the encoder by concatenation: each entity word reads [E; mean context features of its sentence].
        # Tanh bounds E', so the autoencoder cannot drive -beta * MSE(C, Ĉ) down by inflating the code.
        self.encoder = _mlp([2 * feature_dim, *inner, code], nn.Tanh())
        self.decoder = _mlp([code + feature_dim, *reversed(inner), feature_dim], None)
        self.discriminator = _mlp([code, *reversed(inner), feature_dim], None)

    def encode(self, entities: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        return self.encoder(torch.cat([entities, contexts], dim=-1))

    def decode(self, codes: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([codes, contexts], dim=-1))


class Disentangler:
    """Learns entity codes E' trained against a context discriminator, and rebuilds entity features Ê from them.

    NOTE: E' beats only its co-trained discriminator. On the tiny test model, a fresh discriminator trained on
    frozen E' recovers C better than one trained on E (see :func:`context_recovery_error`).

    Args:
        settings: training settings (default ``DisentanglerSettings()``: hidden sizes [64, 10], beta 0.5,
            SGD learning rate 1e-3, weight decay 1e-5, 25 epochs).
        cache: where the trained weights are stored, keyed by model fingerprint, data fingerprint and
            settings; None trains on every :meth:`fit`.

    >>> disentangler = Disentangler().fit(model, corpus.sentences)  # doctest: +SKIP
    >>> values = disentangler.transform(features.values, features.mask, entity_mask)  # doctest: +SKIP
    """

    def __init__(self, settings: DisentanglerSettings | None = None, cache: Cache | None = None) -> None:
        self.settings = settings or DisentanglerSettings()
        self.cache = cache
        self.history = TrainingHistory()
        self.training_seconds = 0.0
        self.training_pairs = 0
        self.loaded_from_cache = False
        self.model_fingerprint = ""
        self.data_fingerprint = ""
        self._networks: DisentanglerNetworks | None = None
        self._entity_scale: Standardiser | None = None
        self._context_scale: Standardiser | None = None

    @property
    def fitted(self) -> bool:
        return self._networks is not None

    def fingerprint(self) -> str:
        """Identify the trained disentangler by settings, model and data, for cache keys of later steps."""
        payload = json.dumps(
            [self.settings.result_key(), self.model_fingerprint, self.data_fingerprint, STATE_FORMAT_VERSION],
            sort_keys=True,
        )
        return "disentangler:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def fit(self, model: GradientNERModel, sentences: Sequence[Sentence]) -> Disentangler:
        """Train on the word features of ``model`` over ``sentences``, or load the weights from the cache.

        Entity words come from the gold tags. A sentence without an entity adds no training pair, and
        :meth:`transform` leaves it unchanged. Raises :class:`ConfigError` when no sentence has an entity.
        Returns ``self``.
        """
        self.model_fingerprint = str(model.fingerprint)
        self.data_fingerprint = data_fingerprint(sentences)
        parts = (self.model_fingerprint, self.data_fingerprint, self.settings.result_key(), STATE_FORMAT_VERSION)
        trained_here = False

        def train() -> bytes:
            nonlocal trained_here
            trained_here = True
            self._train(model, sentences)
            return self._state_bytes()

        if self.cache is None:
            train()
            return self

        state = self.cache.get_or_compute(CACHE_NAMESPACE, parts, train)
        if trained_here:
            return self
        try:
            self._load_state_bytes(state)
        except (NerRobustError, RuntimeError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as error:
            logger.warning("cached disentangler is unreadable (%s); training it again", error)
            self.cache.set(make_key(CACHE_NAMESPACE, *parts), train())
            return self
        self.loaded_from_cache = True
        logger.info(
            "disentangler loaded from cache (trained in %.1f s on %d entity words)",
            self.training_seconds,
            self.training_pairs,
        )
        return self

    def _train(self, model: GradientNERModel, sentences: Sequence[Sentence]) -> None:
        settings = self.settings
        started = time.perf_counter()
        pairs = collect_training_pairs(model, sentences, settings.feature_batch_size)
        if pairs.entities.shape[0] == 0:
            raise ConfigError(
                f"the disentangler found no gold entity word in {len(sentences)} sentences; pass a corpus "
                "with entity tags or use the selector ig-raw"
            )
        # E and C are standardised apart: a pooled C varies far less than one word, and on a shared scale
        # MSE(C, Ĉ) would be too small for the adversarial term to matter.
        self._entity_scale = Standardiser.fit(pairs.entities)
        self._context_scale = Standardiser.fit(pairs.contexts)
        entities = self._entity_scale.apply(pairs.entities)
        contexts = self._context_scale.apply(pairs.contexts)
        self.training_pairs = entities.shape[0]

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            networks = DisentanglerNetworks(entities.shape[1], settings.hidden_sizes)
        autoencoder_parameters = [*networks.encoder.parameters(), *networks.decoder.parameters()]
        autoencoder_optimizer = torch.optim.SGD(
            autoencoder_parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        discriminator_optimizer = torch.optim.SGD(
            networks.discriminator.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        generator = torch.Generator().manual_seed(settings.seed)
        mse = nn.functional.mse_loss
        self.history = TrainingHistory()

        for epoch in range(settings.epochs):
            order = torch.randperm(entities.shape[0], generator=generator)
            sums = {"reconstruction": 0.0, "adversarial": 0.0, "discriminator": 0.0}
            batches = 0
            for start in range(0, len(order), settings.batch_size):
                index = order[start : start + settings.batch_size]
                entity_batch, context_batch = entities[index], contexts[index]

                # Alternation: the discriminator takes its steps on a frozen E', then the autoencoder takes
                # one step against the updated discriminator, whose weights it does not change.
                for _ in range(settings.discriminator_steps):
                    with torch.no_grad():
                        codes = networks.encode(entity_batch, context_batch)
                    discriminator_loss = mse(networks.discriminator(codes), context_batch)
                    discriminator_optimizer.zero_grad()
                    discriminator_loss.backward()
                    discriminator_optimizer.step()

                codes = networks.encode(entity_batch, context_batch)
                reconstruction_loss = mse(networks.decode(codes, context_batch), entity_batch)
                adversarial_loss = mse(networks.discriminator(codes), context_batch)
                autoencoder_loss = reconstruction_loss - settings.beta * adversarial_loss
                autoencoder_optimizer.zero_grad()
                autoencoder_loss.backward()
                autoencoder_optimizer.step()

                sums["reconstruction"] += reconstruction_loss.item()
                sums["adversarial"] += adversarial_loss.item()
                sums["discriminator"] += discriminator_loss.item()
                batches += 1

            for name, total in sums.items():
                getattr(self.history, name).append(total / batches)
            logger.info(
                "disentangler epoch %d/%d: reconstruction %.4f, adversarial %.4f, discriminator %.4f",
                epoch + 1,
                settings.epochs,
                self.history.reconstruction[-1],
                self.history.adversarial[-1],
                self.history.discriminator[-1],
            )

        self._networks = networks.eval().requires_grad_(False)
        self.training_seconds = time.perf_counter() - started
        logger.info(
            "disentangler trained in %.1f s on %d entity words from %d sentences",
            self.training_seconds,
            self.training_pairs,
            len(sentences),
        )

    def _require_fitted(self) -> tuple[DisentanglerNetworks, Standardiser, Standardiser]:
        if self._networks is None or self._entity_scale is None or self._context_scale is None:
            raise NerRobustError("the disentangler is not trained; call fit(model, sentences) first")
        return self._networks, self._entity_scale, self._context_scale

    def encode(self, entities: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        """Return the entity codes E' ``[N, code]`` for raw entity features and pooled contexts ``[N, D]``."""
        networks, entity_scale, context_scale = self._require_fitted()
        with torch.no_grad():
            return networks.encode(entity_scale.apply(entities.float()), context_scale.apply(contexts.float()))

    def transform(self, values: torch.Tensor, mask: torch.Tensor, entity_mask: torch.Tensor) -> torch.Tensor:
        """Return ``values`` ``[B, W, D]`` with Ê in place of E where ``entity_mask & mask`` is true.

        Context words and padding keep their values exactly. The result is differentiable with respect to
        ``values`` and has its dtype and device; the disentangler's own weights take no gradient.
        """
        networks, entity_scale, context_scale = self._require_fitted()
        if values.shape[-1] != entity_scale.mean.shape[0]:
            raise NerRobustError(
                f"word features have width {values.shape[-1]} but the disentangler was trained on width "
                f"{entity_scale.mean.shape[0]}; fit it on the same model"
            )
        mask = mask.to(values.device).bool()
        entity_mask = entity_mask.to(values.device).bool() & mask
        if not bool(entity_mask.any()):
            return values

        networks.to(values.device)
        entities = entity_scale.apply(values.float())
        contexts = context_scale.apply(pooled_context(values.float(), mask, entity_mask))
        contexts = contexts.unsqueeze(1).expand_as(entities)
        rebuilt = entity_scale.invert(networks.decode(networks.encode(entities, contexts), contexts))
        return torch.where(entity_mask.unsqueeze(-1), rebuilt.to(values.dtype), values)

    def _state_bytes(self) -> bytes:
        networks, entity_scale, context_scale = self._require_fitted()
        buffer = io.BytesIO()
        torch.save(
            {
                "format": STATE_FORMAT_VERSION,
                "networks": networks.state_dict(),
                "entity_scale": [entity_scale.mean, entity_scale.std],
                "context_scale": [context_scale.mean, context_scale.std],
                "history": asdict(self.history),
                "training_seconds": self.training_seconds,
                "training_pairs": self.training_pairs,
            },
            buffer,
        )
        return buffer.getvalue()

    def _load_state_bytes(self, data: bytes) -> None:
        state = torch.load(io.BytesIO(data), weights_only=True)
        if state.get("format") != STATE_FORMAT_VERSION:
            raise NerRobustError(
                f"cached disentangler has format {state.get('format')!r}, expected {STATE_FORMAT_VERSION}; "
                "delete the cache directory to retrain it"
            )
        self._entity_scale = Standardiser(*state["entity_scale"])
        self._context_scale = Standardiser(*state["context_scale"])
        networks = DisentanglerNetworks(self._entity_scale.mean.shape[0], self.settings.hidden_sizes)
        networks.load_state_dict(state["networks"])
        self._networks = networks.eval().requires_grad_(False)
        self.history = TrainingHistory(**state["history"])
        self.training_seconds = float(state["training_seconds"])
        self.training_pairs = int(state["training_pairs"])


def context_recovery_error(
    inputs: torch.Tensor, contexts: torch.Tensor, settings: DisentanglerSettings | None = None
) -> float:
    """Train a fresh discriminator to recover ``contexts`` ``[N, D]`` from ``inputs`` ``[N, d]`` and return its
    final MSE over all rows.

    The discriminator has the shape, optimiser, epochs, batch size and seed of the disentangler's own
    (``settings``, default ``DisentanglerSettings()``). Both tensors are standardised per dimension first,
    so 1.0 means no better than predicting the mean context. Comparing E with E' from
    :meth:`Disentangler.encode` shows how much context the disentangler removed from the view of such a
    discriminator. A stronger probe may recover more.
    """
    settings = settings or DisentanglerSettings()
    inputs = Standardiser.fit(inputs.detach().float()).apply(inputs.detach().float())
    contexts = Standardiser.fit(contexts.detach().float()).apply(contexts.detach().float())
    inner = list(reversed(settings.hidden_sizes[:-1]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        discriminator = _mlp([inputs.shape[1], *inner, contexts.shape[1]], None)
    optimizer = torch.optim.SGD(
        discriminator.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    generator = torch.Generator().manual_seed(settings.seed)
    for _ in range(settings.epochs):
        order = torch.randperm(inputs.shape[0], generator=generator)
        for start in range(0, len(order), settings.batch_size):
            index = order[start : start + settings.batch_size]
            loss = nn.functional.mse_loss(discriminator(inputs[index]), contexts[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return float(nn.functional.mse_loss(discriminator(inputs), contexts))
