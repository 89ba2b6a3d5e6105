"""The demo company: its two projects, their consultants and sales, and the odds
and word lists the plan draws its people, contacts and service cases from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoProject:
    code: str
    name: str
    english: str
    consultants: tuple[str, ...]
    #: weights of the final stage of a customer's relationship with the project
    stage_weights: tuple[float, ...]
    #: (min, max) days ago of the final event, per final stage
    final_days: dict[str, tuple[int, int]]
    price_per_m2: tuple[int, int]
    buildings: int
    source_weights: dict[str, float]


SOURCES = ("来访", "电话", "中介", "网络广告", "老带新")

#: XL2 is on sale now (many visitors and contracts, first handovers); YH1 was handed
#: over a year ago (mostly owners, a tail of late buyers).
PROJECTS: tuple[DemoProject, ...] = (
    DemoProject(
        code="XL2",
        name="星珑湾二期",
        english="Xinglong Bay Phase II",
        consultants=("liu.yang", "chen.jing", "zhao.lei", "sun.li"),
        stage_weights=(0.52, 0.30, 0.05, 0.10, 0.03),
        final_days={"prospect": (1, 300), "visitor": (1, 280), "subscriber": (1, 45),
                    "buyer": (1, 260), "owner": (1, 40)},
        price_per_m2=(48_000, 56_000),
        buildings=12,
        source_weights={"来访": 0.24, "电话": 0.14, "中介": 0.26, "网络广告": 0.26, "老带新": 0.10},
    ),
    DemoProject(
        code="YH1",
        name="悦湖一期",
        english="Yuehu Phase I",
        consultants=("wang.fang", "zhou.qiang", "wu.min"),
        stage_weights=(0.42, 0.25, 0.01, 0.05, 0.27),
        final_days={"prospect": (30, 1000), "visitor": (20, 900), "subscriber": (1, 45),
                    "buyer": (20, 300), "owner": (300, 420)},
        price_per_m2=(36_000, 42_000),
        buildings=18,
        source_weights={"来访": 0.32, "电话": 0.16, "中介": 0.22, "网络广告": 0.12, "老带新": 0.18},
    ),
)

#: (min, max) days between one funnel event and the next
_GAPS = {"visitor": (0, 60), "subscriber": (0, 40), "buyer": (3, 30), "owner": (150, 420)}
_PERSONA_WEIGHTS = (0.34, 0.33, 0.12, 0.08, 0.13)
_PERSONA_AGES = {"first_time": (24, 35), "upgrader": (32, 50), "investor": (35, 60),
                 "luxury": (38, 62), "retiree": (55, 70)}
_PERSONA_BUDGETS = {"first_time": (150, 320), "upgrader": (300, 650), "investor": (200, 500),
                    "luxury": (800, 2000), "retiree": (200, 420)}  # 万元
_PERSONA_AREAS = {"first_time": (89, 105), "upgrader": (118, 143), "investor": (89, 118),
                  "luxury": (165, 188), "retiree": (105, 128)}
#: ages and birth dates are counted from a fixed day so a seed gives the same people
_REFERENCE_DAY = dt.date(2025, 1, 1)
_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
    "152", "155", "156", "157", "158", "159", "166", "176", "177", "180", "181", "182",
    "183", "185", "186", "187", "188", "189", "198", "199",
)
_ID_REGIONS = ("440305", "440304", "440106", "310115", "110105", "320106", "330106",
               "510107", "420106", "430104", "350203", "370202")
_MAIL_DOMAINS = ("qq.com", "qq.com", "163.com", "126.com", "sina.com", "139.com", "gmail.com")

_CALL_NOTES = (
    "电话回访：关注三房户型", "电话回访：询问首付比例", "来电咨询开盘时间", "电话邀约周末到访",
    "询问学区划分", "电话沟通贷款方案", "回访：考虑中，下月再联系", "询问车位价格",
)
_VISIT_NOTES = ("到访售楼处，看了样板间", "带家人复访，比较两个户型", "到访：关注楼层和朝向",
                "参加周末暖场活动", "到访：意向较强，预约认购")
_WECHAT_NOTES = ("微信发送户型图", "微信推送优惠活动", "微信确认到访时间")

# category -> (priority weights low/normal/high/urgent, department, assignees, subjects)
_CASE_KINDS: dict[str, tuple[tuple[float, ...], str, tuple[str, ...], tuple[str, ...]]] = {
    "repair": ((0.15, 0.50, 0.25, 0.10), "工程部", ("gc.zhangwei", "gc.lihua"),
               ("卫生间漏水", "入户门关不严", "墙面开裂", "地暖不热", "窗户渗水", "电梯异响")),
    "complaint": ((0.05, 0.40, 0.40, 0.15), "客服中心", ("kf.wangli", "kf.zhaomin"),
                  ("交付时间延期", "实测面积与合同不符", "物业费收费有异议", "小区噪音扰民",
                   "销售承诺未兑现")),
    "inquiry": ((0.40, 0.55, 0.05, 0.0), "销售部", ("liu.yang", "wang.fang"),
                ("咨询产权证办理进度", "咨询贷款审批进度", "咨询装修规定", "咨询车位出售")),
}
_PRIORITIES = ("low", "normal", "high", "urgent")
#: how cases come in, dealt in turn (the hotline and WeChat most)
_INTAKE = ("hotline", "wechat", "property_desk", "hotline", "walk_in", "wechat", "mailbox",
           "hotline", "forum", "wechat", "chairman", "hotline")
#: the demo's service centre when recrm.toml routes nothing: repairs go to engineering in
#: turn, complaints to the service centre in turn, inquiries to the sales desk
DEMO_ROUTING = (("repair", "工程部", "round_robin"), ("complaint", "客服中心", "round_robin"),
                ("inquiry", "销售部", "desk"))
#: the escalation levels' departments above the projects' desks, with their staff
_LEVEL_STAFF = (("CRC", "城市公司客户关系中心", "crc.sun", "孙琳"),
                ("HQ", "集团总部客户关系部", "hq.zhou", "周总"))
#: outcomes are dealt in this order rather than drawn, so even a small demo has
#: open, in-progress, resolved and closed cases (about 40 % still active)
_CASE_OUTCOMES = ("open", "closed", "in_progress", "closed", "resolved", "open", "closed",
                  "closed", "in_progress", "resolved", "open", "reopened")
