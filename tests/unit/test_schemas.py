import shutil
from pathlib import Path

import yaml

from events.models import PAYLOAD_TYPES
from events.schemagen import EVENTS_DIR, check, main, write
from events.topics import ALL_TOPICS


def copy_generated(tmp_path: Path) -> Path:
    shutil.copytree(EVENTS_DIR / "schemas", tmp_path / "schemas")
    shutil.copy(EVENTS_DIR / "asyncapi.yaml", tmp_path / "asyncapi.yaml")
    return tmp_path


def test_committed_files_have_no_drift() -> None:
    assert check() == []
    assert main(["--check"]) == 0


def test_modified_missing_and_extra_files_are_detected(tmp_path: Path) -> None:
    root = copy_generated(tmp_path)
    changed = root / "schemas" / "redline.case.filed.v2.json"
    changed.write_text(changed.read_text().replace("area_mu", "area_ha"))
    (root / "schemas" / "redline.case.closed.v1.json").unlink()
    (root / "schemas" / "redline.case.stale.v0.json").write_text("{}\n")
    assert check(root) == [
        "missing: schemas/redline.case.closed.v1.json",
        "drifted: schemas/redline.case.filed.v2.json",
        "extra: schemas/redline.case.stale.v0.json",
    ]
    assert main(["--check", "--root", str(root)]) == 1
    write(root)
    assert check(root) == []


def test_asyncapi_describes_every_topic() -> None:
    document = yaml.safe_load((EVENTS_DIR / "asyncapi.yaml").read_text())
    assert document["asyncapi"] == "3.0.0"
    for topic in ALL_TOPICS:
        channel = document["channels"][topic.name]
        assert channel["address"] == topic.name
        kafka = channel["bindings"]["kafka"]
        assert kafka["partitions"] == topic.partitions
        assert isinstance(kafka["topicConfiguration"]["cleanup.policy"], list)
        for event_type in topic.event_types:
            message = document["components"]["messages"][event_type]
            assert message["payload"]["$ref"] == f"./schemas/{event_type}.json"
            assert (EVENTS_DIR / "schemas" / f"{event_type}.json").exists()
        assert document["operations"][f"receive.{topic.name}"]["action"] == "receive"
    assert (
        document["channels"]["redline.violations.v1"]["bindings"]["kafka"]["topicConfiguration"][
            "retention.ms"
        ]
        == -1
    )
    assert len(list((EVENTS_DIR / "schemas").glob("*.json"))) == len(PAYLOAD_TYPES) + 1
