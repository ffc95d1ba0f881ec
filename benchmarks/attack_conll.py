"""Benchmark the attack on a labelled file: robustness figures, queries and seconds per attacked sentence.

Runs the engine for every selector, K and seed given, in that nesting order, and prints one Markdown row
per run. Every run of one invocation shares the cache directory, which starts empty unless
``--keep-cache`` is given, so only the first run is cold. With ``--warm`` each run is repeated on the
cache it just filled. When several seeds are given, a second table averages each selector and K over
them (population standard deviation in brackets). The JSON summaries land beside ``--out``.

    python benchmarks/attack_conll.py --model benchmarks/out/conll-minilm \\
        --data ../shared/data/conll2003/test.txt --k 3 --sample 500 --seeds 0 --warm

    python benchmarks/attack_conll.py --model benchmarks/out/conll-minilm \\
        --data ../shared/data/conll2003/test.txt --selectors ig ig-raw --k 1 3 --sample 500 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

COLUMNS = (
    "run", "selector", "K", "seed", "sentences", "attacked", "skipped", "errored", "original F1",
    "F1 under attack", "success rate", "modification", "similarity", "avg queries", "base rate",
    "selected context share", "s per attacked sentence", "wall s",
)
AVERAGED = (
    ("original_f1", "original F1"),
    ("f1_under_attack", "F1 under attack"),
    ("attack_success_rate", "success rate"),
    ("modification_rate", "modification"),
    ("similarity", "similarity"),
    ("avg_queries", "avg queries"),
    ("context_base_rate", "base rate"),
    ("selected_context_share", "selected context share"),
)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory or module:attr")
    parser.add_argument("--data", required=True, help="labelled file to attack")
    parser.add_argument("--reference", default=None, help="reference corpus for entity candidates")
    parser.add_argument("--k", type=int, nargs="+", default=[3], help="words to attack (default 3)")
    parser.add_argument("--sample", type=int, default=100, help="sentences drawn per seed (default 100)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    parser.add_argument("--selectors", nargs="+", default=["ig"], help="selectors (default ig)")
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--infill", default="local-lm")
    parser.add_argument("--llm-url", default=None, help="chat endpoint for --infill=llm-http")
    parser.add_argument("--llm-model", default=None, help="model name sent to --llm-url")
    parser.add_argument("--min-similarity", type=float, default=0.6)
    parser.add_argument("--cache-dir", default="benchmarks/out/cache-bench")
    parser.add_argument("--keep-cache", action="store_true", help="start from the existing cache directory")
    parser.add_argument("--warm", action="store_true", help="repeat each run on the cache it filled")
    parser.add_argument("--out", default="benchmarks/out/attack", help="prefix of the JSON summaries")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)

    import torch

    from pytest_nerrobust.attack import run_attack
    from pytest_nerrobust.config import AttackConfig
    from pytest_nerrobust.metrics import summarize

    torch.set_num_threads(args.threads)
    if not args.keep_cache:
        shutil.rmtree(args.cache_dir, ignore_errors=True)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}")
    print(_row(COLUMNS))
    print(_row(["---"] * len(COLUMNS)))
    by_setting: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for selector in args.selectors:
        for k in args.k:
            for seed in args.seeds:
                config = AttackConfig(
                    model=args.model, data=args.data, reference_data=args.reference, k=k, sample=args.sample,
                    seed=seed, selector=selector, ig_steps=args.ig_steps, infill=args.infill,
                    llm_url=args.llm_url, llm_model=args.llm_model, min_similarity=args.min_similarity,
                    cache_dir=args.cache_dir,
                )
                for label in ("cold", "warm") if args.warm else ("first",):
                    started = time.perf_counter()
                    run = run_attack(config)
                    wall = time.perf_counter() - started
                    summary = _summary(run, summarize(run), wall)
                    if label != "warm":
                        by_setting[(selector, k)].append(summary)
                    print(_row(_cells(label, selector, k, seed, summary)), flush=True)
                    out = Path(f"{args.out}-{selector}-k{k}-s{seed}-{label}.json")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    if len(args.seeds) > 1:
        _print_means(by_setting, args.seeds)


def _summary(run: Any, metrics: dict[str, Any], wall: float) -> dict[str, Any]:
    attacked = metrics["successful"] + metrics["failed"]
    return {
        "metrics": dict(metrics),
        "timings": run.timings,
        "seconds": run.seconds,
        "wall_seconds": wall,
        "seconds_per_attacked_sentence": run.seconds / attacked if attacked else None,
        "selection": run.selection_stats,
        "cache": run.cache_stats,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "errors": [result.error for result in run.results if result.error][:20],
    }


def _value(summary: dict[str, Any], key: str) -> float | None:
    if key in summary["metrics"]:
        return summary["metrics"][key]
    return (summary["selection"] or {}).get(key)


def _cells(label: str, selector: str, k: int, seed: int, summary: dict[str, Any]) -> list[str]:
    metrics = summary["metrics"]
    return [
        label, selector, str(k), str(seed), str(metrics["sentences"]),
        str(metrics["successful"] + metrics["failed"]), str(metrics["skipped"]), str(metrics["errored"]),
        *(_f(_value(summary, key), 2 if key == "avg_queries" else 4) for key, _ in AVERAGED),
        _f(summary["seconds_per_attacked_sentence"], 3), f"{summary['wall_seconds']:.1f}",
    ]


def _print_means(by_setting: dict[tuple[str, int], list[dict[str, Any]]], seeds: list[int]) -> None:
    header = ["selector", "K", "seeds", *(title for _, title in AVERAGED)]
    print()
    print(f"Mean over seeds {', '.join(map(str, seeds))} (population standard deviation)")
    print()
    print(_row(header))
    print(_row(["---"] * len(header)))
    for (selector, k), summaries in by_setting.items():
        cells = [selector, str(k), str(len(summaries))]
        for key, _ in AVERAGED:
            values = [value for value in (_value(summary, key) for summary in summaries) if value is not None]
            if not values:
                cells.append("n/a")
                continue
            digits = 2 if key == "avg_queries" else 4
            cells.append(f"{statistics.fmean(values):.{digits}f} ({statistics.pstdev(values):.{digits}f})")
        print(_row(cells), flush=True)


def _row(cells: Any) -> str:
    return "| " + " | ".join(cells) + " |"


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
