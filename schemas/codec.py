"""orjson encoding of the models: the wire format of every body and frame."""

import orjson
from pydantic import BaseModel


def encode(model: BaseModel, *, exclude_none: bool = False) -> bytes:
    """A model as JSON bytes. Requests leave out unset optional fields
    (`exclude_none`); replies spell every field out, nulls included."""
    return orjson.dumps(model.model_dump(exclude_none=exclude_none))
