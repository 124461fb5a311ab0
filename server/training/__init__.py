"""Continuous fine-tuning: data sets, LoRA training in worker processes, the promotion
gate and the adapter registry. No aiohttp, no SQL.

    data.py      sliding window, replay, dedupe and the stable held-out split
    tokens.py    prompt template and completion-only labels
    trainer.py   TrainSpec → train() → TrainResult, in a worker process
    evaluate.py  held-out loss and the promotion gate
    registry.py  verified adapter versions on disk and the current/previous pointers
    pool.py      TrainingPool: asyncio front of the worker processes
    tiny.py      a tiny random Llama and tokenizer for tests, the bench and demos

Importing this package (or data, registry, pool) does not import torch; the modules
that need it import it inside their functions.
"""
