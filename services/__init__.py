"""Redline services: registry, relay, department enforcers, and their runtime."""
