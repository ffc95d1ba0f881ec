"""Show LocalLMInfiller candidates for context words of CoNLL-2003 and time them cold and warm.

Quality: for each of the first ``--positions`` sentences with at least 6 words, the position is the
O-tagged word of letters nearest the middle of the sentence (never the first word).

Timing: ``--timing-positions`` such words, spread evenly over the first ``--timing-sentences`` sentences
that have enough of them, nearest the middle of each sentence. One ``candidates_batch`` call over them
runs on an empty result cache (cold, model already loaded), and a second call repeats it (warm). The
table reports wall and CPU seconds per position and the tokens the model read per position. A float32
matrix product measures what the CPUs delivered at the time, because on a shared machine the wall time
follows the load of other processes.

The converted SmolLM2 copy is kept in ``--model-cache-dir`` so that later runs skip the conversion.
Settings left unset keep the infiller's defaults, so the script also runs against older versions of
``LocalLMInfiller``.

    python benchmarks/infill_quality.py --data DATA/conll2003/test.txt --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def context_positions(sentence: Any) -> list[int]:
    """Return the O-tagged words of letters after the first word, nearest the middle first."""
    middle = len(sentence.words) / 2
    context = [
        index
        for index, (word, tag) in enumerate(zip(sentence.words, sentence.tags))
        if tag == "O" and word.isalpha() and index > 0
    ]
    return sorted(context, key=lambda index: (abs(index - middle), index))


def pick_positions(sentences: list[Any], count: int) -> list[tuple[list[str], int]]:
    """Pick one context position per sentence of at least 6 words, ``count`` in all."""
    requests: list[tuple[list[str], int]] = []
    for sentence in sentences:
        if len(requests) >= count:
            break
        if len(sentence.words) < 6:
            continue
        positions = context_positions(sentence)
        if positions:
            requests.append((list(sentence.words), positions[0]))
    return requests


def pick_timing_positions(sentences: list[Any], sentence_count: int,
                          count: int) -> list[tuple[list[str], int]]:
    """Spread ``count`` context positions evenly over the first ``sentence_count`` sentences that have
    enough of them, taking each sentence's positions nearest the middle."""
    requests: list[tuple[list[str], int]] = []
    used = 0
    for sentence in sentences:
        if used >= sentence_count:
            break
        quota = count // sentence_count + (1 if used < count % sentence_count else 0)
        positions = context_positions(sentence)
        if quota == 0 or len(positions) < quota:
            continue
        requests.extend((list(sentence.words), position) for position in sorted(positions[:quota]))
        used += 1
    return requests


def matmul_gflops(threads: int) -> float:
    """Measure float32 GFLOP/s of a [64, 576] x [576, 1536] product, the size of the model's MLP layers."""
    import torch

    torch.set_num_threads(threads)
    left, right = torch.randn(64, 576), torch.randn(1536, 576)
    torch.nn.functional.linear(left, right)
    repeats = 200
    started = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(left, right)
    return repeats * 2 * 64 * 576 * 1536 / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/conll2003/test.txt", help="CoNLL file (IOB2)")
    parser.add_argument("--positions", type=int, default=20,
                        help="positions shown with candidates (default 20)")
    parser.add_argument("--timing-sentences", type=int, default=15,
                        help="sentences of the timing pass (default 15)")
    parser.add_argument("--timing-positions", type=int, default=40,
                        help="positions of the timing pass, 0 to skip it (default 40)")
    parser.add_argument("--limit", type=int, default=5, help="candidates shown per position (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="infiller pool_size (default: the infiller's)")
    parser.add_argument("--right-context-tokens", type=int, default=None,
                        help="infiller right_context_tokens (default: the infiller's)")
    parser.add_argument("--proposals", default=None,
                        help="infiller proposals, repeat or left (default: the infiller's)")
    parser.add_argument("--dtype", default=None,
                        help="infiller dtype, auto, float32 or bfloat16 (default: the infiller's)")
    parser.add_argument("--model-cache-dir", default=None,
                        help="where the converted SmolLM2 copy lives "
                             "(default: $NERROBUST_CACHE_DIR or .nerrobust-cache)")
    args = parser.parse_args()

    if not Path(args.data).is_file():
        sys.exit(f"data file {args.data!r} not found; pass --data with a CoNLL-2003 file")

    import torch

    from pytest_nerrobust.cache import Cache, default_cache_dir
    from pytest_nerrobust.corpus import read_corpus
    from pytest_nerrobust.similarity import detokenize
    from pytest_nerrobust.substitution.context import INFILL_NAMESPACE, LocalLMInfiller
    from pytest_nerrobust.substitution.prompts import BLANK

    torch.set_num_threads(args.threads)
    sentences = read_corpus(args.data, "IOB2", "conll").sentences
    quality_requests = pick_positions(sentences, args.positions)
    timing_requests = pick_timing_positions(sentences, args.timing_sentences, args.timing_positions)
    model_cache_dir = Path(args.model_cache_dir) if args.model_cache_dir else default_cache_dir()
    settings = {
        name: value
        for name, value in (("pool_size", args.pool_size),
                            ("right_context_tokens", args.right_context_tokens),
                            ("proposals", args.proposals), ("dtype", args.dtype))
        if value is not None
    }

    with tempfile.TemporaryDirectory(prefix="infill-bench-") as results_dir:
        infiller = LocalLMInfiller(cache=Cache(Path(results_dir) / "quality"), cache_dir=model_cache_dir,
                                   num_threads=args.threads, **settings)
        started = time.perf_counter()
        infiller.fingerprint()
        fingerprint_seconds = time.perf_counter() - started
        started = time.perf_counter()
        infiller.load()
        load_seconds = time.perf_counter() - started

        tokens = [0]

        def count_tokens(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            tokens[0] += int(kwargs["input_ids"].numel())

        infiller._model.register_forward_pre_hook(count_tokens, with_kwargs=True)
        quality_results = infiller.candidates_batch(quality_requests, args.limit)
        infiller.cache.close()

        timings: dict[str, tuple[float, float, int]] = {}
        if timing_requests:
            gflops_before = matmul_gflops(args.threads)
            timing_cache = Cache(Path(results_dir) / "timing")
            infiller.cache = timing_cache
            for run in ("cold", "warm"):
                tokens[0] = 0
                wall, cpu = time.perf_counter(), time.process_time()
                infiller.candidates_batch(timing_requests, args.limit)
                timings[run] = (time.perf_counter() - wall, time.process_time() - cpu, tokens[0])
            gflops_after = matmul_gflops(args.threads)
            stats = timing_cache.stats()[INFILL_NAMESPACE]
            timing_cache.close()

    print(f"# Infilling candidates, {len(quality_requests)} positions of {args.data}\n")
    print("| sentence | original | candidates |")
    print("|---|---|---|")
    for (words, position), candidates in zip(quality_requests, quality_results):
        blanked = detokenize([*words[:position], BLANK, *words[position + 1:]])
        print(f"| {blanked} | {words[position]} | {', '.join(candidates)} |")

    print(f"\nmodel: {infiller.fingerprint()}; settings {settings or 'default'}; "
          f"weights {next(infiller._model.parameters()).dtype}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at the end")
    if not timings:
        return
    count = len(timing_requests)
    timing_sentence_count = len({tuple(words) for words, _ in timing_requests})
    print(f"float32 matmul before / after the timing pass: {gflops_before:.0f} / {gflops_after:.0f} GFLOP/s")
    print(f"fingerprint (loads the entity lexicon): {fingerprint_seconds:.1f} s")
    print(f"model load (converts SmolLM2 on first use): {load_seconds:.1f} s")
    print(f"timing pass: {count} positions of {timing_sentence_count} sentences; result cache {stats}\n")
    print("| pass | wall s / position | CPU s / position | model tokens / position |")
    print("|---|---|---|---|")
    for run, (wall, cpu, read) in timings.items():
        print(f"| {run} | {wall / count:.3f} | {cpu / count:.3f} | {read / count:.0f} |")


if __name__ == "__main__":
    main()
