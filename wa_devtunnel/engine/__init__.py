"""The engine: asyncio and aiohttp, never Textual."""
