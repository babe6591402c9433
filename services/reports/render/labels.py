"""What the codes of the reports read as on a page, and the colours of their charts."""

from __future__ import annotations

from services.reports.outcomes import Outcome

SOURCE_LABELS = {
    "satellite": "卫片执法",
    "drone": "无人机",
    "camera": "摄像头",
    "patrol": "巡查",
    "petition": "信访",
    "tip": "举报",
    "media": "媒体曝光",
    "online": "网络舆情",
}
LAND_LABELS = {
    "permanent_basic_farmland": "永久基本农田",
    "cultivated": "一般耕地",
    "other_agricultural": "其他农用地",
    "construction": "建设用地",
    "unused": "未利用地",
}
VIOLATION_LABELS = {
    "illegal_construction": "违法建设",
    "illegal_occupation": "非法占地",
    "unauthorised_change_of_use": "擅自改变土地用途",
    "illegal_mining": "非法采矿",
    "greenhouse_housing": "大棚房",
}
RECTIFICATION_LABELS = {
    "demolition": "拆除",
    "confiscation": "没收",
    "restoration_works": "复垦复耕",
    "other": "其他",
}
STATUS_LABELS = {
    "filed": "已立案",
    "penalty_decided": "已作出处罚决定",
    "rectified": "已整改",
    "restored": "已复耕验收",
    "revoked": "已撤销",
    "legalised": "已补办用地手续",
    "confiscated": "已没收到位",
    "closed": "已结案",
}
RECTIFICATION_TEXT = {
    "none": "—",
    "open": "整改中",
    "overdue": "逾期未整改",
    "met": "按期整改",
    "met_late": "逾期后整改",
}
REPORT_STATUS_TEXT = {"draft": "草稿", "submitted": "已报送", "received": "市政府已接收"}
OUTCOME_LABELS: dict[Outcome, str] = {
    "on_time": "按期",
    "late": "逾期完成",
    "failed": "报告失败",
    "unanswered": "逾期未响应",
    "pending": "未到期",
}
PALETTE = ("#2f6f4e", "#8cbf6a", "#c9a227", "#8a6d3b", "#a0a0a0", "#4a7fb5", "#b5524a", "#7a5195")
OUTCOME_COLOURS: dict[Outcome, str] = {
    "on_time": "#2f6f4e",
    "late": "#c9a227",
    "failed": "#b5524a",
    "unanswered": "#6b2d2a",
    "pending": "#a0a0a0",
}
