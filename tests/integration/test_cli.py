"""`redline case ...` and `redline outbox replay` over the same service layer as the API."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from events.signing import TrustStore
from services.config import Settings
from tests.support import case_body, run_python, service_env


def _redline(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    main = "from services.entrypoints.cli import main; main()"
    return run_python("-c", main, *args, env=service_env(settings), stdin=stdin)


def test_filing_and_showing_a_case(settings: Settings) -> None:
    filed = _redline(
        settings, "case", "file", "-", stdin=json.dumps(case_body(("cultivated", "11")))
    )
    assert filed.returncode == 0, filed.stderr
    summary: dict[str, Any] = json.loads(filed.stdout)
    assert summary["accountability_started"] is True

    shown = _redline(settings, "case", "show", summary["case_id"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["cultivated_mu"] == "11"


def test_bad_input_exits_2_naming_the_field(settings: Settings) -> None:
    body = case_body()
    body["subject"]["id"] = body["subject"]["id"][:-1] + (
        "0" if body["subject"]["id"][-1] != "0" else "1"
    )
    refused = _redline(settings, "case", "file", json.dumps(body))
    assert refused.returncode == 2
    assert "error: invalid input: subject.id: check character is" in refused.stderr
    assert refused.stdout == ""


def test_a_step_the_case_does_not_allow_is_refused(settings: Settings) -> None:
    case_id = json.loads(_redline(settings, "case", "file", json.dumps(case_body())).stdout)[
        "case_id"
    ]
    refused = _redline(
        settings,
        "case",
        "record",
        case_id,
        "closure",
        json.dumps({"closed_on": "2026-11-01", "reason": "done"}),
    )
    assert refused.returncode == 1
    assert "cannot record closure on a case that is filed" in refused.stderr


def test_restoration_is_signed_off_by_the_holders_of_two_tokens(
    settings: Settings,
    trust: TrustStore,  # made the development keys, and with them the tokens
) -> None:
    case_id = json.loads(_redline(settings, "case", "file", json.dumps(case_body())).stdout)[
        "case_id"
    ]
    steps = {
        "penalty": {
            "decision_no": "罚3",
            "decided_on": "2026-10-20",
            "fine_yuan": "1",
            "summary": "罚",
        },
        "rectification": {"action": "demolition", "completed_on": "2026-11-01"},
    }
    for step, body in steps.items():
        assert _redline(settings, "case", "record", case_id, step, json.dumps(body)).returncode == 0
    tokens = settings.home / "tokens"
    day = json.dumps({"verified_on": "2026-11-10"})
    whole = _redline(settings, "case", "record", case_id, "restoration", day)
    assert whole.returncode == 2
    assert "restoration needs both bodies' sign-offs" in whole.stderr
    signed = []
    for name in ("case-officer", "agriculture-inspector"):
        answer = _redline(
            settings,
            "case",
            "sign-off",
            case_id,
            day,
            "--token-file",
            str(tokens / f"{name}.token"),
        )
        assert answer.returncode == 0, answer.stderr
        signed.append(json.loads(answer.stdout)["status"])
    assert signed == ["rectified", "restored"]


def test_land_procedures_and_confiscation_are_steps_on_the_command_line(
    settings: Settings,
) -> None:
    def file() -> str:
        answer = _redline(settings, "case", "file", json.dumps(case_body()))
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["starts"]  # what filing started, and why
        case_id: str = json.loads(answer.stdout)["case_id"]
        return case_id

    procedures = {"approval_no": "晋政地〔2026〕9号", "approved_on": "2026-10-25",
                  "approved_by": "山西省人民政府"}  # fmt: skip
    legalised = _redline(
        settings, "case", "record", file(), "land_procedures", json.dumps(procedures)
    )
    assert legalised.returncode == 0, legalised.stderr
    assert json.loads(legalised.stdout)["status"] == "legalised"

    case_id = file()
    confiscation = {"decision_no": "罚4", "completed_on": "2026-10-28", "property": "厂房"}
    early = _redline(settings, "case", "record", case_id, "confiscation", json.dumps(confiscation))
    assert early.returncode == 1
    assert "confiscation needs the case to be penalty_decided or rectified" in early.stderr
    penalty = {"decision_no": "罚4", "decided_on": "2026-10-20", "fine_yuan": "1", "summary": "罚"}
    assert (
        _redline(settings, "case", "record", case_id, "penalty", json.dumps(penalty)).returncode
        == 0
    )
    done = _redline(settings, "case", "record", case_id, "confiscation", json.dumps(confiscation))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "confiscated"
    assert [d["measure"] for d in answer["starts"]] == ["supervise_confiscated_property"]


def test_replay_refuses_a_time_without_offset(settings: Settings) -> None:
    refused = _redline(settings, "outbox", "replay", "--from", "2026-11-01T00:00")
    assert refused.returncode == 2
    assert "--from: the time needs a UTC offset" in refused.stderr
