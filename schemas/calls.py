"""The `call` frame of `/ws`: any operation the table offers as a call
(schemas/ops.py, `ws="call"`), by name, with its `args`: the path's variables
beside the fields of its body or query (docs/protocol.md lists them). The reply
carries the same model as the HTTP reply."""

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field

from schemas.common import Strict
from schemas.interactions import JsonObject
from schemas.ops import CALL_NAMES

if TYPE_CHECKING:
    CallName = str
else:
    CallName = Literal[CALL_NAMES]


class CallOp(Strict):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    op: CallName
    args: JsonObject = Field(default_factory=dict)


class CallReply(BaseModel):
    type: Literal["result"] = "result"
    op: str
    id: str
    data: Any
