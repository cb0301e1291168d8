"""Spreadsheets as social sellers and offline stores keep them (for the demo and tests).

Chinese headers, rows without order ids, a pair of identical lines (two real
orders), placeholder phones, a shop front-desk phone shared by walk-in
customers, and a couple of rows a person typed wrong (quarantined on import).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from crm_pipeline.sandbox.world import TZ, World

HEADERS = ["订单号", "昵称", "手机", "邮箱", "省", "市", "地址", "商品", "数量", "实付金额", "付款时间", "状态"]
FRONT_DESK = "13912345678"


def intake_rows(world: World, shop_id: str, until: date) -> list[list]:
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), TZ)
    rows: list[list] = []
    for o in world.by_shop.get(shop_id, []):
        if o.created >= end or o.status(end) in ("unpaid", "closed"):
            continue
        p = o.person
        status = {"refunded": "已退款", "completed": "交易成功", "shipped": "已发货", "paid": "已付款"}[o.status(end)]
        when = o.paid or o.created
        # people write dates every which way
        style = o.seq % 4
        stamp = (when.strftime("%Y-%m-%d %H:%M"), when.strftime("%Y/%m/%d"), when.strftime("%Y%m%d"),
                 when.strftime("%Y-%m-%d"))[style]
        item = o.items[0]
        rows.append([
            f"WX{o.seq:07d}" if o.seq % 3 == 0 else "",  # many rows carry no order id
            p.nickname if o.seq % 2 else p.name,
            o.phone,
            p.email or "",
            p.province, p.city, p.district + p.street,
            item.title, sum(i.qty for i in o.items), f"{o.total:.2f}", stamp, status,
        ])
    # walk-in customers registered with the shop's front-desk phone, and placeholder numbers
    for i in range(8):
        rows.append(["", f"散客{i + 1}", FRONT_DESK, "", "浙江省", "杭州市", "门店自提", "氨基酸洁面乳 120g", 1,
                     "79.00", (until - timedelta(days=i * 11)).isoformat(), "交易成功"])
    rows.append(["", "匿名", "13800000000", "", "浙江省", "杭州市", "门店自提", "控油洗发水 500ml", 1, "69.00",
                 (until - timedelta(days=3)).isoformat(), "交易成功"])
    rows.append(["", "老顾客", "null", "", "浙江省", "杭州市", "门店自提", "控油洗发水 500ml", 1, "69.00",
                 (until - timedelta(days=4)).isoformat(), "交易成功"])
    # two identical lines: the same buyer really bought twice that day
    twin = ["", "周小米", "13655551234", "", "江苏省", "苏州市", "姑苏区人民路8号", "冻干咖啡 30颗", 1, "119.00",
            (until - timedelta(days=2)).isoformat(), "交易成功"]
    rows += [list(twin), list(twin)]
    # typed wrong: an impossible date and a phone with a digit missing
    rows.append(["", "王阿姨", "1381234567", "", "浙江省", "宁波市", "鄞州区", "坚果礼盒 750g", 1, "139.00",
                 (until - timedelta(days=5)).isoformat(), "交易成功"])
    rows.append(["", "李先生", "13787654321", "", "浙江省", "宁波市", "海曙区", "坚果礼盒 750g", 1, "139.00",
                 "2026-02-30", "交易成功"])
    return rows


def write_intake_xlsx(world: World, shop_id: str, until: date, path: Path) -> Path:
    """Deterministic bytes for the same inputs (fixed workbook timestamps)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "订单"
    ws.append(HEADERS)
    for row in intake_rows(world, shop_id, until):
        ws.append(row)
    fixed = datetime(2024, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
