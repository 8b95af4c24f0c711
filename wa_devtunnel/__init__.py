"""wa-devtunnel: a local tunnel, live inspector, recorder and replayer for WhatsApp Cloud API webhooks."""

__version__ = "0.1.0"
