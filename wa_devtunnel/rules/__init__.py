"""Meta's webhook rules as pure functions: no I/O, no aiohttp, no Textual."""
