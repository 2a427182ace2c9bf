"""What a training run shows a person: one progress bar, a loss line per logging step, a summary.

Libraries' own output is kept for ``verbose``: :func:`quiet_libraries` silences Python warnings
(gradient-checkpointing FutureWarnings and the like), the transformers/peft/trl/bitsandbytes loggers
below ERROR (e.g. bitsandbytes' ``Failed to load CPU gemm_4bit_forward`` on CPUs with AVX512-BF16)
and transformers' own progress bars; :class:`ProgressLog` replaces the Trainer's bar and its
printed ``{'loss': ...}`` dicts with one bar (on a terminal) and lines like
``step 10/60  loss 1.2345  lr 1.8e-04``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from typing import Any, Callable, Iterator

LIBRARY_LOGGERS = ("transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets", "torch")


@contextlib.contextmanager
def quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """Inside: library warnings and info logs hidden unless ``verbose`` (restored on exit)."""
    if verbose:
        yield
        return
    levels = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    hf_logging = None
    try:
        from transformers.utils import logging as hf_logging  # type: ignore[no-redef]

        hf_verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - the train extra always has transformers
        hf_logging = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if hf_logging is not None:
            hf_logging.set_verbosity(hf_verbosity)
            hf_logging.enable_progress_bar()


def progress_callback(log: Callable[[str], None], *, bar: bool | None = None) -> Any:
    """A ``transformers.TrainerCallback`` (built on demand: transformers is an optional extra)."""
    from transformers import TrainerCallback

    class ProgressLog(TrainerCallback):
        """One bar, one loss line per logging step, and a log at the last step so short runs report a loss."""

        def __init__(self) -> None:
            self.show_bar = sys.stderr.isatty() if bar is None else bar
            self.bar = None
            self.started = 0.0
            self.seconds = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()
            if self.show_bar:
                from tqdm import tqdm

                self.bar = tqdm(total=state.max_steps, unit="step", desc="training", dynamic_ncols=True, leave=False)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)
            if state.global_step >= state.max_steps:
                control.should_log = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs:
                return
            line = f"step {state.global_step}/{state.max_steps}  loss {float(logs['loss']):.4f}"
            if "learning_rate" in logs:
                line += f"  lr {float(logs['learning_rate']):.1e}"
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                log(line)

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.monotonic() - self.started
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return ProgressLog()


def use_progress_log(trainer: Any, log: Callable[[str], None], *, bar: bool | None = None) -> Any:
    """Swap the Trainer's own bar and printer for :func:`progress_callback`; return the new callback."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    callback = progress_callback(log, bar=bar)
    trainer.add_callback(callback)
    return callback


def summary_line(steps: int, losses: list[float], seconds: float, where: str) -> str:
    """``trained 60 steps in 12.3 s; loss 2.3456 → 0.1234; adapter in out/sft``."""
    loss = f"loss {losses[0]:.4f} → {losses[-1]:.4f}" if losses else "no loss logged"
    return f"trained {steps} step{'s' if steps != 1 else ''} in {seconds:.1f} s; {loss}; adapter in {where}"
