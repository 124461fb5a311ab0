"""Transports: aiohttp routes and the `/ws` connection. They validate, call a
service and encode the result; the logic lives in each capability's `service.py`."""
