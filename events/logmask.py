"""Log lines name nobody and unlock nothing: every Redline process masks ID and telephone
numbers, and the password of any connection URL, in what it logs.

Here, not in services/, because the connectors (which must not import services/) need the
same filter. Names of persons cannot be told apart from other words, so call sites never
log them; this catches the ID numbers that slip into messages, arguments and tracebacks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from events.privacy import mask_identifiers

# uvicorn gives these loggers handlers of its own (replaced whenever it configures logging)
# and stops them propagating, so the root's handlers never see their records: the filter
# goes on the loggers themselves, where uvicorn's configuration leaves it.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_TRACEBACKS = logging.Formatter()

# The password of a URL with credentials (postgresql://user:PASSWORD@host/db), up to the
# last @ before white space: a password may hold an unencoded @ / ? or #, and too much
# redacted is better than a piece of password shown. And a libpq keyword or query
# parameter password=...
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/?#@]*:)\S*(?=@)", re.I)
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&;'\"]+)", re.I
)
REDACTED = "***"


def redact_passwords(text: str) -> str:
    """`text` with the password of every connection URL or password=... setting replaced
    by ***, so an error or log line naming a DATABASE_URL can be shown."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    return _KEYWORD_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)


def mask_secrets(text: str) -> str:
    """What every log line goes through: ID and telephone numbers masked, passwords gone."""
    return redact_passwords(mask_identifiers(text))


class MaskIdentifiers(logging.Filter):
    """Masks ID and telephone numbers and redacts passwords in a record's message and
    exception text; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_message(record)
        if record.exc_info and not record.exc_text:
            # Formatters keep exc_text when it is set, so the masked text is what they print.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


def _mask_message(record: logging.LogRecord) -> None:
    if _unmasked(record) is None:
        return
    # Arguments masked one by one keep the record's shape: uvicorn's access formatter reads
    # the arguments, not the message.
    if isinstance(record.msg, str):
        record.msg = mask_secrets(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_mask_arg(arg) for arg in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {key: _mask_arg(value) for key, value in record.args.items()}
    left = _unmasked(record)
    if left is not None:  # in an argument that is not text (an exception, a dict): freeze it
        record.msg, record.args = mask_secrets(left), ()


def _unmasked(record: logging.LogRecord) -> str | None:
    """The formatted message if it still shows an ID, else None."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError, KeyError):  # a bad call: print the template, masked
        message = str(record.msg)
    return None if mask_secrets(message) == message else message


def _mask_arg(arg: object) -> object:
    return mask_secrets(arg) if isinstance(arg, str) else arg


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
