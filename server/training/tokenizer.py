"""From (instruction, output) pairs to token ids and completion-only labels.

The model sees PROMPT_TEMPLATE with the instruction filled in, then the output and the
end-of-sequence token. The loss counts only the output and end-of-sequence tokens:
prompt positions (and padding) carry the label IGNORE (−100), which torch's cross
entropy skips, so an adapter learns to answer, not to echo questions. Prompt and
output are tokenised apart and joined, so the boundary between them is exact.

Too long for max_length: the prompt keeps up to half the budget (all of it when
shorter), cut from the left so "### Response:" stays next to the answer; the output
takes the rest, cut from the right (it then loses its end-of-sequence token).
Whatever serves an adapter must format prompts with `format_prompt` too.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROMPT_TEMPLATE = "### Instruction:\n{instruction}\n### Response:\n"
IGNORE = -100

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt positions

    @property
    def completion_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def format_prompt(instruction: str, template: str = PROMPT_TEMPLATE) -> str:
    return template.format(instruction=instruction)


def encode_pair(
    tokenizer: Any, pair: Pair, max_length: int, template: str = PROMPT_TEMPLATE
) -> Encoded:
    """Token ids and labels of one pair; `tokenizer` is a transformers tokenizer."""
    instruction, output = pair
    prompt = _ids(tokenizer, format_prompt(instruction, template))
    completion = [*_ids(tokenizer, output), tokenizer.eos_token_id]
    completion = completion[: max_length - min(len(prompt), max_length // 2)]
    prompt = prompt[max(0, len(prompt) - (max_length - len(completion))) :]
    return Encoded(prompt + completion, [IGNORE] * len(prompt) + completion)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_id(tokenizer: Any) -> int:
    """The pad token, or end-of-sequence where the tokenizer has none (Llama's):
    padded positions are masked out of attention and loss, so either works."""
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.eos_token_id)


def collate(rows: Sequence[Encoded], pad: int) -> dict[str, Any]:
    """Right-padded torch tensors: input_ids, attention_mask, labels."""
    import torch

    width = max(len(row.input_ids) for row in rows)
    ids = [row.input_ids + [pad] * (width - len(row.input_ids)) for row in rows]
    mask = [[1] * len(row.input_ids) + [0] * (width - len(row.input_ids)) for row in rows]
    labels = [row.labels + [IGNORE] * (width - len(row.labels)) for row in rows]
    return {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
    }
