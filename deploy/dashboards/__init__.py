"""Grafana dashboards as typed code (grafana-foundation-sdk): the overview of the loop,
one per department, and the subscribers'.

Every query uses only the metrics of services/metrics.py, the subscriber connector's
`redline_subscriber_staleness_seconds`, and `up`; tests/unit/test_deploy.py checks the
names and tests/unit/test_promtool.py has promtool parse every expression.
"""

from __future__ import annotations

from deploy.dashboards.board import Json, department_uid
from deploy.dashboards.department import department_dashboard
from deploy.dashboards.overview import overview
from deploy.dashboards.panels import DATASOURCE
from deploy.dashboards.subscribers import subscribers
from events.catalogue import Catalogue

__all__ = ["DATASOURCE", "all_dashboards", "department_uid", "panel_queries"]


def all_dashboards(catalogue: Catalogue) -> dict[str, Json]:
    """Every dashboard, by path relative to deploy/grafana/dashboards."""
    dashboards = {
        "core/redline-overview.json": overview(catalogue),
        "core/redline-subscribers.json": subscribers(),
    }
    for department in catalogue.departments:
        path = f"departments/redline-department-{department.code}.json"
        dashboards[path] = department_dashboard(department)
    return dashboards


def panel_queries(dashboard_json: Json) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [
        target["expr"]
        for item in dashboard_json["panels"]
        for target in item.get("targets", [])
        if "expr" in target
    ]
