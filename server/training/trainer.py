"""One LoRA fine-tuning run: base model + (instruction, output) pairs → adapter files.

`train` is blocking and meant for a worker process (`pool.py` runs it in one): it
loads the base model and tokenizer (a local directory or a hub id; offline, the hub
cache), wraps the model with a LoRA adapter (peft; Hu et al., 2021), and trains the
adapter alone with AdamW in a plain torch loop on the completion-only loss of
`tokens.py`. It reports `Progress` every `progress_every` steps and after the last,
measures the held-out loss of the base model, the new adapter and (when given) the
adapter now serving, all on the same held-out pairs, and saves the adapter with
`save_pretrained` into `output_dir` (adapter_config.json, adapter_model.safetensors).

Steps: with n training pairs and batch size b an epoch is ⌈n / b⌉ steps, in an order
shuffled with seed + epoch; `max_steps`, when set, replaces epochs · ⌈n / b⌉ and runs
as many epochs as it takes. Rates count from the first step, so model loading is left
out: examples/s are pairs trained per second, tokens/s are non-padding tokens.

Defaults suit a real 1-8 B model (learning rate 2e-4, rank 8 on q_proj and v_proj);
the tiny test model (`tiny.py`) wants a learning rate near 1e-2.
"""

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.training.evaluate import (
    completion_loss,
    load_model,
    quiet_peft,
    resolve_device,
    token_loss_sum,
)
from server.training.tokenizer import PROMPT_TEMPLATE, Encoded, Pair, collate, encode_pair, pad_id

DEFAULT_TARGET_MODULES = ("q_proj", "v_proj")
_LAST_LOSSES = 10  # train_loss_last is the mean over this many final steps
_GRADIENT_CLIP = 1.0  # max gradient norm: one odd batch cannot wreck the adapter


@dataclass(slots=True)
class TrainSpec:
    """Everything a run needs; plain values only, so it pickles into a worker."""

    base_model: str  # local directory or hub id
    output_dir: str  # the adapter is saved here (created if missing)
    train: list[Pair]
    held_out: list[Pair] = field(default_factory=list)
    current_adapter: str | None = None  # the serving adapter's directory, for the gate
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    epochs: int = 1
    max_steps: int | None = None
    learning_rate: float = 2e-4
    batch_size: int = 8
    max_length: int = 256
    seed: int = 0
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1"...
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    progress_every: int = 10  # steps between Progress reports
    template: str = PROMPT_TEMPLATE

    def total_steps(self) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return self.epochs * math.ceil(len(self.train) / self.batch_size)


@dataclass(frozen=True, slots=True)
class Progress:
    step: int
    total_steps: int
    epoch: int  # 0-based
    loss: float  # mean training loss over the steps since the previous report
    eta_s: float  # (elapsed / step) · steps left; 0 at the last step
    examples_per_s: float
    tokens_per_s: float
    elapsed_s: float  # since the first step began


@dataclass(frozen=True, slots=True)
class TrainResult:
    output_dir: str
    steps: int
    examples_seen: int
    tokens_seen: int
    train_loss_first: float  # the first step's batch loss
    train_loss_last: float  # mean over the last _LAST_LOSSES steps
    held_out_loss: float | None  # None without held-out pairs
    base_held_out_loss: float | None
    current_held_out_loss: float | None  # None without current_adapter or held-out pairs
    train_seconds: float
    examples_per_s: float
    tokens_per_s: float
    device: str
    trainable_parameters: int


ProgressCallback = Callable[[Progress], None]


def train(spec: TrainSpec, progress: ProgressCallback | None = None) -> TrainResult:
    """Run the fine-tuning described by `spec`; blocking (see the module doc)."""
    _check(spec)
    import torch

    if spec.threads:
        torch.set_num_threads(spec.threads)
    device = resolve_device(spec.device)
    base, tokenizer = load_model(spec.base_model, device)
    torch.manual_seed(spec.seed)  # LoRA's A matrices are drawn here
    model = _with_lora(base, spec)
    base_loss = _held_out(model, tokenizer, spec, base=True)
    rows = [encode_pair(tokenizer, pair, spec.max_length, spec.template) for pair in spec.train]
    run = _Loop(model, rows, pad_id(tokenizer), spec, progress or _ignore)
    run.fit()
    Path(spec.output_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(spec.output_dir)
    new_loss = _held_out(model, tokenizer, spec)
    current_loss = _current_loss(model, tokenizer, spec)
    return run.result(spec.output_dir, new_loss, base_loss, current_loss, device)


def warm_up() -> None:
    """Import what `train` needs (seconds), so a worker can do it before its job."""
    # transformers and peft load their parts lazily: name the parts train() uses.
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    del LoraConfig, PeftModel, get_peft_model, AutoModelForCausalLM, AutoTokenizer


def _check(spec: TrainSpec) -> None:
    if not spec.train:
        raise ValueError("no training pairs")
    if spec.batch_size < 1 or spec.progress_every < 1 or spec.total_steps() < 1:
        raise ValueError("batch_size, progress_every and the step count must be ≥ 1")


def _with_lora(model: Any, spec: TrainSpec) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=list(spec.target_modules),
    )
    with quiet_peft():
        return get_peft_model(model, config)


def _held_out(model: Any, tokenizer: Any, spec: TrainSpec, *, base: bool = False) -> float | None:
    """Held-out loss of the adapter, or with base=True of the model under it."""
    if not spec.held_out:
        return None
    args = (tokenizer, spec.held_out, spec.batch_size, spec.max_length, spec.template)
    if not base:
        return completion_loss(model, *args)
    with model.disable_adapter():
        return completion_loss(model, *args)


def _current_loss(model: Any, tokenizer: Any, spec: TrainSpec) -> float | None:
    """The serving adapter's held-out loss, loaded beside the new one (after the new
    one is saved, so its files hold only the new adapter)."""
    if spec.current_adapter is None or not spec.held_out:
        return None
    with quiet_peft():
        model.load_adapter(spec.current_adapter, adapter_name="current")
    model.set_adapter("current")
    return _held_out(model, tokenizer, spec)


def _ignore(_: Progress) -> None:
    return None


class _Loop:
    """The optimisation loop and its running figures."""

    def __init__(
        self,
        model: Any,
        rows: list[Encoded],
        pad: int,
        spec: TrainSpec,
        progress: ProgressCallback,
    ) -> None:
        import torch

        self.model = model
        self.rows = rows
        self.pad = pad
        self.spec = spec
        self.progress = progress
        self.total = spec.total_steps()
        self.params = [p for p in model.parameters() if p.requires_grad]  # LoRA's alone
        self.optimizer = torch.optim.AdamW(self.params, lr=spec.learning_rate, weight_decay=0.0)
        self.losses: list[float] = []
        self.examples = self.tokens = 0
        self.started = 0.0
        self.stopped: float | None = None
        self.since_report: list[float] = []

    def fit(self) -> None:
        self.model.train()
        self.started = time.perf_counter()
        for epoch, batch in self._schedule():
            self._step(batch)
            step = len(self.losses)
            if step % self.spec.progress_every == 0 or step == self.total:
                self._report(step, epoch)
        self.stopped = time.perf_counter()

    def _schedule(self) -> Iterator[tuple[int, list[Encoded]]]:
        """(epoch, batch) for each of the total steps."""
        size, steps = self.spec.batch_size, 0
        for epoch in range(self.total):  # never more epochs than steps
            order = list(range(len(self.rows)))
            random.Random(self.spec.seed + epoch).shuffle(order)
            for start in range(0, len(order), size):
                yield epoch, [self.rows[i] for i in order[start : start + size]]
                steps += 1
                if steps == self.total:
                    return

    def _step(self, batch: Sequence[Encoded]) -> None:
        import torch

        loss_sum, count = token_loss_sum(self.model, collate(batch, self.pad))
        loss = loss_sum / max(count, 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, _GRADIENT_CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        self.losses.append(value)
        self.since_report.append(value)
        self.examples += len(batch)
        self.tokens += sum(len(row.input_ids) for row in batch)

    def _report(self, step: int, epoch: int) -> None:
        elapsed = self.elapsed()
        loss = sum(self.since_report) / len(self.since_report)
        self.since_report = []
        eta = elapsed / step * (self.total - step)
        examples_rate, tokens_rate = self.rates()
        self.progress(
            Progress(step, self.total, epoch, loss, eta, examples_rate, tokens_rate, elapsed)
        )

    def elapsed(self) -> float:
        """Seconds since the first step, up to the end of the last once fit is done."""
        return (self.stopped or time.perf_counter()) - self.started

    def rates(self) -> tuple[float, float]:
        elapsed = max(self.elapsed(), 1e-9)
        return self.examples / elapsed, self.tokens / elapsed

    def result(
        self,
        output_dir: str,
        held_out: float | None,
        base: float | None,
        current: float | None,
        device: str,
    ) -> TrainResult:
        examples_rate, tokens_rate = self.rates()
        tail = self.losses[-_LAST_LOSSES:]
        return TrainResult(
            output_dir=output_dir,
            steps=len(self.losses),
            examples_seen=self.examples,
            tokens_seen=self.tokens,
            train_loss_first=self.losses[0],
            train_loss_last=sum(tail) / len(tail),
            held_out_loss=held_out,
            base_held_out_loss=base,
            current_held_out_loss=current,
            train_seconds=self.elapsed(),
            examples_per_s=examples_rate,
            tokens_per_s=tokens_rate,
            device=device,
            trainable_parameters=sum(p.numel() for p in self.params),
        )
