"""hashtag-spread: everything outside the Faust app (event model, replay, broker, CLI)."""

__version__ = "0.1.0"
