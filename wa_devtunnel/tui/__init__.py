"""The Textual inspector: the face of wa-devtunnel (front-end layer only)."""
