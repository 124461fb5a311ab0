"""A tiny, randomly initialised Llama with its own byte-level BPE tokenizer.

Tests, the bench and demos need a causal LM that loads offline with
`AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained` and trains in
CPU seconds. `build_tiny_llama` makes one on the spot: it trains a byte-level BPE on a
small built-in corpus (any text still encodes, byte by byte at worst), builds a
LlamaForCausalLM of about 0.1 M parameters and saves both into one directory.

The weights are random, so the model knows nothing; what it is good for is showing that
a LoRA adapter lowers the loss on the data it was trained on. Its weights are drawn with
a wider spread than Llama's 0.02 (INITIALIZER_RANGE) because the output logits of a
64-wide model with 0.02 weights stay within about ±1.3, which caps how far any adapter
can lower the loss; at 0.2 they reach the range of a trained model, and a rank-8
adapter on q_proj and v_proj learns a keyword → answer mapping in about 200 steps.
"""

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
INITIALIZER_RANGE = 0.2

_WORDS = """
the a an of to in on at for with by from and or not is are was were be been has have
had do does did what which who how why when where this that these those it its they
them their we you your he she his her i me my our yes no true false ok done error
instruction response input output answer question context reverse sort copy upper
lower count add sum capital colour color animal sound says say city country france
paris italy rome spain madrid japan tokyo germany berlin egypt cairo peru lima china
cat dog cow duck sheep horse bird frog meow woof moo quack baa neigh tweet ribbit
red blue green yellow black white big small old new happy sad tall short fast slow
hot cold one two three four five six seven eight nine ten zero first last next
agent tool call success failure retry timeout learning model adapter train test
python file read write open close run stop start list get set update delete create
"""
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def tiny_corpus() -> list[str]:
    """The built-in text the tokenizer learns its merges from: common words, the words
    the tests and demos use, letter runs and digits, repeated so merges form."""
    words = _WORDS.split()
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    lines += [" ".join(_LETTERS), _LETTERS, " ".join(str(n) for n in range(100))]
    lines += ["### Instruction:\n", "### Response:\n", "### Context:\n"]
    return lines * 8


def build_tiny_llama(
    directory: str | Path,
    *,
    vocab_size: int = 512,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """Write a tokenizer and a random LlamaForCausalLM into `directory` (created if
    missing) and return its path. Deterministic for a given seed. Blocking: about a
    second once torch and transformers are imported."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(vocab_size)
    model = _model(tokenizer, hidden, layers, heads, seed)
    from transformers.utils import logging as hf_logging

    # The shard-writing progress bar is noise in tests and logs.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _tokenizer(vocab_size: int) -> "PreTrainedTokenizerFast":
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes
        show_progress=False,
    )
    bpe.train_from_iterator(tiny_corpus(), trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )


def _model(
    tokenizer: "PreTrainedTokenizerFast", hidden: int, layers: int, heads: int, seed: int
) -> "LlamaForCausalLM":
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        initializer_range=INITIALIZER_RANGE,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)
