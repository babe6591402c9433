"""Connectors that run outside the core: blocklist subscribers at utilities and banks."""
