"""Redline event contracts: payload models, CloudEvents envelope, signatures, topics."""
