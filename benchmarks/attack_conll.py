"""Benchmark the attack on a labelled file: robustness figures, queries and seconds per attacked sentence.

Runs the engine once with a cold cache (a fresh directory) and, with ``--warm``, a second time on the same
cache, then prints one Markdown row per run. The JSON reports land beside ``--out``.

    python benchmarks/attack_conll.py --model benchmarks/out/conll-minilm \
        --data ../shared/data/conll2003/test.txt --k 3 --sample 500 --seed 0 --warm
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--reference", default=None, help="reference corpus for entity candidates")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--selector", default="ig")
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--infill", default="local-lm")
    parser.add_argument("--min-similarity", type=float, default=0.6)
    parser.add_argument("--cache-dir", default="benchmarks/out/cache-bench")
    parser.add_argument("--keep-cache", action="store_true", help="start from the existing cache directory")
    parser.add_argument("--warm", action="store_true", help="run a second time on the warm cache")
    parser.add_argument("--out", default="benchmarks/out/attack")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from pytest_nerrobust.attack import run_attack
    from pytest_nerrobust.config import AttackConfig
    from pytest_nerrobust.metrics import summarize

    torch.set_num_threads(args.threads)
    if not args.keep_cache:
        shutil.rmtree(args.cache_dir, ignore_errors=True)
    config = AttackConfig(
        model=args.model,
        data=args.data,
        reference_data=args.reference,
        k=args.k,
        sample=args.sample,
        seed=args.seed,
        selector=args.selector,
        ig_steps=args.ig_steps,
        infill=args.infill,
        min_similarity=args.min_similarity,
        cache_dir=args.cache_dir,
    )
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}")
    print("| run | selector | K | sentences | attacked | skipped | errored | original F1 | F1 under attack | success rate | modification | similarity | avg queries | s per attacked sentence | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label in ("cold", "warm") if args.warm else ("cold",):
        started = time.perf_counter()
        run = run_attack(config)
        wall = time.perf_counter() - started
        metrics = summarize(run)
        attacked = metrics["successful"] + metrics["failed"]
        per_sentence = run.seconds / attacked if attacked else float("nan")
        print(
            f"| {label} | {args.selector} | {args.k} | {metrics['sentences']} | {attacked} | {metrics['skipped']} | "
            f"{metrics['errored']} | {_f(metrics['original_f1'])} | {_f(metrics['f1_under_attack'])} | "
            f"{_f(metrics['attack_success_rate'])} | {_f(metrics['modification_rate'])} | {_f(metrics['similarity'])} | "
            f"{_f(metrics['avg_queries'], 2)} | {per_sentence:.3f} | {wall:.1f} |",
            flush=True,
        )
        out = Path(f"{args.out}-{args.selector}-k{args.k}-s{args.seed}-{label}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = {
            "metrics": {key: value for key, value in metrics.items()},
            "timings": run.timings,
            "seconds": run.seconds,
            "seconds_per_attacked_sentence": per_sentence,
            "selection": run.selection_stats,
            "cache": run.cache_stats,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "errors": [result.error for result in run.results if result.error][:20],
        }
        out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")


def _f(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
