"""Numbered SQL migrations, applied in order, each once."""
