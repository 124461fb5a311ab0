"""The Kaizen SDK: `async with KaizenClient(url, token=…) as kz: …`."""

from client._client import ClientState, KaizenClient
from client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionLostError,
    KaizenError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnavailableError,
)
from client.socket import KaizenSocket, SocketState
from client.subscription import Subscription, SubscriptionState
from client.sync import SyncKaizenClient
from schemas import (
    ConfidenceLevel,
    HubMessage,
    Interaction,
    KnowledgeType,
    LearningType,
    Priority,
    Published,
    PushFrame,
)

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ClientState",
    "ConfidenceLevel",
    "ConflictError",
    "ConnectionLostError",
    "HubMessage",
    "Interaction",
    "KaizenClient",
    "KaizenError",
    "KaizenSocket",
    "KnowledgeType",
    "LearningType",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Priority",
    "Published",
    "PushFrame",
    "RateLimitedError",
    "ServerError",
    "SocketState",
    "Subscription",
    "SubscriptionState",
    "SyncKaizenClient",
    "TransportError",
    "UnavailableError",
]
