"""orjson encoding of the models: the wire format of every body and frame."""

from typing import Any

import orjson
from pydantic import BaseModel


def encode(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="python"))


def encode_many(models: list[Any]) -> bytes:
    return orjson.dumps([m.model_dump(mode="python") for m in models])
