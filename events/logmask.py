"""Log lines name nobody: every Redline process masks ID numbers in what it logs.

Here, not in services/, because the connectors (which must not import services/) need the
same filter. Names of persons cannot be told apart from other words, so call sites never
log them; this catches the ID numbers that slip into messages, arguments and tracebacks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from events.privacy import mask_identifiers

# uvicorn gives these loggers handlers of its own (replaced whenever it configures logging)
# and stops them propagating, so the root's handlers never see their records: the filter
# goes on the loggers themselves, where uvicorn's configuration leaves it.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_TRACEBACKS = logging.Formatter()


class MaskIdentifiers(logging.Filter):
    """Masks ID numbers in a record's message and exception text; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_message(record)
        if record.exc_info and not record.exc_text:
            # Formatters keep exc_text when it is set, so the masked text is what they print.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_identifiers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_identifiers(record.stack_info)
        return True


def _mask_message(record: logging.LogRecord) -> None:
    if _unmasked(record) is None:
        return
    # Arguments masked one by one keep the record's shape: uvicorn's access formatter reads
    # the arguments, not the message.
    if isinstance(record.msg, str):
        record.msg = mask_identifiers(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_mask_arg(arg) for arg in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {key: _mask_arg(value) for key, value in record.args.items()}
    left = _unmasked(record)
    if left is not None:  # in an argument that is not text (an exception, a dict): freeze it
        record.msg, record.args = mask_identifiers(left), ()


def _unmasked(record: logging.LogRecord) -> str | None:
    """The formatted message if it still shows an ID, else None."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError, KeyError):  # a bad call: print the template, masked
        message = str(record.msg)
    return None if mask_identifiers(message) == message else message


def _mask_arg(arg: object) -> object:
    return mask_identifiers(arg) if isinstance(arg, str) else arg


def mask_logging() -> None:
    """Put the filter on every handler of the root logger, on the handler of last resort
    (what a process with no handler writes warnings with) and on uvicorn's loggers.

    Call it after the process has configured its handlers; calling it again adds nothing.
    """
    for filterer in (
        *logging.getLogger().handlers,
        *([logging.lastResort] if logging.lastResort else []),
        *(logging.getLogger(name) for name in UVICORN_LOGGERS),
    ):
        if not any(isinstance(f, MaskIdentifiers) for f in filterer.filters):
            filterer.addFilter(MaskIdentifiers())
