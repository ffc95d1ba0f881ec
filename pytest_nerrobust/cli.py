"""The ``nerrobust`` command line: ``train``, ``evaluate`` and ``attack``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_nerrobust.errors import NerRobustError, with_origin


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


def _add_evaluate_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score a model's clean entity F1 on a labelled file")
    parser.add_argument("model", help="model directory or module:attr")
    parser.add_argument("data", help="labelled file (CoNLL or JSON lines)")
    parser.add_argument("--label-map", "--ner-label-map", dest="label_map", default=None,
                        help="entity type renames DATA=MODEL,... (default: none)")
    parser.add_argument("--batch-size", type=_positive_int, default=64,
                        help="sentences per prediction call (default: 64)")


def _positive_int(text: str) -> int:
    """Parse a positive integer option value; argparse reports the ``ArgumentTypeError`` with the flag."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: pass a whole number of 1 or more")
    return value


def _run_evaluate(args: argparse.Namespace) -> int:
    from pytest_nerrobust.corpus import read_corpus
    from pytest_nerrobust.metrics import entity_f1, per_type_f1
    from pytest_nerrobust.models.loading import check_labels, load_model, parse_label_map

    corpus = read_corpus(args.data)
    model = load_model(args.model, label_map=parse_label_map(args.label_map))
    check_labels(model, corpus.entity_types, args.data)
    gold = [list(sentence.tags) for sentence in corpus.sentences]
    predicted: list[list[str]] = []
    for start in range(0, len(gold), args.batch_size):
        predicted.extend(model.predict([list(s.words) for s in corpus.sentences[start : start + args.batch_size]]))
    result = {"sentences": len(gold), "f1": entity_f1(gold, predicted), "per_type": per_type_f1(gold, predicted)}
    print(json.dumps(result, indent=2))
    return 0


def _add_attack_parser(subparsers) -> None:
    from pytest_nerrobust.config import add_options

    parser = subparsers.add_parser(
        "attack",
        help="attack a model on labelled data and write the report, without pytest",
        description="Takes the same flags as the pytest plugin. Exits 1 when a gate fails, 0 otherwise.",
    )
    add_options(parser.add_argument)


def _run_attack(args: argparse.Namespace) -> int:
    from pytest_nerrobust.attack import run_attack
    from pytest_nerrobust.config import option_values, resolve, unknown_environment_warning
    from pytest_nerrobust.gates import evaluate_gates, format_gate_block, gates_passed
    from pytest_nerrobust.metrics import summarize
    from pytest_nerrobust.report import build_report, format_summary, write_json_report, write_markdown_report

    resolved = resolve(cli=option_values(args))
    config = resolved.config
    warning = unknown_environment_warning(os.environ)
    if warning:
        print(f"nerrobust: warning: {warning}", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        print(f"nerrobust: attacked {done}/{total} sentences", file=sys.stderr, flush=True)

    try:
        run = run_attack(config, progress=progress)
    except NerRobustError as error:
        raise with_origin(error, resolved.sources) from None
    metrics = summarize(run)
    gates = evaluate_gates(metrics, config, resolved.sources)
    report = build_report(run, metrics, config, resolved.sources, gates=gates)
    if config.report:
        write_json_report(config.report, report)
    if config.markdown_report:
        write_markdown_report(config.markdown_report, report)
    for line in format_summary(metrics, config.report):
        print(line)
    print(format_gate_block(gates, metrics))
    return 0 if gates_passed(gates) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nerrobust", description="Adversarial robustness tests for NER models")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(subparsers)
    _add_evaluate_parser(subparsers)
    _add_attack_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"train": _run_train, "evaluate": _run_evaluate, "attack": _run_attack}
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()
        return code
    except NerRobustError as error:
        print(f"nerrobust: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of stdout (such as `head`) exited. Pointing stdout at devnull keeps the exit flush silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
