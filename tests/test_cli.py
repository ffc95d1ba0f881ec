"""Tests of the ``nerrobust`` command line through ``cli.main``: the train command and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_nerrobust.cli import main
from pytest_nerrobust.models.hf import HFTokenClassifier
from pytest_nerrobust.models.loading import load_model


def train_arguments(train_file: Path, output: Path, encoder: Path, *extra: str) -> list[str]:
    return [
        "train", str(train_file), "--output", str(output), "--encoder", str(encoder), "--epochs", "1",
        "--batch-size", "16", "--learning-rate", "3e-3", "--max-length", "32", "--limit", "32", "--threads", "1",
        *extra,
    ]


def test_train_command_model(tmp_path, demo_files, tiny_encoder_dir, capsys):
    output = tmp_path / "model"

    code = main(train_arguments(demo_files["train"], output, tiny_encoder_dir, "--valid", str(demo_files["valid"])))
    printed = capsys.readouterr()
    summary = json.loads(printed.out[printed.out.index("{") :])
    model = load_model(str(output))

    assert code == 0
    assert summary["output"] == str(output)
    assert set(summary) == {"output", "train_seconds", "valid_f1"}
    assert "epoch 1: valid F1 " in printed.out
    assert isinstance(model, HFTokenClassifier)
    assert model.labels == ["LOC", "MISC", "ORG", "PER"]
    assert [len(tags) for tags in model.predict([["Talks", "between", "Tokelau"], ["Bianchi"]])] == [3, 1]


def test_train_command_crf(tmp_path, demo_files, tiny_encoder_dir, capsys):
    output = tmp_path / "model"

    code = main(train_arguments(demo_files["train"], output, tiny_encoder_dir, "--crf"))
    model = load_model(str(output))

    assert code == 0
    assert (output / "crf.pt").is_file()
    assert model.crf is not None


def bad_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """Write a broken training file of ``kind`` and return it with the expected error message."""
    path = tmp_path / f"{kind}.conll"
    if kind == "missing":
        return path, f"data file {str(path)!r} was not found; pass an existing CoNLL or JSON lines file"
    if kind == "empty":
        path.write_text("\n\n", encoding="utf-8")
        return path, f"data file {str(path)!r} is empty; give a file with labelled sentences"
    if kind == "one-column":
        path.write_text("Paris B-LOC\nlives\n", encoding="utf-8")
        return path, (
            f"{path}:2: line 'lives' has one column; write the word and its tag separated by a space or a tab, "
            "such as 'Paris B-LOC'"
        )
    path.write_text("Paris B-LOC\n\nBerlin NNP B-LOC\n", encoding="utf-8")
    return path, (
        f"{path}:3: line has 3 columns but line 1 has 2; give every word line of the file the same columns"
    )


@pytest.mark.parametrize("kind", ["missing", "empty", "one-column", "columns"])
def test_train_bad_file(tmp_path, tiny_encoder_dir, capsys, kind):
    path, message = bad_file(tmp_path, kind)

    code = main(train_arguments(path, tmp_path / "model", tiny_encoder_dir))
    printed = capsys.readouterr()

    assert code == 2
    assert printed.err == f"nerrobust: error: {message}\n"
    assert printed.out == ""
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-size", "0"], "invalid training setting batch_size=0 (--batch-size); pass an integer >= 1"),
        (["--epochs", "0"], "invalid training setting epochs=0 (--epochs); pass an integer >= 1"),
    ],
)
def test_train_bad_setting(tmp_path, demo_files, tiny_encoder_dir, capsys, extra, message):
    code = main(train_arguments(demo_files["train"], tmp_path / "model", tiny_encoder_dir, *extra))
    printed = capsys.readouterr()

    assert code == 2
    assert printed.err == f"nerrobust: error: {message}\n"


def test_train_missing_encoder(tmp_path, demo_files, capsys):
    missing = tmp_path / "no-encoder"

    code = main(train_arguments(demo_files["train"], tmp_path / "model", missing))
    printed = capsys.readouterr()

    assert code == 2
    assert printed.err == (
        f"nerrobust: error: encoder {str(missing)!r} is not a Hugging Face model directory (no config.json); "
        "pass a local encoder directory with --encoder\n"
    )


def test_train_needs_output(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["train", "data.conll"])

    assert raised.value.code == 2
    assert "the following arguments are required: --output/-o" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--ner-data={data}"], "--ner-model is missing; pass --ner-model or set NERROBUST_NER_MODEL to run an attack"),
        (["--ner-model=mymodule:tagger"], "--ner-data is missing; pass --ner-data or set NERROBUST_NER_DATA to run an attack"),
    ],
)
def test_attack_missing_setting(tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.delenv("NERROBUST_NER_MODEL", raising=False)
    monkeypatch.delenv("NERROBUST_NER_DATA", raising=False)
    data = tmp_path / "data.conll"
    data.write_text("Paris B-LOC\n", encoding="utf-8")

    assert main(["attack", *(argument.format(data=data) for argument in arguments)]) == 2

    assert capsys.readouterr().err == f"nerrobust: error: {message}\n"


def test_attack_error_names_where_the_value_came_from(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "absent.conll"
    monkeypatch.setenv("NERROBUST_NER_DATA", str(missing))

    assert main(["attack", "--ner-model=no/such/model"]) == 2

    assert capsys.readouterr().err == (
        f"nerrobust: error: data file {str(missing)!r} was not found; pass an existing CoNLL or JSON lines "
        "file (value from env NERROBUST_NER_DATA)\n"
    )


@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_evaluate_rejects_bad_batch_size(capsys, value):
    with pytest.raises(SystemExit) as raised:
        main(["evaluate", "model", "data.conll", "--batch-size", value])

    assert raised.value.code == 2
    assert f"argument --batch-size: invalid value {value!r}: pass a whole number of 1 or more" in capsys.readouterr().err


def test_evaluate_accepts_ner_label_map_spelling():
    from pytest_nerrobust.cli import build_parser

    args = build_parser().parse_args(["evaluate", "model", "data.conll", "--ner-label-map", "GPE=LOC"])

    assert args.label_map == "GPE=LOC"


def test_attack_warns_about_unknown_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NERROBUST_SAMPLE", "5")
    monkeypatch.delenv("NERROBUST_NER_DATA", raising=False)

    assert main(["attack", "--ner-model=mymodule:tagger"]) == 2

    assert capsys.readouterr().err.splitlines()[0] == (
        "nerrobust: warning: ignoring unknown environment variable NERROBUST_SAMPLE; a setting's variable is "
        "NERROBUST_ plus its ini key without a nerrobust_ prefix, such as NERROBUST_ATTACK_K"
    )


def test_closed_stdout_exits_quietly(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "tagger.py").write_text("def tag(sentences):\n    return [['B-LOC'] for _ in sentences]\n")
    data = tmp_path / "data.conll"
    data.write_text("Paris B-LOC\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_nerrobust.cli", "evaluate", "tagger:tag", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    process.stdout.close()
    err = process.stderr.read().decode()

    assert process.wait() == 1
    assert err == ""
