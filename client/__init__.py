"""The Kaizen SDK: `async with KaizenClient(url, token=…) as kz: …`."""

from client._client import ClientState, KaizenClient
from client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionLostError,
    KaizenError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServerError,
    TransportError,
    UnavailableError,
)
from client.socket import KaizenSocket, SocketState
from client.sync import SyncKaizenClient
from schemas import ConfidenceLevel, Interaction, LearningType

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ClientState",
    "ConfidenceLevel",
    "ConnectionLostError",
    "Interaction",
    "KaizenClient",
    "KaizenError",
    "KaizenSocket",
    "LearningType",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ServerError",
    "SocketState",
    "SyncKaizenClient",
    "TransportError",
    "UnavailableError",
]
