"""Replay file formats, one module per format."""
