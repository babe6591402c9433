"""Migrations once released never change (a database that applied one refuses its edit), and
the SQL that several schemas share is written once and included (`-- include: <name>`)."""

from __future__ import annotations

from importlib import resources

import pytest

from services.adapters.migrate import expand_includes, load_migrations
from services.errors import DatabaseError

PACKAGES = (
    "services.migrations",
    "services.departments.migrations",
    "services.blocklist.migrations",
    "services.feedback.migrations",
)

# What each released migration applies, as its checksum. A new migration adds its row; a
# changed row means an applied migration was edited, which every database that applied it
# refuses at start-up ("add a new migration instead").
RELEASED = {
    (
        "services.migrations",
        "0001_foundation",
    ): "6085fe76b088a335eb0e0580335fafad3ecbe862decd73f3aa1d67ef5e8d39f7",
    (
        "services.migrations",
        "0002_registry",
    ): "1da8630b0723c8bbe5279a838053e29cbb86c24466d68c951e731376155af0ed",
    (
        "services.migrations",
        "0003_feedback",
    ): "736922b3ce64fa124901cb4cd141da787118bb4f4d3ca1791d7ef9bb9ab04b84",
    (
        "services.migrations",
        "0004_audit",
    ): "ff28249919c1facaa0ba136eb077fbe2c83b60057b62ca32045eeb0cd76c49cc",
    (
        "services.migrations",
        "0005_restoration_sign_offs",
    ): "69a91fb8c3ea44d164c236a42eaa20c641a7556be63c3213bb9d51e72cf77639",
    (
        "services.migrations",
        "0006_case_facts",
    ): "155a0321c10364c0d6b9597e5b6bfb8860fdabf906b2c180d0f283ca9816b07a",
    (
        "services.migrations",
        "0007_response_cycles",
    ): "d972bce809376e99b11489106facfaf8053169cd32c6f69abb8de74b3a5efe98",
    (
        "services.migrations",
        "0008_outbox_quarantine",
    ): "86d6bd1476ba863b2709f9aec5b11e8deadeed37ae65dc009b0c2ca8d724b77a",
    (
        "services.migrations",
        "0009_referrals",
    ): "06afc1f12f2093ab2d2b6bcb16b8cfa8389943db487162c50f8fcc59be90a8a7",
    (
        "services.migrations",
        "0010_township_accountability",
    ): "1e2d99595b750c5db90d86ec356d122232656a8b00ac3da84483c2c8f5bfd798",
    (
        "services.departments.migrations",
        "0001_department",
    ): "48f44eac8f5a2ba8e9f1b0f6da4e6b7450774c5ae6b887892506f6bf3e31b00d",
    (
        "services.departments.migrations",
        "0002_audit",
    ): "ff28249919c1facaa0ba136eb077fbe2c83b60057b62ca32045eeb0cd76c49cc",
    (
        "services.departments.migrations",
        "0003_blocks_by_case",
    ): "2822174e5d181c111b7028cfed4081cc569c9ae57b2456c8299b68b1e1943177",
    (
        "services.departments.migrations",
        "0004_outbox_wakes_in_process",
    ): "321bbf89ab260ada93083b500c3d8d19471b26648260d553e994c779628f27ab",
    (
        "services.departments.migrations",
        "0005_block_targets",
    ): "ee412e188353c1a1037375e1c9d19dcc1fec30bc2cb05af3a24a42391ca42bc2",
    (
        "services.departments.migrations",
        "0006_outbox_quarantine",
    ): "86d6bd1476ba863b2709f9aec5b11e8deadeed37ae65dc009b0c2ca8d724b77a",
    (
        "services.blocklist.migrations",
        "0001_blocklist",
    ): "3d49de1b55bdf2760c5e8ca73717ad23485686efcf3b2b07f3475eeaa50a617c",
    (
        "services.blocklist.migrations",
        "0002_subject_key",
    ): "7e5505700170cc8aec2ea3ca87022b0cc459f64aa4998e379cc54d83a3a6b94e",
    (
        "services.blocklist.migrations",
        "0003_blocks_by_case",
    ): "93abb751b44e844e6d81e91727a774cd2131e58e3bdcc2aa62d3812d19598be2",
    (
        "services.blocklist.migrations",
        "0004_outbox_wakes_in_process",
    ): "321bbf89ab260ada93083b500c3d8d19471b26648260d553e994c779628f27ab",
    (
        "services.blocklist.migrations",
        "0005_why_and_where",
    ): "682445f5bad1f998f0fef5caf769c6ee695af6276094ebb4585546dcd4e6846e",
    (
        "services.blocklist.migrations",
        "0006_vouched",
    ): "0f47cc16264366f60b98b76601a8c14c635c47c3ca9e693d683a44ec1456ac33",
    (
        "services.blocklist.migrations",
        "0007_outbox_quarantine",
    ): "86d6bd1476ba863b2709f9aec5b11e8deadeed37ae65dc009b0c2ca8d724b77a",
    (
        "services.blocklist.migrations",
        "0008_signed_lifts_and_measure_keys",
    ): "a7230c5db7edbf95150fe57e13804a1fc155aad5eff65cac675b294ce314034b",
    (
        "services.blocklist.migrations",
        "0009_cases_by_subject",
    ): "7ff8a6f3b12a391e6d060a965e387af675fd3e1e34cfefa4c89055e050db0cbe",
    (
        "services.feedback.migrations",
        "0001_feedback_outbox",
    ): "9a1d8293c8022c74dcba40ec69303792b231a1f62fe057a64140fd1db8f20e30",
}


def test_every_migration_applies_what_was_released() -> None:
    found = {
        (package, f"{m.version:04d}_{m.name}"): m.checksum
        for package in PACKAGES
        for m in load_migrations(package)
    }
    changed = sorted(key for key in RELEASED if found.get(key) != RELEASED[key])
    assert not changed, f"released migrations whose SQL changed: {changed}"
    assert sorted(found) == sorted(RELEASED), "a new migration: add its checksum to RELEASED"


def test_an_include_is_replaced_by_the_shared_text() -> None:
    shared = resources.files("services.migrations.shared") / "audit_log.sql"
    expanded = expand_includes("-- before\n-- include: audit_log\n-- after\n", "0099_x.sql")
    assert expanded == "-- before\n" + shared.read_text(encoding="utf-8") + "-- after\n"


def test_an_unknown_include_names_the_file_and_the_fragment() -> None:
    with pytest.raises(DatabaseError, match=r"0099_x\.sql includes 'no_such_thing'"):
        expand_includes("-- include: no_such_thing\n", "0099_x.sql")


def test_every_shared_file_is_included_somewhere() -> None:
    shared = {
        entry.name.removesuffix(".sql")
        for entry in resources.files("services.migrations.shared").iterdir()
        if entry.name.endswith(".sql")
    }
    included = set()
    for package in PACKAGES:
        for entry in resources.files(package).iterdir():
            if entry.name.endswith(".sql"):
                text = entry.read_text(encoding="utf-8")
                included |= {name for name in shared if f"-- include: {name}\n" in text}
    assert included == shared
