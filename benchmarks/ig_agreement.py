"""Compare cheap Integrated Gradients settings with a 50-step reference: top-K agreement and time.

For each setting, the share of sentences whose top-K word set equals the 50-step set, and seconds per
sentence. Sentences are the first ``--sample`` of the file that the model tags without error.

    python benchmarks/ig_agreement.py --model benchmarks/out/conll-minilm \
        --data ../shared/data/conll2003/valid.txt --sample 100
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from pytest_nerrobust.attack import misclassified
    from pytest_nerrobust.attribution.ig import IntegratedGradientsSelector
    from pytest_nerrobust.attribution.stats import top_k_positions
    from pytest_nerrobust.corpus import read_corpus
    from pytest_nerrobust.models.hf import HFTokenClassifier

    torch.set_num_threads(args.threads)
    model = HFTokenClassifier(args.model)
    sentences = [s for s in read_corpus(args.data).sentences if s.spans]
    predictions = model.predict([s.words for s in sentences[: args.sample * 3]])
    chosen = [(s, p) for s, p in zip(sentences, predictions) if not misclassified(s.tags, p)][: args.sample]
    chosen.sort(key=lambda pair: len(pair[0].words))
    batch_sentences = [s for s, _ in chosen]
    batch_predictions = [p for _, p in chosen]

    def run(selector: IntegratedGradientsSelector) -> tuple[list, float]:
        started = time.perf_counter()
        scores = selector.scores(model, batch_sentences, batch_predictions)
        return scores, (time.perf_counter() - started) / len(batch_sentences)

    reference, reference_seconds = run(IntegratedGradientsSelector(steps=50, max_steps=50))
    print("| setting | top-1 agreement | top-3 agreement | s per sentence | mean steps |")
    print("|---|---|---|---|---|")
    print(f"| 50 steps (reference) | 1.000 | 1.000 | {reference_seconds:.3f} | 50 |")
    settings = ((4, 4, 0.05), (8, 8, 0.05), (16, 16, 0.05), (8, 64, 0.05), (16, 64, 0.05), (16, 64, 0.02), (8, 64, 0.01))
    for steps, max_steps, tolerance in settings:
        selector = IntegratedGradientsSelector(steps=steps, max_steps=max_steps, tolerance=tolerance)
        scores, seconds = run(selector)
        agreement = {}
        for k in (1, 3):
            same = sum(
                set(top_k_positions(a, k)) == set(top_k_positions(b, k)) for a, b in zip(scores, reference)
            )
            agreement[k] = same / len(scores)
        mean_steps = sum(selector.step_counts) / len(selector.step_counts)
        label = f"{steps} steps" if steps == max_steps else f"{steps} steps, refined up to {max_steps} at gap {tolerance}"
        print(f"| {label} | {agreement[1]:.3f} | {agreement[3]:.3f} | {seconds:.3f} | {mean_steps:.1f} |", flush=True)


if __name__ == "__main__":
    main()
