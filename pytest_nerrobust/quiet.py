"""Keep transformers' loading progress bars out of test output and reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Turn off transformers' progress bars inside the block, and restore the previous state after it.

    Loading a model prints a "Loading weights" bar to stderr, which pytest captures into every failing
    test's report. The engine shows its own progress instead.
    """
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


@contextmanager
def no_load_report() -> Iterator[None]:
    """Hide transformers' progress bars and warnings, such as the weight load report, inside the block.

    Fine-tuning starts from an encoder without a classification head, so the report of missing head
    weights is expected there and only adds noise.
    """
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        with no_progress_bars():
            yield
    finally:
        transformers_logging.set_verbosity(verbosity)
