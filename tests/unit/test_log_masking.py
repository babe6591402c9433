"""Issue #8: no log line of a Redline process carries a resident ID number or a USCC."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner
from uvicorn.logging import AccessFormatter

from connectors.subscriber.cli import app as connector_cli
from events.identifiers import mask_identifier, resident_id_check_character, uscc_check_character
from events.logmask import UVICORN_LOGGERS, MaskIdentifiers, mask_logging, redact_passwords
from events.models import Subject
from events.privacy import mask_identifiers
from services.reports.notice import scrub
from services.runtime.service import configure_logging
from tests.unit.builders import access_record

PERSON = "11010519491231002" + resident_id_check_character("11010519491231002")  # ...2X
ORGANIZATION = "91350100M000100Y4" + uscc_check_character("91350100M000100Y4")


def _record(msg: object, args: object = None, exc: bool = False) -> logging.LogRecord:
    return logging.LogRecord(
        "redline.test",
        logging.WARNING,
        __file__,
        1,
        msg,
        args,  # type: ignore[arg-type]
        sys.exc_info() if exc else None,
    )


# --- the masking function ------------------------------------------------------------


def test_a_resident_id_keeps_four_leading_and_two_trailing_characters() -> None:
    assert PERSON.endswith("X")
    assert mask_identifiers(PERSON) == "1101" + "*" * 12 + "2X"


def test_a_lower_case_x_is_masked_too() -> None:
    assert mask_identifiers(PERSON.lower()) == "1101" + "*" * 12 + "2x"


def test_a_uscc_is_masked() -> None:
    assert mask_identifiers(ORGANIZATION) == mask_identifier(ORGANIZATION)
    assert ORGANIZATION[4:16] not in mask_identifiers(ORGANIZATION)


def test_a_wrong_check_character_is_still_somebodys_number() -> None:
    typo = PERSON[:17] + "1"
    assert mask_identifiers(f"refused {typo}") == f"refused {mask_identifier(typo)}"


@pytest.mark.parametrize(
    "template",
    [
        "checked subject={} for refuse_power_supply",
        "GET /v1/check?measure=refuse_loans&subject={} HTTP/1.1",
        "当事人身份证号{}，已立案",
        "({})",
        "{}, {}",
    ],
)
def test_ids_inside_longer_text_are_masked_and_the_text_kept(template: str) -> None:
    text = template.format(PERSON, ORGANIZATION)
    masked = mask_identifiers(text)
    assert PERSON not in masked and ORGANIZATION not in masked
    assert masked == template.format(mask_identifier(PERSON), mask_identifier(ORGANIZATION))


def test_ids_in_json_are_masked_and_it_stays_json() -> None:
    body = json.dumps({"subject": {"kind": "person", "id": PERSON}, "other": ORGANIZATION})
    parsed = json.loads(mask_identifiers(body))
    assert parsed["subject"]["id"] == mask_identifier(PERSON)
    assert parsed["other"] == mask_identifier(ORGANIZATION)


@pytest.mark.parametrize(
    "text",
    [
        "c64f98a5-9adc-4477-8a1c-a37688f19006",  # event ids (uuid4)
        "03d8764d12d745f3bf7e268e561519fa",
        hashlib.sha256(b"subject").hexdigest(),  # subject hashes, audit chain
        hashlib.sha256(b"subject").hexdigest().upper(),
        "RL-2026-000123",  # case ids
        "CL-20261012-000042",  # clue ids
        "redline.violations.v1",
        "redline.blocklist.refuse_power_supply.v1/2/184467",  # topic/partition/offset
        "2026-10-12T08:30:15.123456+00:00",
        "1791800000123456789",  # nanoseconds since the epoch: 19 digits
        "redline-0f3a9b2c4d5e",
        "ABCDEFGHJKLMNPQRTU",  # 18 letters: no digits, no ID
    ],
)
def test_what_is_not_an_id_is_left_alone(text: str) -> None:
    line = f"event {text} published"
    assert mask_identifiers(line) == line


def test_a_log_line_and_a_public_notice_mask_an_id_alike() -> None:
    text = f"占用耕地，当事人 {PERSON}，关联企业 {ORGANIZATION}"
    assert mask_identifiers(text) == scrub(text, "organization", "not in text", "")


# --- the filter ----------------------------------------------------------------------


def test_the_filter_masks_arguments_and_keeps_the_record_shape() -> None:
    record = _record("checked %s for %s", (PERSON, "bank"))
    assert MaskIdentifiers().filter(record) is True
    assert record.getMessage() == f"checked {mask_identifier(PERSON)} for bank"
    assert record.args == (mask_identifier(PERSON), "bank")


def test_the_filter_masks_ids_in_the_template_and_in_mapping_arguments() -> None:
    record = _record(f"{ORGANIZATION}: %(subject)s", None)
    record.args = {"subject": PERSON}
    MaskIdentifiers().filter(record)
    assert record.getMessage() == f"{mask_identifier(ORGANIZATION)}: {mask_identifier(PERSON)}"


def test_an_id_inside_an_argument_that_is_not_text_is_masked() -> None:
    record = _record("refused %s (%r)", (ValueError(f"bad subject {PERSON}"), {"id": PERSON}))
    MaskIdentifiers().filter(record)
    message = record.getMessage()
    assert PERSON not in message
    assert message.count(mask_identifier(PERSON)) == 2


def test_a_message_without_an_id_is_not_touched() -> None:
    args = (3, 1.5)
    record = _record("relay: %d events; retrying in %.1f s", args)
    MaskIdentifiers().filter(record)
    assert record.msg == "relay: %d events; retrying in %.1f s" and record.args is args


def test_a_validation_error_echoing_the_input_is_masked_in_the_traceback() -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(MaskIdentifiers())
    wrong = PERSON[:17] + "1"

    class Loose(BaseModel):  # a model without hide_input_in_errors, as a library's may be
        flag: bool

    with pytest.raises(ValidationError) as raised:
        Loose(flag=wrong)
    assert wrong in str(raised.value)  # pydantic echoes the input ...
    try:
        raise raised.value
    except ValidationError:
        handler.handle(_record("filing failed for %s", (wrong,), exc=True))
    written = handler.stream.getvalue()
    assert "ValidationError" in written and "Traceback" in written
    assert wrong not in written  # ... and the log does not
    assert written.count(mask_identifier(wrong)) >= 2


def test_uvicorns_access_formatter_still_reads_the_masked_arguments() -> None:
    record = access_record("127.0.0.1:5000", f"/v1/check?subject={PERSON}")
    MaskIdentifiers().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert (
        line
        == f'127.0.0.1:5000 - "GET /v1/check?subject={mask_identifier(PERSON)} HTTP/1.1" 200 OK'
    )


# --- the processes' logging set-up ---------------------------------------------------


@pytest.fixture
def fresh_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root's handlers and uvicorn's filters put back after the test.

    pytest adds its own handlers to the root when the test body starts: the test removes
    them (from this copy) to begin with no handler, as a process does."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    for name in UVICORN_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    if logging.lastResort:
        monkeypatch.setattr(logging.lastResort, "filters", [])


def _capture(handler: logging.Handler) -> io.StringIO:
    """The stream a process handler writes to, swapped for one the test reads."""
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    handler.stream = written  # not setStream: it flushes the old one, CliRunner's is closed
    return written


@pytest.mark.usefixtures("fresh_logging")
def test_a_service_process_logs_ids_masked() -> None:
    logging.getLogger().handlers.clear()
    configure_logging()
    configure_logging()  # twice, as a process that calls it again: one filter per handler
    (handler,) = logging.getLogger().handlers
    assert sum(isinstance(f, MaskIdentifiers) for f in handler.filters) == 1
    written = _capture(handler)
    logging.getLogger("redline.registry").warning("filed a case against %s", PERSON)
    try:
        raise RuntimeError(f"duplicate key (subject_id)=({ORGANIZATION})")
    except RuntimeError:
        logging.getLogger("redline.relay").exception("relay failed")
    assert (
        f"WARNING redline.registry filed a case against {mask_identifier(PERSON)}"
        in written.getvalue()
    )
    assert f"(subject_id)=({mask_identifier(ORGANIZATION)})" in written.getvalue()
    assert PERSON not in written.getvalue() and ORGANIZATION not in written.getvalue()


@pytest.mark.usefixtures("fresh_logging")
def test_the_connector_cli_logs_ids_masked(tmp_path: Path) -> None:
    logging.getLogger().handlers.clear()
    options = {"--name": "x", "--measures": "refuse_loans", "--bootstrap": "127.0.0.1:9"}
    for option in ("--replica", "--trust-store", "--subject-key"):
        options[option] = str(tmp_path / option.strip("-"))
    # A refused option ends `run` right after it has set up logging.
    options["--webhook-url"] = "ftp://x"
    result = CliRunner().invoke(connector_cli, ["run", *(x for o in options.items() for x in o)])
    assert result.exit_code == 2 and "redline-connector: --" in result.output
    (handler,) = logging.getLogger().handlers
    assert any(isinstance(f, MaskIdentifiers) for f in handler.filters)
    written = _capture(handler)
    logging.getLogger("connectors.subscriber.feeder").warning("refused %s", ORGANIZATION)
    assert f"refused {mask_identifier(ORGANIZATION)}" in written.getvalue()
    assert ORGANIZATION not in written.getvalue()


@pytest.mark.usefixtures("fresh_logging")
def test_the_set_up_filters_uvicorns_loggers_and_the_handler_of_last_resort() -> None:
    mask_logging()
    for name in UVICORN_LOGGERS:
        assert any(isinstance(f, MaskIdentifiers) for f in logging.getLogger(name).filters)
    assert logging.lastResort is not None
    assert any(isinstance(f, MaskIdentifiers) for f in logging.lastResort.filters)


_API_PROCESS = f"""
import logging, uvicorn
from services.runtime.service import configure_logging
configure_logging()
# as the registry API starts: uvicorn then installs its own handlers on its loggers
uvicorn.Config(lambda *a: None, log_level="info")
logging.getLogger("uvicorn.access").info(
    '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/check?subject={PERSON}", "1.1", 200
)
try:
    raise ValueError("bad subject {ORGANIZATION}")
except ValueError:
    logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
logging.getLogger("redline.registry").warning("checked {PERSON}")
"""


def test_a_process_with_uvicorn_writes_no_id_to_any_stream() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _API_PROCESS],
        cwd=Path(__file__).resolve().parents[2],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    written = ran.stdout + ran.stderr
    assert f"/v1/check?subject={mask_identifier(PERSON)}" in ran.stdout  # uvicorn's access log
    assert f"bad subject {mask_identifier(ORGANIZATION)}" in ran.stderr  # uvicorn's error log
    assert f"checked {mask_identifier(PERSON)}" in ran.stderr  # the root handler
    assert PERSON not in written and ORGANIZATION not in written


def test_the_event_models_never_echo_a_subjects_input_in_their_errors() -> None:
    wrong = PERSON[:17] + "1"
    with pytest.raises(ValidationError) as raised:
        Subject(kind="person", id=wrong, name="张三")
    assert "check character" in str(raised.value)
    assert wrong not in str(raised.value) and "张三" not in str(raised.value)


# --- issue #18 item 12(b, c): old IDs, telephone numbers and passwords --------------------

OLD_ID = "110105491231002"  # first generation: 15 digits, born 1949-12-31


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"当事人{OLD_ID}，已立案", "当事人1101*********02，已立案"),
        ("联系电话13912345678。", "联系电话139****5678。"),
        ("tel +86 139-1234-5678", "tel +86 139-****-5678"),
        ("tel 0086 139 1234 5678", "tel 0086 139 **** 5678"),
        ("座机 0358-7212345 或 (010)62345678", "座机 0358-*****45 或 (010)******78"),
        ("（0358）7212345", "（0358）*****45"),
        # A Chinese input method types full-width digits: masked alike, the rest kept.
        ("电话１３９１２３４５６７８", "电话１３９****５６７８"),
        ("１１０１０５１９４９１２３１００２Ｘ", "１１０１************２Ｘ"),
    ],
)
def test_old_ids_and_telephone_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_identifiers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "1791800000123",  # milliseconds since the epoch: 13 digits
        "12345678901234",  # 14 digits: neither an ID nor a telephone number
        "offset 184467440737",  # 12 digits not starting with 0
        "12345678901",  # 11 digits, but no mobile number starts 12
        "fine 5000000.00 yuan, area 12.50 mu",
        "20261012 and 1026-1012",
    ],
)
def test_numbers_that_are_not_ids_or_telephones_are_left_alone(text: str) -> None:
    assert mask_identifiers(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "cannot connect to postgresql://redline:S3cret@db:5432/redline: refused",
            "cannot connect to postgresql://redline:***@db:5432/redline: refused",
        ),
        ("postgres://u:p@ss/w#rd@db/redline", "postgres://u:***@db/redline"),
        (
            "host=db user=redline password=S3cret dbname=x",
            "host=db user=redline password=*** dbname=x",
        ),
        (
            "postgresql://db/redline?user=u&password=S3cret",
            "postgresql://db/redline?user=u&password=***",
        ),
        (
            "postgresql://redline@127.0.0.1:5432/redline",
            "postgresql://redline@127.0.0.1:5432/redline",
        ),
        ("http://127.0.0.1:8000/v1/checks", "http://127.0.0.1:8000/v1/checks"),
    ],
)
def test_connection_passwords_are_redacted(text: str, shown: str) -> None:
    assert redact_passwords(text) == shown


def test_the_filter_redacts_a_database_url_in_a_message_and_a_traceback() -> None:
    url = "postgresql://redline:S3cret@db.internal:5432/redline"
    record = _record("cannot reach %s", (url,))
    MaskIdentifiers().filter(record)
    assert "S3cret" not in record.getMessage()
    assert "postgresql://redline:***@db.internal:5432/redline" in record.getMessage()
    try:
        raise ConnectionError(f"connect to {url} failed")
    except ConnectionError:
        failed = _record("relay failed", None, exc=True)
    MaskIdentifiers().filter(failed)
    assert failed.exc_text is not None
    assert "S3cret" not in failed.exc_text and "redline:***@db.internal" in failed.exc_text
