"""Building request models on the client side."""

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from client.errors import BadRequestError

M = TypeVar("M", bound=BaseModel)


def local(model: type[M], **fields: Any) -> M:
    """Build a request model here, raising the SDK's BadRequestError (not
    pydantic's) when the arguments cannot make a valid request."""
    try:
        return model(**fields)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
        raise BadRequestError("invalid_request", str(exc), {"errors": errors}, None) from None
