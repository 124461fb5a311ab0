"""Services hold Kaizen's logic. They take plain values, return schema models and
never import aiohttp, so tests drive them without a socket."""
