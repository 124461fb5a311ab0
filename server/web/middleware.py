"""The one middleware: authenticate, then turn every failure into the error shape.
(One layer rather than two: each aiohttp middleware costs a wrapper per request.)"""

import logging

from aiohttp import web
from pydantic import ValidationError

from schemas import ErrorCode, ErrorDetail
from server.core.errors import KaizenServerError
from server.web.auth import PUBLIC_PATHS, bearer
from server.web.context import PRINCIPAL, services
from server.web.errors import (
    HTTP_CODES,
    Handler,
    error_detail,
    error_response,
    from_validation,
)

log = logging.getLogger("kaizen.transport")


@web.middleware
async def kaizen_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.path not in PUBLIC_PATHS:
            request[PRINCIPAL] = await services(request).auth.authenticate(bearer(request))
        return await handler(request)
    except KaizenServerError as exc:
        return error_response(exc.status, error_detail(exc))
    except ValidationError as exc:
        mapped = from_validation(exc)
        return error_response(mapped.status, error_detail(mapped))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, ErrorCode.INVALID_REQUEST)
        response = error_response(exc.status, ErrorDetail(code=code, message=exc.reason))
        if "Allow" in exc.headers:  # RFC 9110 §15.5.6: a 405 must say what is allowed
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, ErrorDetail(code=ErrorCode.INTERNAL, message="internal error"))
