"""Word selectors besides Integrated Gradients, and the factory behind ``--attack-selector``.

Every selector returns one score per word of each sentence (higher means more important), so padding and
special tokens never receive a score. Scores depend only on the sentence, the model and the seed, never on
which other sentences share the batch. ``passes`` counts sentence evaluations: one sentence variant sent
through the model (by ``predict`` or ``forward_features``) counts as one pass.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from pytest_nerrobust.errors import ConfigError, NerRobustError

if TYPE_CHECKING:
    import torch

    from pytest_nerrobust.attribution.base import Selector
    from pytest_nerrobust.attribution.disentangle import Disentangler
    from pytest_nerrobust.cache import Cache
    from pytest_nerrobust.corpus import Sentence
    from pytest_nerrobust.models.base import NERModel

logger = logging.getLogger(__name__)

SELECTOR_NAMES = ("ig", "ig-raw", "random", "tfidf", "kernel-shap", "occlusion")
MASK_MODES = ("auto", "token", "zero")
DEFAULT_MASK_TOKEN = "[UNK]"


def sentence_seed(seed: int, words: Sequence[str]) -> int:
    """Derive a per-sentence seed from ``seed`` and the words, so a score never depends on batch order."""
    digest = hashlib.sha256(f"{seed}\x00{chr(31).join(words)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def _check_predictions(sentences: Sequence[Sentence], predictions: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(sentences):
        raise NerRobustError(
            f"got {len(predictions)} predictions for {len(sentences)} sentences; pass the clean prediction of "
            "every sentence"
        )
    for sentence, tags in zip(sentences, predictions):
        if len(tags) != len(sentence.words):
            raise NerRobustError(
                f"sentence at {sentence.origin or '<memory>'} has {len(sentence.words)} words but its "
                f"prediction has {len(tags)} tags; pass one predicted tag per word"
            )


class RandomSelector:
    """Score words uniformly at random, seeded per sentence.

    Args:
        seed: base seed (default 0).
    """

    def __init__(self, seed: int = 0) -> None:
        self.name = "random"
        self.seed = seed
        self.passes = 0

    def fingerprint(self) -> str:
        """Identify the selector and its seed."""
        return f"random:seed={self.seed}"

    def scores(
        self, model: NERModel, sentences: Sequence[Sentence], predictions: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Return uniform random scores in [0, 1), one per word; the model is not used."""
        _check_predictions(sentences, predictions)
        return [
            np.random.default_rng(sentence_seed(self.seed, sentence.words)).random(len(sentence.words))
            for sentence in sentences
        ]


class TfidfSelector:
    """Score each word by its tf-idf in its sentence, with document frequencies from a reference corpus.

    ``tf`` is the word's count in the sentence divided by the sentence length. ``idf`` is the smoothed
    ``ln((1 + N) / (1 + df)) + 1`` over the ``N`` reference sentences (the scikit-learn default), so a word
    that never occurs in the reference gets the largest idf. Each sentence is one document.

    Args:
        reference_sentences: the corpus that fixes document frequencies.
        lowercase: compare words case-insensitively (default True).
    """

    def __init__(self, reference_sentences: Sequence[Sentence], lowercase: bool = True) -> None:
        if not reference_sentences:
            raise ConfigError(
                "selector tfidf needs a reference corpus but got no sentences; pass the reference sentences "
                "(the attacked corpus by default)"
            )
        self.name = "tfidf"
        self.lowercase = lowercase
        self.passes = 0
        self.documents = len(reference_sentences)
        self.document_frequency: Counter[str] = Counter()
        digest = hashlib.sha256()
        for sentence in reference_sentences:
            self.document_frequency.update({self._normalise(word) for word in sentence.words})
            digest.update("\x1f".join(sentence.words).encode("utf-8") + b"\n")
        self._reference_digest = digest.hexdigest()[:16]

    def _normalise(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    def idf(self, word: str) -> float:
        """Return the smoothed inverse document frequency of ``word`` in the reference corpus."""
        frequency = self.document_frequency.get(self._normalise(word), 0)
        return math.log((1 + self.documents) / (1 + frequency)) + 1.0

    def fingerprint(self) -> str:
        """Identify the selector by its reference corpus and casing."""
        return f"tfidf:lowercase={self.lowercase}:reference={self._reference_digest}"

    def scores(
        self, model: NERModel, sentences: Sequence[Sentence], predictions: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Return the tf-idf of each word in its sentence; the model is not used."""
        _check_predictions(sentences, predictions)
        output = []
        for sentence in sentences:
            words = [self._normalise(word) for word in sentence.words]
            counts = Counter(words)
            length = max(len(words), 1)
            output.append(np.array([counts[word] / length * self.idf(word) for word in words], dtype=np.float64))
        return output


class _KeptTagsTarget:
    """The fraction of a sentence's clean tags kept under word-presence masks ``[S, W]`` (1 keeps a word).

    In ``token`` mode a masked word is replaced by ``mask_token``, the variants go through ``model.predict``
    and the clean tags are the given predictions. In ``zero`` mode a masked word's features are set to zero
    and the variants go through ``model.forward_features``. There the clean tags are the argmax over the
    clean features, so the full presence mask scores exactly 1 even for a model that decodes with a CRF.
    """

    def __init__(
        self,
        selector: _PerturbationSelector,
        model: Any,
        words: Sequence[str],
        clean_tags: Sequence[str],
        mode: str,
        mask_token: str,
    ) -> None:
        self.selector = selector
        self.model = model
        self.words = list(words)
        self.mode = mode
        self.mask_token = mask_token
        self._features: dict[int, Any] = {}
        if mode == "token":
            self.clean = list(clean_tags)
        else:
            import torch

            features = self._features_for(1)
            with torch.no_grad():
                log_probs = model.forward_features(features.values, features)
            selector.passes += 1
            self.clean_index = log_probs.argmax(dim=-1)[0]
            self.visible = features.mask[0].bool()

    def _features_for(self, rows: int) -> Any:
        if rows not in self._features:
            self._features[rows] = self.model.word_features([self.words] * rows)
        return self._features[rows]

    def __call__(self, presence: torch.Tensor) -> torch.Tensor:
        import torch

        presence = presence.detach().round().bool()
        rows = presence.shape[0]
        self.selector.passes += rows
        if self.mode == "token":
            variants = [
                [word if keep else self.mask_token for word, keep in zip(self.words, row.tolist())] for row in presence
            ]
            predicted = self.model.predict(variants)
            kept_fractions = [
                sum(tag == clean_tag for tag, clean_tag in zip(tags, self.clean)) / max(len(self.clean), 1)
                for tags in predicted
            ]
            return torch.tensor(kept_fractions, dtype=torch.float64)

        features = self._features_for(rows)
        width = features.values.shape[1]
        keep = torch.zeros(rows, width, dtype=features.values.dtype)
        keep[:, : presence.shape[1]] = presence[:, :width].to(features.values.dtype)
        with torch.no_grad():
            log_probs = self.model.forward_features(features.values * keep.unsqueeze(-1), features)
        same = (log_probs.argmax(dim=-1) == self.clean_index.unsqueeze(0)) & self.visible.unsqueeze(0)
        return same.sum(dim=1).to(torch.float64) / max(int(self.visible.sum()), 1)


class _PerturbationSelector:
    """Shared code of the selectors that perturb word presence and read the kept-tags fraction."""

    name = ""

    def __init__(self, mask_mode: str, mask_token: str | None, batch_size: int, seed: int) -> None:
        if mask_mode not in MASK_MODES:
            raise ConfigError(
                f"selector {self.name} mask mode {mask_mode!r} is invalid; accepted modes are {', '.join(MASK_MODES)}"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"selector {self.name} batch size {batch_size!r} is invalid; give a positive integer")
        self.mask_mode = mask_mode
        self.mask_token = mask_token
        self.batch_size = batch_size
        self.seed = seed
        self.passes = 0

    def _resolve_mode(self, model: NERModel) -> str:
        from pytest_nerrobust.models.base import GradientNERModel

        has_features = isinstance(model, GradientNERModel)
        if self.mask_mode == "zero" and not has_features:
            raise ConfigError(
                f"selector {self.name} with mask mode 'zero' needs a model with word features "
                f"({type(model).__name__} has none); use mask mode 'token'"
            )
        if self.mask_mode == "auto":
            return "zero" if has_features else "token"
        return self.mask_mode

    def _resolve_mask_token(self, model: NERModel) -> str:
        if self.mask_token:
            return self.mask_token
        tokenizer = getattr(model, "tokenizer", None)
        return str(getattr(tokenizer, "unk_token", None) or DEFAULT_MASK_TOKEN)

    def _settings(self) -> str:
        return f"mask={self.mask_mode}:token={self.mask_token or ''}:seed={self.seed}"

    def scores(
        self, model: NERModel, sentences: Sequence[Sentence], predictions: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Return one attribution per word of each sentence, one sentence at a time."""
        import torch

        _check_predictions(sentences, predictions)
        mode = self._resolve_mode(model)
        mask_token = self._resolve_mask_token(model)
        output = []
        for sentence, tags in zip(sentences, predictions):
            count = len(sentence.words)
            if count == 0:
                output.append(np.zeros(0))
                continue
            target = _KeptTagsTarget(self, model, sentence.words, tags, mode, mask_token)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sentence_seed(self.seed, sentence.words))
                attribution = self._attribute(target, count)
            output.append(attribution.detach().reshape(-1)[:count].numpy().astype(np.float64))
        return output

    def _attribute(self, target: Callable[[torch.Tensor], torch.Tensor], count: int) -> torch.Tensor:
        raise NotImplementedError


class KernelShapSelector(_PerturbationSelector):
    """Score words by Kernel SHAP (captum) over word-presence masks.

    The explained value is the fraction of the clean predicted tags kept. A masked word is replaced by the
    model tokenizer's unknown token (``token`` mode, any model) or gets zero features (``zero`` mode,
    gradient models only). ``auto`` picks ``zero`` when the model has word features.

    Args:
        n_samples: coalitions sampled per sentence (default 200).
        seed: seed of the coalition sampling, mixed with each sentence's words (default 0).
        mask_mode: ``auto``, ``token`` or ``zero`` (default ``auto``).
        mask_token: replacement word in ``token`` mode (default: the tokenizer's unknown token, else
            ``[UNK]``).
        batch_size: sentence variants per model call (default 64).
    """

    name = "kernel-shap"

    def __init__(
        self,
        n_samples: int = 200,
        seed: int = 0,
        mask_mode: str = "auto",
        mask_token: str | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(mask_mode, mask_token, batch_size, seed)
        if not isinstance(n_samples, int) or n_samples < 2:
            raise ConfigError(f"selector kernel-shap n_samples {n_samples!r} is invalid; give an integer of 2 or more")
        self.n_samples = n_samples

    def fingerprint(self) -> str:
        """Identify the selector and its settings."""
        return f"kernel-shap:samples={self.n_samples}:{self._settings()}"

    def _attribute(self, target: Callable[[torch.Tensor], torch.Tensor], count: int) -> torch.Tensor:
        import torch
        from captum.attr import KernelShap

        if count == 1:
            # captum cannot sample coalitions of a single feature; its Shapley value is f(kept) - f(masked).
            with_word, without_word = target(torch.tensor([[1.0], [0.0]], dtype=torch.float64))
            return (with_word - without_word).reshape(1, 1)
        inputs = torch.ones(1, count, dtype=torch.float64)
        return KernelShap(target).attribute(
            inputs,
            baselines=0.0,
            feature_mask=torch.arange(count).unsqueeze(0),
            n_samples=self.n_samples,
            perturbations_per_eval=self.batch_size,
        )


class OcclusionSelector(_PerturbationSelector):
    """Score each word by how many clean tags the model loses when that word alone is masked.

    Uses captum's FeatureAblation with one feature per word: score = 1 - fraction of clean tags kept. It needs
    only ``predict`` in ``token`` mode, so it is the selector for models without gradients.

    Args:
        seed: accepted for a uniform interface; occlusion draws no random numbers (default 0).
        mask_mode: ``auto``, ``token`` or ``zero`` (default ``token``).
        mask_token: replacement word in ``token`` mode (default: the tokenizer's unknown token, else
            ``[UNK]``).
        batch_size: sentence variants per model call (default 64).
    """

    name = "occlusion"

    def __init__(
        self, seed: int = 0, mask_mode: str = "token", mask_token: str | None = None, batch_size: int = 64
    ) -> None:
        super().__init__(mask_mode, mask_token, batch_size, seed)

    def fingerprint(self) -> str:
        """Identify the selector and its settings."""
        return f"occlusion:{self._settings()}"

    def _attribute(self, target: Callable[[torch.Tensor], torch.Tensor], count: int) -> torch.Tensor:
        import torch
        from captum.attr import FeatureAblation

        inputs = torch.ones(1, count, dtype=torch.float64)
        return FeatureAblation(target).attribute(
            inputs,
            baselines=0.0,
            feature_mask=torch.arange(count).unsqueeze(0),
            perturbations_per_eval=self.batch_size,
        )


def _setting(config: Any, key: str, default: Any) -> Any:
    """Read ``key`` from a mapping or an object's attribute; None or absent gives ``default``."""
    if config is None:
        return default
    value = config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)
    return default if value is None else value


def build_selector(
    name: str,
    *,
    model: NERModel,
    config: Any = None,
    cache: Cache | None = None,
    reference_sentences: Sequence[Sentence] = (),
) -> Selector:
    """Build the selector named by ``--attack-selector``.

    ``config`` is a mapping or an object with these attributes, and a missing or None value takes the
    default: ``seed`` (0), ``ig_steps`` (16), ``ig_max_steps`` (64), ``ig_batch_size`` (16),
    ``kernel_shap_samples`` (200), ``selector_mask_mode`` (``auto`` for kernel-shap, ``token`` for occlusion),
    ``selector_batch_size`` (64) and ``disentangler``. The last is a :class:`DisentanglerSettings` or a
    mapping of its fields. ``ig`` trains the disentangler on ``reference_sentences`` by gold tags, or loads it from
    ``cache``. ``tfidf`` takes its document frequencies from ``reference_sentences``.

    Raises :class:`ConfigError` for an unknown name, and for ``ig`` or ``ig-raw`` on a model without word
    features.
    """
    seed = int(_setting(config, "seed", 0))
    batch_size = int(_setting(config, "selector_batch_size", 64))

    if name == "random":
        return RandomSelector(seed=seed)
    if name == "tfidf":
        return TfidfSelector(reference_sentences)
    if name == "kernel-shap":
        return KernelShapSelector(
            n_samples=int(_setting(config, "kernel_shap_samples", 200)),
            seed=seed,
            mask_mode=str(_setting(config, "selector_mask_mode", "auto")),
            batch_size=batch_size,
        )
    if name == "occlusion":
        return OcclusionSelector(
            seed=seed, mask_mode=str(_setting(config, "selector_mask_mode", "token")), batch_size=batch_size
        )
    if name in ("ig", "ig-raw"):
        return _build_integrated_gradients(name, model, config, cache, reference_sentences)
    raise ConfigError(
        f"unknown selector {name!r}; accepted selectors are {', '.join(SELECTOR_NAMES)}"
    )


def _build_integrated_gradients(
    name: str, model: NERModel, config: Any, cache: Cache | None, reference_sentences: Sequence[Sentence]
) -> Selector:
    from pytest_nerrobust.attribution.ig import IntegratedGradientsSelector
    from pytest_nerrobust.models.base import GradientNERModel

    if not isinstance(model, GradientNERModel):
        raise ConfigError(
            f"selector {name} needs a model with word features and gradients, and {type(model).__name__} has "
            "none; pass --attack-selector=occlusion, kernel-shap, random or tfidf, which only query the model"
        )
    steps = int(_setting(config, "ig_steps", 16))
    max_steps = max(int(_setting(config, "ig_max_steps", 64)), steps)
    batch_size = int(_setting(config, "ig_batch_size", 16))
    if name == "ig-raw":
        selector = IntegratedGradientsSelector(steps=steps, max_steps=max_steps, batch_size=batch_size, name="ig-raw")
        return cast("Selector", selector)

    disentangler = build_disentangler(model, config=config, cache=cache, reference_sentences=reference_sentences)
    selector = IntegratedGradientsSelector(
        steps=steps,
        max_steps=max_steps,
        batch_size=batch_size,
        transform=disentangler.transform,
        name="ig",
        transform_fingerprint=disentangler.fingerprint(),
    )
    return cast("Selector", selector)


def build_disentangler(
    model: NERModel,
    *,
    config: Any = None,
    cache: Cache | None = None,
    reference_sentences: Sequence[Sentence] = (),
) -> Disentangler:
    """Fit the disentangler of selector ``ig`` on ``reference_sentences``, or load it from ``cache``.

    ``config`` may carry ``disentangler``: a :class:`DisentanglerSettings` or a mapping of its fields.
    """
    from pytest_nerrobust.attribution.disentangle import Disentangler, DisentanglerSettings

    settings = _setting(config, "disentangler", None)
    if isinstance(settings, Mapping):
        settings = DisentanglerSettings.from_mapping(settings)
    if not reference_sentences:
        raise ConfigError(
            "selector ig trains its disentangler on the reference corpus but got no sentences; pass the "
            "reference sentences or use --attack-selector=ig-raw"
        )
    return Disentangler(settings, cache=cache).fit(model, reference_sentences)  # type: ignore[arg-type]
