"""The ``nerrobust`` command line: ``train``, ``attack`` and ``selection-stats``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from pytest_nerrobust.errors import NerRobustError


def _add_train_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="fine-tune a token classifier on a CoNLL or JSON lines file")
    parser.add_argument("train_file", help="training data (CoNLL or JSON lines)")
    parser.add_argument("--output", "-o", required=True, help="directory to write the model to")
    parser.add_argument("--encoder", default=None, help="local encoder directory (default: the bundled MiniLM)")
    parser.add_argument("--valid", default=None, help="validation file scored after each epoch")
    parser.add_argument("--crf", action="store_true", help="add a CRF head (default: softmax head)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per step (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW learning rate (default: 1e-4)")
    parser.add_argument("--max-length", type=int, default=128, help="sub-word pieces per row (default: 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N sentences only")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def _run_train(args: argparse.Namespace) -> int:
    import torch

    from pytest_nerrobust.train import TrainSettings, train_token_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        seed=args.seed,
        crf=args.crf,
        limit=args.limit,
    )
    metrics = train_token_classifier(
        args.train_file, args.output, encoder=args.encoder, settings=settings, valid_path=args.valid,
        progress=lambda line: print(line, flush=True),
    )
    print(json.dumps({"output": str(Path(args.output)), **metrics}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nerrobust", description="Adversarial robustness tests for NER models")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"train": _run_train}
    try:
        return handlers[args.command](args)
    except NerRobustError as error:
        print(f"nerrobust: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
