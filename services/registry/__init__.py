"""The case registry of the Natural Resources Bureau: cases, their lifecycle, the outbox."""
