"""Measure which words each selector picks: the context share at K=1 and K=3 against the base rate.

For a trained model and a CoNLL file, the script draws ``--sentences`` sentences per seed. It keeps those the
engine would attack: at least one gold entity, and a clean prediction that gets every gold entity right.
It scores them with each selector and prints two Markdown tables:

* per selector: the share of context words among the top-K words at K=1 and K=3, the scoring time per
  sentence and the model passes per sentence, averaged over the seeds (population standard deviation in
  brackets), with the base rate of the same sentences;
* per seed: the disentangler's training time, its final losses, and the context recovery error of a fresh
  discriminator on E and on E' (1.0 means no better than the mean context).

The disentangler and the tf-idf selector are fitted on the whole data file, as the engine does when no
reference corpus is given. Tune on ``valid.txt``, never on the test split.

Usage::

    python benchmarks/selection.py --model benchmarks/out/conll-minilm \\
        --data ../shared/data/conll2003/valid.txt [--sentences 500] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_MODEL = Path(__file__).resolve().parent / "out" / "conll-minilm"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003" / "valid.txt"
SELECTORS = ("ig", "ig-raw", "random", "tfidf", "kernel-shap", "occlusion")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="trained token-classification directory")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CoNLL file (default CoNLL-2003 valid.txt)")
    parser.add_argument("--sentences", type=int, default=500, help="sentences drawn per seed (default 500)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to average (default 0 1 2)")
    parser.add_argument("--selectors", nargs="+", default=list(SELECTORS), choices=SELECTORS,
                        help="selectors to measure (default all)")
    parser.add_argument("--ig-steps", type=int, default=16, help="integration steps of ig and ig-raw (default 16)")
    parser.add_argument("--kernel-shap-samples", type=int, default=200,
                        help="coalitions sampled per sentence by kernel-shap (default 200)")
    parser.add_argument("--ae-epochs", type=int, default=25, help="disentangler epochs (default 25)")
    parser.add_argument("--ae-lr", type=float, default=1e-3, help="disentangler SGD learning rate (default 1e-3)")
    parser.add_argument("--ae-beta", type=float, default=0.5, help="weight of the adversarial term (default 0.5)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--verbose", action="store_true", help="log the disentangler's loss per epoch")
    return parser.parse_args(argv)


def attackable(sentences: Sequence[Any], predictions: Sequence[Sequence[str]]) -> list[int]:
    """Return the indices of sentences the engine attacks: a gold entity and no clean misclassification."""
    from pytest_nerrobust.attack import misclassified

    return [
        index
        for index, (sentence, predicted) in enumerate(zip(sentences, predictions))
        if sentence.spans and not misclassified(sentence.tags, predicted)
    ]


def format_mean(values: Sequence[float], digits: int = 3, percent: bool = False) -> str:
    """Format the mean of ``values`` with the population standard deviation in brackets."""
    scale = 100.0 if percent else 1.0
    mean = statistics.fmean(values) * scale
    spread = statistics.pstdev(values) * scale if len(values) > 1 else 0.0
    unit = "%" if percent else ""
    return f"{mean:.{digits}f}{unit} ({spread:.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the tables; return the exit status."""
    arguments = parse_arguments(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO if arguments.verbose else logging.WARNING, format="%(message)s")

    import torch

    from pytest_nerrobust.attack import sample_indices
    from pytest_nerrobust.attribution.disentangle import collect_training_pairs, context_recovery_error
    from pytest_nerrobust.attribution.ig import IntegratedGradientsSelector
    from pytest_nerrobust.attribution.selectors import build_disentangler, build_selector
    from pytest_nerrobust.attribution.stats import context_base_rate, selected_context_share
    from pytest_nerrobust.corpus import read_corpus
    from pytest_nerrobust.models.loading import load_model

    torch.set_num_threads(arguments.threads)
    for path, kind in ((arguments.model, "model directory"), (arguments.data, "data file")):
        if not path.exists():
            print(f"error: {kind} {path} not found; pass --model and --data", file=sys.stderr)
            return 2

    model = load_model(str(arguments.model))
    reference = read_corpus(arguments.data).sentences
    print(f"model {arguments.model}, data {arguments.data} ({len(reference)} sentences), "
          f"{arguments.sentences} sentences per seed, seeds {arguments.seeds}, torch threads {arguments.threads}\n")

    shares: dict[tuple[str, int], list[float]] = {}
    seconds: dict[str, list[float]] = {}
    passes: dict[str, list[float]] = {}
    base_rates: list[float] = []
    attacked_counts: list[int] = []
    disentangler_rows: list[str] = []

    for seed in arguments.seeds:
        indices = sample_indices(len(reference), arguments.sentences, seed)
        drawn = [reference[index] for index in indices]
        predictions = model.predict([list(sentence.words) for sentence in drawn])
        keep = attackable(drawn, predictions)
        sentences = [drawn[index] for index in keep]
        clean = [predictions[index] for index in keep]
        attacked_counts.append(len(sentences))
        base_rates.append(context_base_rate(sentences))

        config = {
            "seed": seed,
            "ig_steps": arguments.ig_steps,
            "kernel_shap_samples": arguments.kernel_shap_samples,
            "disentangler": {"epochs": arguments.ae_epochs, "learning_rate": arguments.ae_lr,
                             "beta": arguments.ae_beta, "seed": seed},
        }
        disentangler = None
        if "ig" in arguments.selectors:
            disentangler = build_disentangler(model, config=config, cache=None, reference_sentences=reference)
            pairs = collect_training_pairs(model, reference)
            codes = disentangler.encode(pairs.entities, pairs.contexts)
            history = disentangler.history
            disentangler_rows.append(
                f"| {seed} | {disentangler.training_pairs} | {disentangler.training_seconds:.1f} | "
                f"{history.reconstruction[0]:.3f} -> {history.reconstruction[-1]:.3f} | "
                f"{history.discriminator[-1]:.3f} | "
                f"{context_recovery_error(pairs.entities, pairs.contexts, disentangler.settings):.3f} | "
                f"{context_recovery_error(codes, pairs.contexts, disentangler.settings):.3f} |"
            )

        for name in arguments.selectors:
            if name == "ig" and disentangler is not None:
                selector: Any = IntegratedGradientsSelector(
                    steps=arguments.ig_steps, name="ig", transform=disentangler.transform,
                    transform_fingerprint=disentangler.fingerprint(),
                )
            else:
                selector = build_selector(name, model=model, config=config, cache=None, reference_sentences=reference)
            started = time.perf_counter()
            scores = selector.scores(model, sentences, clean)
            elapsed = time.perf_counter() - started
            seconds.setdefault(name, []).append(elapsed / max(len(sentences), 1))
            passes.setdefault(name, []).append(selector.passes / max(len(sentences), 1))
            for k in (1, 3):
                shares.setdefault((name, k), []).append(selected_context_share(sentences, scores, k))
            print(f"seed {seed}: {name} done in {elapsed:.1f} s", file=sys.stderr)

    print(f"Attacked sentences per seed: {attacked_counts}\n")
    print("| selector | context share K=1 | context share K=3 | seconds per sentence | passes per sentence |")
    print("|---|---|---|---|---|")
    print(f"| base rate | {format_mean(base_rates, 1, True)} | {format_mean(base_rates, 1, True)} | | |")
    for name in arguments.selectors:
        print(f"| {name} | {format_mean(shares[(name, 1)], 1, True)} | {format_mean(shares[(name, 3)], 1, True)} | "
              f"{format_mean(seconds[name], 3)} | {format_mean(passes[name], 1)} |")
    if disentangler_rows:
        print("\n| seed | entity words | training seconds | reconstruction loss | co-trained discriminator "
              "error on E' | fresh discriminator error on E | fresh discriminator error on E' |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(disentangler_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
