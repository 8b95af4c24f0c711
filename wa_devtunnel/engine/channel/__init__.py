"""The engine's private channel: its events out to front ends, their commands in (DESIGN.md, "Processes")."""
