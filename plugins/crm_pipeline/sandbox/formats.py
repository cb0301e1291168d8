"""Render a world order, as of a moment, in each platform's wire format.

Field names and enums follow the platforms' published API documentation, as
summarized at the top of each connector (extract/<platform>.py). Where a fact is
unconfirmed there, the choice made here is named in a comment so it is easy to
correct in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_pipeline.sandbox.world import TZ, Order, _h

USD_PER_CNY = 1 / 7.2  # the Shopify store sells in USD


def _top_time(t: datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is not TZ:
        t = t.astimezone(TZ)
    return t.isoformat(" ", "seconds")[:19]  # "YYYY-MM-DD HH:MM:SS" (isoformat is C-fast, strftime is not)


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(TZ).isoformat(timespec="seconds") if t else None


def _money(x: float) -> str:
    return f"{x:.2f}"


def mask_mobile(phone: str) -> str:
    # Masking format is UNCONFIRMED in the reference; 3+4 stars+4 is what sellers report.
    return phone[:3] + "****" + phone[-4:]


def oaid_for(order: Order) -> str:
    return f"OA{_h('oaid', order.seq) % 10**20:020d}"


def taobao_open_uid(order: Order) -> str:
    return f"AAH{_h('tb-uid', order.person.person_id) % 36**10:010d}"


# -- Taobao TOP ---------------------------------------------------------------
TOP_STATUS = {
    "unpaid": "WAIT_BUYER_PAY",
    "closed": "TRADE_CLOSED_BY_TAOBAO",
    "paid": "WAIT_SELLER_SEND_GOODS",
    "shipped": "WAIT_BUYER_CONFIRM_GOODS",
    "completed": "TRADE_FINISHED",
    "refunded": "TRADE_CLOSED",
}


def taobao_trade(o: Order, as_of: datetime) -> dict:
    status = o.status(as_of)
    refunded = status == "refunded"
    shipped = o.at(o.shipped, as_of)
    end = o.at(o.finished, as_of) or o.at(o.closed, as_of) or o.at(o.refunded, as_of)
    # a returned line is a sub-order refunded in full: refund_status SUCCESS, ended early
    returned = {line: r.at for r in o.refunds_as_of(as_of) for line in r.lines}
    trade = {
        "tid": int(o.order_id),
        "tid_str": o.order_id,
        "status": TOP_STATUS[status],
        "type": "fixed",
        "trade_from": "WAP,JHS" if o.flash_sale else "WAP",
        "created": _top_time(o.created),
        "modified": _top_time(o.modified(as_of)),
        "pay_time": _top_time(o.at(o.paid, as_of)),
        "consign_time": _top_time(shipped),
        "end_time": _top_time(end),
        "buyer_nick": o.person.nickname[:1] + "**",
        "buyer_open_uid": taobao_open_uid(o),
        "receiver_name": o.receiver_name,
        "receiver_mobile": mask_mobile(o.phone),
        "receiver_state": o.person.province,
        "receiver_city": o.person.city,
        "receiver_district": o.person.district,
        "receiver_address": o.person.street,
        "receiver_zip": o.person.zip,
        "oaid": oaid_for(o),
        "payment": _money(o.total),
        "total_fee": _money(o.subtotal),
        "post_fee": _money(o.post_fee),
        "discount_fee": _money(o.discount),
        "buyer_rate": bool(o.buyer_rate and status == "completed"),
        "seller_rate": False,
        "seller_memo": "已联系" if o.remark_updates else None,
        "orders": {
            "order": [
                {
                    "oid": int(o.order_id) * 10 % 10**19 + n,
                    "num_iid": 600_000_000_000 + int(i.sku[-4:]),
                    "outer_iid": i.sku,
                    "title": i.title,
                    "num": i.qty,
                    "price": _money(i.price),
                    "total_fee": _money(i.price * i.qty),
                    "payment": _money(i.price * i.qty),
                    "status": TOP_STATUS[status],
                    "refund_status": "SUCCESS" if refunded or i.line_id in returned else "NO_REFUND",
                    "refund_id": 900_000_000 + i.line_id if refunded or i.line_id in returned else None,
                    "logistics_company": o.carrier if shipped else None,
                    "invoice_no": o.tracking_no if shipped else None,
                    "consign_time": _top_time(shipped),
                    "end_time": _top_time(returned.get(i.line_id) or end),
                    "buyer_rate": bool(o.buyer_rate and status == "completed"),
                }
                for n, i in enumerate(o.items)
            ]
        },
    }
    for sub in trade["orders"]["order"]:
        if sub["refund_id"] is None:
            del sub["refund_id"]
    return {k: v for k, v in trade.items() if v is not None}


def taobao_rate(o: Order) -> dict:
    """One ``taobao.traderates.get`` trade_rate (buyer's rating of the seller)."""
    return {
        "tid": int(o.order_id),
        "oid": int(o.order_id) * 10 % 10**19,
        "role": "buyer",
        "result": o.rating,
        "content": o.review,
        "created": _top_time(o.finished),
        "item_title": o.items[0].title,
        "nick": o.person.nickname[:1] + "**",
    }


def taobao_decrypt(o: Order) -> dict:
    return {
        "oaid": oaid_for(o),
        "tid": o.order_id,
        "name": o.receiver_name,
        "mobile": o.phone,
        "state": o.person.province,
        "city": o.person.city,
        "district": o.person.district,
        "address_detail": o.person.street,
    }


# -- JD JOS -----------------------------------------------------------------------
JD_STATUS = {
    # JD lists orders once paid (online payment); unpaid orders are not returned (UNCONFIRMED).
    "paid": ("WAIT_SELLER_STOCK_OUT", "等待出库"),
    "shipped": ("WAIT_GOODS_RECEIVE_CONFIRM", "等待确认收货"),
    "completed": ("FINISHED_L", "完成"),
    "refunded": ("TRADE_CANCELED", "已取消(退款)"),
    "closed": ("TRADE_CANCELED", "已取消"),
}


def jd_visible(o: Order, as_of: datetime) -> bool:
    return o.at(o.paid, as_of) is not None


def jd_order(o: Order, as_of: datetime) -> dict:
    status = o.status(as_of)
    state, remark = JD_STATUS[status]
    shipped = o.at(o.shipped, as_of)
    return {
        "orderId": o.order_id,
        "venderId": "10086",
        "orderType": "22",
        "payType": "4-在线支付",
        "orderTotalPrice": _money(o.subtotal + o.post_fee),
        "orderSellerPrice": _money(o.total - o.post_fee),
        "orderPayment": _money(o.total),
        "freightPrice": _money(o.post_fee),
        "sellerDiscount": _money(o.discount),
        "orderState": state,
        "orderStateRemark": remark,
        "orderStartTime": _top_time(o.created),
        "orderEndTime": _top_time(o.at(o.finished, as_of) or o.at(o.refunded, as_of)),
        "modified": _top_time(o.modified(as_of)),
        "paymentConfirmTime": _top_time(o.at(o.paid, as_of)),
        "pin": f"jd_{_h('jd-pin', o.person.person_id) % 16**10:010x}",
        "open_id_buyer": f"o{_h('jd-open', o.person.person_id) % 36**12:012d}",
        "waybill": o.tracking_no if shipped else "",
        "logisticsId": str(_h("carrier", o.carrier) % 1000) if shipped and o.carrier else "",
        "logisticsCompany": o.carrier if shipped else "",  # name beside the id (UNCONFIRMED field)
        "consigneeInfo": {
            "fullname": o.receiver_name,
            "telephone": "",
            "mobile": mask_mobile(o.phone),
            "fullAddress": o.person.address,
            "province": o.person.province,
            "city": o.person.city,
            "county": o.person.district,
        },
        "itemInfoList": [
            {
                "skuId": str(700_000 + int(i.sku[-4:])),
                "outerSkuId": i.sku,
                "skuName": i.title,
                "jdPrice": _money(i.price),
                "itemTotal": str(i.qty),
                "wareId": str(900_000 + int(i.sku[-4:])),
            }
            for i in o.items
        ],
        "orderRemark": "",
        "venderRemark": "已联系" if o.remark_updates else "",
    }


# -- Shopify Admin REST ----------------------------------------------------------------
def _usd(x: float) -> str:
    return f"{x * USD_PER_CNY:.2f}"


def shopify_order(o: Order, as_of: datetime) -> dict:
    status = o.status(as_of)
    p = o.person
    shipped = o.at(o.shipped, as_of)
    partial = o.refunds_as_of(as_of)
    financial = {
        "unpaid": "pending",
        "closed": "voided",
        "paid": "partially_refunded" if partial else "paid",
        "shipped": "partially_refunded" if partial else "paid",
        "completed": "partially_refunded" if partial else "paid",
        "refunded": "refunded",
    }[status]
    number = 1000 + o.seq
    phone_styles = ("+86" + o.phone, f"{o.phone[:3]} {o.phone[3:7]} {o.phone[7:]}", "+86 " + o.phone)
    return {
        "id": int(o.order_id),
        "admin_graphql_api_id": f"gid://shopify/Order/{o.order_id}",
        "name": f"#{number}",
        "order_number": number,
        "email": p.email,
        "phone": "+86" + o.phone,
        "created_at": _iso(o.created),
        "updated_at": _iso(o.modified(as_of)),
        "processed_at": _iso(o.at(o.paid, as_of) or o.created),
        "cancelled_at": _iso(o.at(o.closed, as_of)),
        "cancel_reason": "customer" if o.at(o.closed, as_of) else None,
        "closed_at": _iso(o.at(o.finished, as_of)),
        "financial_status": financial,
        "fulfillment_status": "fulfilled" if shipped else None,
        "currency": "USD",
        "presentment_currency": "USD",
        "total_price": _usd(o.total),
        "subtotal_price": _usd(o.subtotal - o.discount),
        "total_discounts": _usd(o.discount),
        "total_tax": "0.00",
        "buyer_accepts_marketing": o.seq % 3 != 0,
        "tags": "flash-sale" if o.flash_sale else "",
        "note": "已联系" if o.remark_updates else None,
        "customer": {
            "id": 7_000_000_000 + p.person_id,
            "email": p.email,
            "first_name": p.name[1:],
            "last_name": p.name[:1],
            "phone": "+86" + p.phone,
            "state": "enabled",
            "email_marketing_consent": {"state": "subscribed" if o.seq % 3 else "not_subscribed"},
            "sms_marketing_consent": {"state": "subscribed" if o.seq % 4 else "not_subscribed"},
        },
        "shipping_address": {
            "name": o.receiver_name,
            "first_name": p.name[1:],
            "last_name": p.name[:1],
            "phone": phone_styles[o.seq % 3],
            "address1": p.street,
            "address2": p.district,
            "city": p.city,
            "province": p.province,
            "zip": p.zip,
            "country": "China",
            "country_code": "CN",
        },
        "line_items": [
            {
                "id": i.line_id,
                "product_id": 8_000_000 + int(i.sku[-4:]),
                "variant_id": 9_000_000 + int(i.sku[-4:]),
                "sku": i.sku,
                "title": i.title,
                "name": i.title,
                "quantity": i.qty,
                "price": _usd(i.price),
                "vendor": "CRM Demo",
            }
            for i in o.items
        ],
        "fulfillments": _shopify_fulfillments(o, as_of),
        "refunds": _shopify_refunds(o, as_of),
    }


def _shopify_fulfillments(o: Order, as_of: datetime) -> list[dict]:
    """A failed or cancelled first attempt (status failure | cancelled), then the shipment."""
    out = []
    failed = o.at(o.failed_fulfilment, as_of)
    if failed:
        out.append({"id": 4_500_000 + o.seq, "order_id": int(o.order_id), "status": o.failed_fulfilment_status,
                    "tracking_company": o.carrier, "tracking_number": f"X{o.tracking_no}",
                    "tracking_numbers": [f"X{o.tracking_no}"], "created_at": _iso(failed), "updated_at": _iso(failed)})
    shipped = o.at(o.shipped, as_of)
    if shipped:
        out.append({"id": 4_000_000 + o.seq, "order_id": int(o.order_id), "status": "success",
                    "tracking_company": o.carrier, "tracking_number": o.tracking_no,
                    "tracking_numbers": [o.tracking_no], "created_at": _iso(shipped), "updated_at": _iso(shipped)})
    return out


def _shopify_refund(o: Order, n: int, at: datetime, amount_cny: float, lines: tuple[int, ...], note: str) -> dict:
    """One refund as the REST Order embeds it (the shape of Shopify's own example order):
    refund_line_items for returned lines, and the money in a transaction of kind refund."""
    rid = 3_000_000 + o.seq * 10 + n
    items = {i.line_id: i for i in o.items}
    return {
        "id": rid, "order_id": int(o.order_id), "created_at": _iso(at), "processed_at": _iso(at),
        "note": note, "restock": bool(lines),
        "refund_line_items": [
            {"id": rid * 10 + k, "line_item_id": line, "quantity": items[line].qty,
             "subtotal": float(_usd(items[line].price * items[line].qty)),
             "subtotal_set": {"shop_money": {"amount": _usd(items[line].price * items[line].qty), "currency_code": "USD"}},
             "total_tax": 0.0}
            for k, line in enumerate(lines)
        ],
        "transactions": [
            {"id": rid * 10 + 9, "order_id": int(o.order_id), "kind": "refund", "status": "success",
             "amount": _usd(amount_cny), "currency": "USD", "created_at": _iso(at), "processed_at": _iso(at)}
        ],
    }


def _shopify_refunds(o: Order, as_of: datetime) -> list[dict]:
    out = [_shopify_refund(o, n, r.at, r.amount, r.lines, "退货" if r.lines else "部分退款")
           for n, r in enumerate(o.refunds_as_of(as_of))]
    if o.at(o.refunded, as_of):
        out.append(_shopify_refund(o, 9, o.refunded, o.total, (), "退款"))
    return out


# -- WooCommerce REST v3 -------------------------------------------------------------------
WOO_STATUS = {
    "unpaid": "pending",
    "closed": "cancelled",
    "paid": "processing",
    "shipped": "completed",  # WooCommerce has no "shipped"; completed = fulfilled
    "completed": "completed",
    "refunded": "refunded",
}


def _woo_local(t: datetime | None) -> str | None:
    return t.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S") if t else None


def _woo_gmt(t: datetime | None) -> str | None:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if t else None


def woo_order(o: Order, as_of: datetime) -> dict:
    status = o.status(as_of)
    p = o.person
    shipped = o.at(o.shipped, as_of)
    completed = o.at(o.shipped, as_of)  # the shop marks completed when shipped
    phone = (o.phone, f"+86 {o.phone[:3]}-{o.phone[3:7]}-{o.phone[7:]}", f"86{o.phone}")[o.seq % 3]
    address = {
        "first_name": p.name[1:],
        "last_name": p.name[:1],
        "company": "",
        "address_1": p.street,
        "address_2": p.district,
        "city": p.city,
        "state": p.province,
        "postcode": p.zip,
        "country": "CN",
    }
    meta = []
    if shipped:
        # Shipment Tracking plugin convention (UNCONFIRMED key names, see reference §2).
        meta.append(
            {
                "id": 50_000 + o.seq,
                "key": "_wc_shipment_tracking_items",
                "value": [
                    {
                        "tracking_provider": o.carrier,
                        "tracking_number": o.tracking_no,
                        "date_shipped": str(int(shipped.timestamp())),
                    }
                ],
            }
        )
    return {
        "id": int(o.order_id),
        "parent_id": 0,
        "number": o.order_id,
        "order_key": f"wc_order_{_h('wc', o.seq) % 16**12:012x}",
        "created_via": "checkout",
        "status": WOO_STATUS[status],
        "currency": "CNY",
        "date_created": _woo_local(o.created),
        "date_created_gmt": _woo_gmt(o.created),
        "date_modified": _woo_local(o.modified(as_of)),
        "date_modified_gmt": _woo_gmt(o.modified(as_of)),
        "date_paid": _woo_local(o.at(o.paid, as_of)),
        "date_paid_gmt": _woo_gmt(o.at(o.paid, as_of)),
        "date_completed": _woo_local(completed),
        "date_completed_gmt": _woo_gmt(completed),
        "discount_total": _money(o.discount),
        "shipping_total": _money(o.post_fee),
        "total": _money(o.total),
        "total_tax": "0.00",
        "prices_include_tax": True,
        "customer_id": 20_000 + p.person_id,
        "customer_note": "",
        "billing": {**address, "email": p.email or "", "phone": phone},
        "shipping": address,
        "payment_method": "alipay",
        "payment_method_title": "支付宝",
        "transaction_id": f"2024{o.seq:012d}" if o.at(o.paid, as_of) else "",
        "meta_data": meta,
        "line_items": [
            {
                "id": i.line_id,
                "name": i.title,
                "product_id": 100 + int(i.sku[-4:]),
                "variation_id": 0,
                "quantity": i.qty,
                "subtotal": _money(i.price * i.qty),
                "total": _money(i.price * i.qty),
                "sku": i.sku,
                "price": i.price,
            }
            for i in o.items
        ],
        # refunds[] {id, reason, total}: the total negative, newest first (reference §2)
        "refunds": ([{"id": 60_000 + o.seq, "reason": "退款", "total": "-" + _money(o.total)}] if o.at(o.refunded, as_of)
                    else [])
        + [{"id": 61_000 + o.seq * 10 + n, "reason": "退货" if r.lines else "部分退款", "total": "-" + _money(r.amount)}
           for n, r in reversed(list(enumerate(o.refunds_as_of(as_of))))],
    }


# -- Youzan (WeChat shops) ----------------------------------------------------------------
# youzan.trades.sold.get 4.0.0 (reference §5). The status enum beyond TRADE_SUCCESS, the
# refund_state / close_type codes and the line-item fields are UNCONFIRMED there; the
# choices are named here (and read in dbt models/staging/youzan/stg_youzan__orders.sql) so they are
# corrected in one place each.
YOUZAN_STATUS = {
    "unpaid": ("WAIT_BUYER_PAY", "待付款"),
    "paid": ("WAIT_SELLER_SEND_GOODS", "待发货"),
    "shipped": ("WAIT_BUYER_CONFIRM_GOODS", "已发货"),
    "completed": ("TRADE_SUCCESS", "已完成"),
    "closed": ("TRADE_CLOSE", "已关闭"),
    "refunded": ("TRADE_CLOSE", "已关闭"),
}
YOUZAN_REFUND_FULL = 2  # refund_state of a fully refunded order (UNCONFIRMED; 0 = no refund, as in Y2)
YOUZAN_REFUND_PARTIAL = 1  # refund_state with a partial refund (UNCONFIRMED)
# Refunds done: full_order_info.refund_order[] (UNCONFIRMED placement), each with the fields of
# Youzan's refund push message ([3P] TRADE_ORDER_REFUND: oid, refund_id, refund_state,
# refunded_fee, refund_type, update_time); SAFE_FINISHED is a refund paid out.
YOUZAN_REFUND_DONE = "SAFE_FINISHED"


def _yz_keystream(shop_id: str, n: int) -> bytes:
    out = b""
    block = 0
    while len(out) < n:
        out += _h("yz-key", shop_id, block).to_bytes(8, "big")
        block += 1
    return out[:n]


def yz_encrypt(shop_id: str, text: str) -> str:
    """Youzan's ciphertext shape ``$<base64>$1$`` (reference §5): keyed per shop, as Youzan's
    keys are; deterministic, so one phone gives one ciphertext within a shop."""
    import base64

    raw = text.encode("utf-8")
    tag = _h("yz-tag", shop_id).to_bytes(8, "big")[:3]
    body = tag + bytes(a ^ b for a, b in zip(raw, _yz_keystream(shop_id, len(raw)), strict=True))
    return "$" + base64.b64encode(body).decode() + "$1$"


def yz_decrypt(shop_id: str, cipher: str) -> str | None:
    """Plain text of a ciphertext made for ``shop_id``; None when it was not (another
    shop's key, or not a ciphertext)."""
    import base64

    from crm_pipeline.extract.youzan import is_ciphertext

    if not is_ciphertext(cipher):
        return None
    try:
        body = base64.b64decode(cipher[1:-3], validate=True)
    except ValueError:
        return None
    if body[:3] != _h("yz-tag", shop_id).to_bytes(8, "big")[:3]:
        return None
    raw = body[3:]
    return bytes(a ^ b for a, b in zip(raw, _yz_keystream(shop_id, len(raw)), strict=True)).decode("utf-8")


def youzan_open_id(o: Order) -> str:
    return f"lDWyZ{_h('yz-open', o.person.person_id) % 10**21:021d}"


def youzan_order(o: Order, as_of: datetime) -> dict:
    """One ``full_order_info_list`` entry: ``{"full_order_info": {...}}``. Missing times
    are empty strings, as Youzan sends them (Y2)."""
    status = o.status(as_of)
    state, state_str = YOUZAN_STATUS[status]
    p, shop = o.person, o.shop.shop_id
    refunded = status == "refunded"

    def t(x: datetime | None) -> str:
        return _top_time(x) or ""

    end = o.at(o.closed, as_of) or o.at(o.refunded, as_of)
    partial = o.refunds_as_of(as_of)
    oids = {i.line_id: f"{o.order_id[1:15]}{n + 1:04d}" for n, i in enumerate(o.items)}
    items = {i.line_id: i for i in o.items}
    refund_order = [
        {"oid": oids[line] if r.lines else oids[o.items[0].line_id],
         "refund_id": f"{o.order_id[1:]}R{n}{k}", "refund_state": YOUZAN_REFUND_DONE,
         "refunded_fee": _money(items[line].price * items[line].qty) if r.lines else _money(r.amount),
         "refund_type": "REFUND_AND_RETURN" if r.lines else "REFUND_ONLY", "update_time": t(r.at)}
        for n, r in enumerate(partial) for k, line in enumerate(r.lines or (None,))
    ]
    return {
        "full_order_info": {
            "order_info": {
                "tid": o.order_id,
                "status": state,
                "status_str": state_str,
                "type": 0,
                "created": t(o.created),
                "pay_time": t(o.at(o.paid, as_of)),
                "consign_time": t(o.at(o.shipped, as_of)),
                "success_time": t(o.at(o.finished, as_of)),
                "update_time": t(o.modified(as_of)),
                "confirm_time": "",
                "expired_time": t(o.created + timedelta(hours=72)),  # unpaid orders close after 72 h
                "pay_type": 10,
                "pay_type_str": "WEIXIN_DAIXIAO",
                "close_type": (2 if refunded else 1) if end else 0,
                "refund_state": YOUZAN_REFUND_FULL if refunded else YOUZAN_REFUND_PARTIAL if partial else 0,
                "express_type": 0,
                "shop_name": o.shop.name,
                "node_kdt_id": 134529034,
                "root_kdt_id": 134529034,
            },
            "buyer_info": {
                "yz_open_id": youzan_open_id(o),
                "outer_user_id": f"oY0DB{_h('wx-openid', p.person_id) % 36**16:023d}",
                "buyer_phone": yz_encrypt(shop, p.phone),
                "fans_nickname": yz_encrypt(shop, p.nickname),
                "fans_id": 19_000_000_000 + p.person_id,
                "fans_type": 1,
            },
            "address_info": {
                "receiver_name": yz_encrypt(shop, o.receiver_name),
                "receiver_tel": yz_encrypt(shop, o.phone),
                "delivery_province": p.province,
                "delivery_city": p.city,
                "delivery_district": p.district,
                "delivery_address": yz_encrypt(shop, p.street),
                "delivery_postal_code": p.zip,
                "self_fetch_info": "",
            },
            "pay_info": {
                "payment": _money(o.total),
                "total_fee": _money(o.subtotal),
                "post_fee": _money(o.post_fee),
            },
            "orders": [
                {
                    "oid": oids[i.line_id],
                    "item_id": 300_000 + int(i.sku[-4:]),
                    "sku_id": 400_000 + int(i.sku[-4:]),
                    "outer_sku_id": i.sku,
                    "title": i.title,
                    "num": i.qty,
                    "price": _money(i.price),
                    "payment": _money(i.price * i.qty),
                }
                for n, i in enumerate(o.items)
            ],
            "refund_order": refund_order,
            "remark_info": {"buyer_message": "", "trade_memo": "已联系" if o.remark_updates else ""},
            "source_info": {"is_offline_order": False, "order_mark": "wx_shop"},
        }
    }
