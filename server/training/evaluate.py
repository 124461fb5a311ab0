"""Held-out loss and the promotion gate.

Held-out loss: the mean cross entropy, in nats per token, over the completion tokens
(output and end-of-sequence, see `tokens.py`) of every held-out pair, weighting each
token equally whatever the batching. Lower is better; a model that ignores its input
scores about ln(vocabulary size).

The gate ("test new models before deployment"; "automated rollback: detect
and revert bad learning"). With relative margin m (0.01 = 1 %), a new adapter is
promoted only when it beats both the base model and the adapter now serving:

    bar = min(base_loss, current_loss)        (base_loss alone when nothing serves)
    promote ⇔ new_loss < (1 − m) · bar

All three losses must come from the same held-out pairs. Beating the base alone is not
enough: an adapter trained on noise still learns which tokens answers are made of and
so beats a base model, while the adapter it would replace knows the task. A relative
margin keeps run-to-run noise from swapping adapters back and forth; cross entropy is
never negative, so (1 − m) · bar is always the stricter bar.
"""

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.training.tokenizer import IGNORE, PROMPT_TEMPLATE, Pair, collate, encode_pair, pad_id

DEFAULT_MARGIN = 0.01


@dataclass(frozen=True, slots=True)
class GateDecision:
    promote: bool
    reason: str
    new_loss: float
    current_loss: float | None
    base_loss: float
    margin: float
    threshold: float  # new_loss had to be below this


def decide(
    new_loss: float, current_loss: float | None, base_loss: float, margin: float = DEFAULT_MARGIN
) -> GateDecision:
    """Promote or not, by the rule in the module doc; `reason` says why in words."""
    if not 0 <= margin < 1 or not math.isfinite(base_loss):
        raise ValueError(f"need 0 ≤ margin < 1 and a finite base loss, got {margin}, {base_loss}")
    bar = base_loss if current_loss is None else min(base_loss, current_loss)
    threshold = (1 - margin) * bar
    promote = math.isfinite(new_loss) and new_loss < threshold
    reason = _reason(new_loss, current_loss, base_loss, margin, threshold, promote)
    return GateDecision(promote, reason, new_loss, current_loss, base_loss, margin, threshold)


def _reason(
    new: float, current: float | None, base: float, margin: float, threshold: float, promote: bool
) -> str:
    if not math.isfinite(new):
        return f"held-out loss is {new}, not a number"
    rivals = [("the base model", base)] + (
        [] if current is None else [("the current adapter", current)]
    )
    if promote:
        beaten = " and ".join(f"{name}'s {loss:.4f}" for name, loss in rivals)
        return f"held-out loss {new:.4f} beats {beaten} by more than {margin:.1%}"
    name, loss = min(rivals, key=lambda rival: rival[1])
    return (
        f"held-out loss {new:.4f} does not beat {name}'s {loss:.4f} "
        f"by {margin:.1%} (needed < {threshold:.4f})"
    )


def held_out_loss(
    base_model: str | Path,
    adapter_dir: str | Path | None,
    pairs: Sequence[Pair],
    *,
    batch_size: int = 8,
    max_length: int = 256,
    device: str = "auto",
    template: str = PROMPT_TEMPLATE,
) -> float:
    """Mean completion-token loss of the base model (adapter_dir None) or of the base
    model with a saved LoRA adapter on `pairs`. Blocking: loads the model (seconds for
    a real one), so call it in a worker thread or process."""
    model, tokenizer = load_model(str(base_model), resolve_device(device))
    if adapter_dir is not None:
        model = load_adapter(model, adapter_dir)
    return completion_loss(model, tokenizer, pairs, batch_size, max_length, template)


def load_model(base_model: str, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory or a hub id (offline: the hub cache)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # "Loading weights" progress bars are noise in logs and test output.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model: Any = AutoModelForCausalLM.from_pretrained(base_model, dtype=_dtype_for(device))
    return model.to(device), tokenizer


def resolve_device(device: str) -> str:
    """auto → cuda when torch sees a GPU, else cpu; other device names pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but torch sees no CUDA device")
    return device


def _dtype_for(device: str) -> Any:
    """bfloat16 on GPUs that have it (half the memory, same range), float32 else."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_adapter(model: Any, adapter_dir: str | Path) -> Any:
    from peft import PeftModel

    with quiet_peft():
        return PeftModel.from_pretrained(model, str(adapter_dir))


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """A warnings filter for peft calls: peft 0.21 reads the model's
    `is_gradient_checkpointing`, which transformers 5 deprecates with a FutureWarning
    on every get_peft_model / PeftModel.from_pretrained. Only that message is muted.
    Not thread-safe (no warnings filter is): two threads may see each other's filters."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
        yield


def completion_loss(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[Pair],
    batch_size: int = 8,
    max_length: int = 256,
    template: str = PROMPT_TEMPLATE,
) -> float:
    """Mean completion-token loss of a loaded model, in eval mode without gradients."""
    import torch

    if not pairs:
        raise ValueError("no pairs to measure a loss on")
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in _batches(tokenizer, pairs, batch_size, max_length, template):
            loss_sum, count = token_loss_sum(model, batch)
            total, tokens = total + float(loss_sum), tokens + count
    return total / tokens if tokens else math.nan


def _batches(
    tokenizer: Any, pairs: Sequence[Pair], batch_size: int, max_length: int, template: str
) -> Iterator[dict[str, Any]]:
    pad = pad_id(tokenizer)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        yield collate([encode_pair(tokenizer, pair, max_length, template) for pair in chunk], pad)


def token_loss_sum(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """(summed cross entropy, labelled token count) of one collated batch; the sum is a
    0-d tensor that keeps its graph when gradients are on. Position t predicts token
    t + 1, hence the shift."""
    import torch

    device = next(model.parameters()).device
    labels = batch["labels"][:, 1:].to(device)
    logits = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
    ).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return loss, int((labels != IGNORE).sum())
