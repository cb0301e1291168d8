"""A deterministic synthetic seller: buyers, shops, products and two years of orders.

The sandbox platforms serve this world in their own wire formats. Everything is
derived from one seed, so the same settings give byte-identical API responses.

Time model: every order is a timeline of events (created, paid, shipped,
finished, closed, refunded). A platform answers a query "as of" the query's
upper time bound, so the same window always returns the same versions, and
successive nightly windows see the status history unfold.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_F = "芳娜敏静丽艳娟霞秀英玲桂兰萍红燕雪琳晶婷颖倩洁佳欣怡梦瑶璐蕾悦雯"
GIVEN_M = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆晨阳峰坤博文"
NICK_PARTS = ("小", "阿", "大", "老")
NICK_TAILS = ("宝贝", "妈妈", "酱", "同学", "姐", "哥", "猫", "鱼", "米", "豆")

PROVINCES: dict[str, list[tuple[str, list[str]]]] = {
    "浙江省": [("杭州市", ["西湖区", "滨江区", "余杭区"]), ("宁波市", ["鄞州区", "海曙区"])],
    "江苏省": [("南京市", ["鼓楼区", "玄武区"]), ("苏州市", ["姑苏区", "工业园区"])],
    "广东省": [("广州市", ["天河区", "越秀区", "番禺区"]), ("深圳市", ["南山区", "福田区", "宝安区"])],
    "上海市": [("上海市", ["浦东新区", "徐汇区", "静安区", "闵行区"])],
    "北京市": [("北京市", ["朝阳区", "海淀区", "东城区"])],
    "四川省": [("成都市", ["武侯区", "锦江区", "高新区"])],
    "湖北省": [("武汉市", ["洪山区", "江汉区"])],
    "山东省": [("济南市", ["历下区"]), ("青岛市", ["市南区", "崂山区"])],
    "福建省": [("厦门市", ["思明区", "湖里区"]), ("福州市", ["鼓楼区"])],
    "河南省": [("郑州市", ["金水区", "二七区"])],
    "湖南省": [("长沙市", ["岳麓区", "芙蓉区"])],
    "陕西省": [("西安市", ["雁塔区", "碑林区"])],
}
ROADS = "人民路 解放路 中山路 建设路 文一路 学院路 长江路 黄河路 新华路 光明街 和平路 幸福里".split()
CARRIERS = ("顺丰速运", "中通快递", "圆通速递", "韵达快递", "申通快递", "京东物流", "邮政EMS")
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com")

# sku, title, category, price (CNY), usage period in days (R11)
PRODUCTS: tuple[tuple[str, str, str, float, int], ...] = (
    ("SKU-1001", "玻尿酸保湿精华液 30ml", "护肤", 189.0, 45),
    ("SKU-1002", "氨基酸洁面乳 120g", "护肤", 79.0, 60),
    ("SKU-1003", "烟酰胺美白面膜 10片", "护肤", 129.0, 30),
    ("SKU-1004", "防晒霜 SPF50 50ml", "护肤", 149.0, 60),
    ("SKU-1005", "修护晚霜 50g", "护肤", 259.0, 60),
    ("SKU-2001", "丝绒哑光口红", "彩妆", 99.0, 120),
    ("SKU-2002", "持妆粉底液 30ml", "彩妆", 199.0, 90),
    ("SKU-2003", "眼影盘 九色", "彩妆", 159.0, 180),
    ("SKU-3001", "控油洗发水 500ml", "个护", 69.0, 45),
    ("SKU-3002", "香氛沐浴露 500ml", "个护", 59.0, 40),
    ("SKU-3003", "电动牙刷替换刷头 4支", "个护", 89.0, 90),
    ("SKU-4001", "有机燕麦片 1kg", "食品", 45.0, 20),
    ("SKU-4002", "冻干咖啡 30颗", "食品", 119.0, 30),
    ("SKU-4003", "坚果礼盒 750g", "食品", 139.0, 25),
    ("SKU-5001", "婴儿纸尿裤 L码 52片", "母婴", 109.0, 14),
    ("SKU-5002", "婴儿湿巾 80抽x6包", "母婴", 49.0, 20),
)


@dataclass(frozen=True)
class ShopDef:
    shop_id: str
    platform: str
    name: str
    weight: float  # share of a person's orders when they use this platform
    start: date  # the shop's first day


SHOPS: tuple[ShopDef, ...] = (
    ShopDef("tmall_flagship", "taobao", "天猫旗舰店", 0.8, date(2024, 6, 1)),
    ShopDef("taobao_outlet", "taobao", "淘宝特卖店", 0.2, date(2025, 3, 1)),
    ShopDef("jd_pop", "jd", "京东POP店", 1.0, date(2024, 6, 1)),
    ShopDef("shopify_global", "shopify", "Global Store (Shopify)", 1.0, date(2024, 6, 1)),
    ShopDef("woo_site", "woocommerce", "官网商城 (WooCommerce)", 1.0, date(2024, 6, 1)),
    ShopDef("youzan_wx", "youzan", "有赞微商城", 1.0, date(2024, 6, 1)),
    ShopDef("wechat_social", "intake", "微信社群团购", 1.0, date(2024, 6, 1)),
)
PLATFORM_SHARE = {"taobao": 0.55, "jd": 0.30, "shopify": 0.15, "woocommerce": 0.12, "intake": 0.18, "youzan": 0.15}


@dataclass(eq=False)
class Person:
    person_id: int
    name: str
    nickname: str
    gender: str
    birthday: date | None
    phone: str
    alt_phone: str | None
    email: str | None
    province: str
    city: str
    district: str
    street: str
    zip: str
    platforms: tuple[str, ...]
    cycle_days: int
    churn_p: float

    @property
    def address(self) -> str:
        return f"{self.province}{self.city}{self.district}{self.street}"


@dataclass
class Item:
    sku: str
    title: str
    category: str
    price: float
    qty: int
    line_id: int


@dataclass(frozen=True)
class Refund:
    """Money given back on an order that stays paid (issue 29): ``amount`` in CNY; ``lines``
    the line ids whose whole amount it returns (empty: an amount not tied to lines)."""

    at: datetime
    amount: float
    lines: tuple[int, ...] = ()


@dataclass(eq=False)
class Order:
    seq: int
    shop: ShopDef
    order_id: str
    person: Person
    created: datetime
    items: list[Item]
    post_fee: float
    discount: float
    flash_sale: bool
    paid: datetime | None = None
    shipped: datetime | None = None
    finished: datetime | None = None
    closed: datetime | None = None
    refunded: datetime | None = None
    carrier: str | None = None
    tracking_no: str | None = None
    phone: str = ""
    receiver_name: str = ""
    buyer_rate: bool = False
    rating: str | None = None  # good | neutral | bad (TOP traderate result)
    review: str | None = None
    remark_updates: list[datetime] = field(default_factory=list)  # sandbox faults add these
    refunds: list[Refund] = field(default_factory=list)  # partial refunds (the order stays paid)
    failed_fulfilment: datetime | None = None  # a shipment that failed or was cancelled
    failed_fulfilment_status: str = "failure"  # Shopify's fulfillment status for it

    def refunds_as_of(self, as_of: datetime) -> list[Refund]:
        return [r for r in self.refunds if r.at <= as_of]

    @property
    def subtotal(self) -> float:
        return round(sum(i.price * i.qty for i in self.items), 2)

    @property
    def total(self) -> float:
        return round(self.subtotal + self.post_fee - self.discount, 2)

    def events(self) -> list[datetime]:
        times = [self.created, self.paid, self.shipped, self.finished, self.closed, self.refunded,
                 self.failed_fulfilment]
        return sorted([t for t in times if t is not None] + self.remark_updates + [r.at for r in self.refunds])

    def modified(self, as_of: datetime) -> datetime:
        return max(t for t in self.events() if t <= as_of)

    def status(self, as_of: datetime) -> str:
        """Neutral status vocabulary; each platform maps it to its own enum."""
        if self.refunded and self.refunded <= as_of:
            return "refunded"
        if self.closed and self.closed <= as_of:
            return "closed"
        if self.finished and self.finished <= as_of:
            return "completed"
        if self.shipped and self.shipped <= as_of:
            return "shipped"
        if self.paid and self.paid <= as_of:
            return "paid"
        return "unpaid"

    def at(self, when: datetime | None, as_of: datetime) -> datetime | None:
        return when if when is not None and when <= as_of else None


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


class World:
    """The whole synthetic history; build once per process (``World.build``)."""

    def __init__(self, anchor: date, persons: int, seed: int = 20241101, horizon_days: int = 60):
        self.anchor = anchor
        self.seed = seed
        self.start = anchor - timedelta(days=730)
        self.end = anchor + timedelta(days=horizon_days)
        self.rng = random.Random(seed)
        self.persons: list[Person] = [self._person(i) for i in range(persons)]
        self.orders: list[Order] = []
        for person in self.persons:
            self._orders_for(person)
        self._messy_population(int(persons * self.ONE_TIME_PER_PERSON))
        self._index()

    # -- people ---------------------------------------------------------------
    def _phone(self) -> str:
        prefix = self.rng.choice(("138", "139", "137", "135", "150", "151", "158", "186", "187", "188", "176", "199"))
        return prefix + f"{self.rng.randrange(10**8):08d}"

    def _person(self, pid: int) -> Person:
        rng = self.rng
        gender = "F" if rng.random() < 0.68 else "M"
        name = rng.choice(SURNAMES) + "".join(
            rng.choice(GIVEN_F if gender == "F" else GIVEN_M) for _ in range(rng.choice((1, 2)))
        )
        province = rng.choice(list(PROVINCES))
        city, districts = rng.choice(PROVINCES[province])
        platforms = tuple(p for p, share in PLATFORM_SHARE.items() if rng.random() < share) or (
            rng.choice(("taobao", "jd")),
        )
        email = None
        if rng.random() < 0.45 or any(p in platforms for p in ("shopify", "woocommerce")):
            email = f"{'user' if rng.random() < 0.5 else 'cn'}{pid:05d}{rng.randrange(100)}@{rng.choice(EMAIL_DOMAINS)}"
        return Person(
            person_id=pid,
            name=name,
            nickname=rng.choice(NICK_PARTS) + rng.choice(name[1:] or name) + rng.choice(NICK_TAILS),
            gender=gender,
            birthday=date(rng.randrange(1970, 2004), rng.randrange(1, 13), rng.randrange(1, 29))
            if rng.random() < 0.35
            else None,
            phone=self._phone(),
            alt_phone=self._phone() if rng.random() < 0.08 else None,
            email=email,
            province=province,
            city=city,
            district=rng.choice(districts),
            street=f"{rng.choice(ROADS)}{rng.randrange(1, 400)}号{rng.randrange(1, 30)}栋{rng.randrange(101, 2800)}室",
            zip=f"{rng.randrange(100000, 999999)}",
            platforms=platforms,
            cycle_days=int(rng.choice((20, 30, 45, 60, 90, 120, 180))),
            churn_p=rng.choice((0.08, 0.15, 0.25, 0.4, 0.6)),
        )

    # -- orders ---------------------------------------------------------------
    def _shop_for(self, platform: str) -> ShopDef:
        shops = [s for s in SHOPS if s.platform == platform]
        return self.rng.choices(shops, weights=[s.weight for s in shops])[0] if len(shops) > 1 else shops[0]

    def _order_id(self, shop: ShopDef, seq: int, created: datetime) -> str:
        h = _h(self.seed, shop.shop_id, seq)
        if shop.platform == "taobao":
            return str(2_000_000_000_000_000_000 + h % 900_000_000_000_000_000)[:19]
        if shop.platform == "jd":
            return str(200_000_000_000 + h % 90_000_000_000)
        if shop.platform == "shopify":
            return str(5_000_000_000_000 + seq * 1_007)
        if shop.platform == "woocommerce":
            return str(10_000 + seq)
        if shop.platform == "youzan":  # "E" + creation time + 10 digits, as in the reference's sample
            return f"E{created:%Y%m%d%H%M%S}{h % 10**10:010d}"
        return ""  # intake rows mostly carry no order id; the importer derives one

    def _orders_for(self, person: Person) -> None:
        rng = self.rng
        span = (self.end - self.start).days
        t = datetime.combine(self.start + timedelta(days=rng.randrange(span)), time(0), TZ)
        while t.date() <= self.end:
            platform = rng.choice(person.platforms)
            shop = self._shop_for(platform)
            if t.date() >= shop.start:
                self._add_order(person, shop, t)
            if rng.random() < person.churn_p:
                break
            gap = max(3, int(rng.gauss(person.cycle_days, person.cycle_days * 0.3)))
            t = t + timedelta(days=gap)

    # -- what real customer bases hold and the main population lacks (issue 29, item 6) --
    # Drawn from a generator of their own after the main population (whose draws, orders and
    # ids are unchanged): most buyers buy once, a few baskets are huge, and phones and
    # e-mails are shared by people who are not one customer.
    ONE_TIME_PER_PERSON = 0.8  # one-order buyers added per person of the main population
    BIG_BASKET_RATE = 0.03  # of one-time buyers: a basket of many units (long-tailed spend)
    SHARED = (("household", 0.04), ("reassigned", 0.02), ("reused_email", 0.05), ("gift_giver", 0.03))

    def _messy_population(self, count: int) -> None:
        """One-time buyers, some of whom share a contact with a person of the main population:
        ``household`` (the same landline or mobile, another name), ``reassigned`` (the number
        of a person who stopped buying half a year before), ``reused_email`` (a relative's
        address), ``gift_giver`` (two orders of their own, then one to a friend's phone under
        the friend's name). ``self.shared`` lists (kind, new person, other person) for tests."""
        main_rng, self.rng = self.rng, random.Random(self.seed + 29)
        self.shared: list[tuple[str, Person, Person]] = []
        try:
            base = list(self.persons)
            last_order: dict[int, datetime] = {}
            for o in self.orders:
                last_order[o.person.person_id] = max(o.created, last_order.get(o.person.person_id, o.created))
            span = (self.end - self.start).days
            for _ in range(count):
                person = self._person(len(self.persons))
                self.persons.append(person)
                day = datetime.combine(self.start + timedelta(days=self.rng.randrange(span)), time(0), TZ)
                draw, other = self.rng.random(), self.rng.choice(base)
                kind, edge = None, 0.0
                for name, share in self.SHARED:
                    edge += share
                    if kind is None and draw < edge:
                        kind = name
                if kind == "reassigned":
                    free_from = last_order.get(other.person_id, self.start_dt) + timedelta(days=180)
                    if free_from.date() >= self.end:
                        kind = None
                    else:
                        day = datetime.combine(free_from.date() + timedelta(
                            days=self.rng.randrange(max(1, (self.end - free_from.date()).days))), time(0), TZ)
                if kind == "reused_email" and not other.email:
                    kind = None
                if kind in ("household", "reassigned"):
                    person.phone, person.alt_phone = other.phone, None
                elif kind == "reused_email":
                    person.email = other.email
                if kind:
                    self.shared.append((kind, person, other))
                big = self.rng.random() < self.BIG_BASKET_RATE
                scale = int(3 + self.rng.paretovariate(1.2) * 4) if big else 1
                shop = self._shop_for(self.rng.choice(person.platforms))
                if kind == "gift_giver":  # from the account they buy for themselves with
                    days = [day, day + timedelta(days=self.rng.randrange(20, 90))]
                    days.append(days[-1] + timedelta(days=self.rng.randrange(20, 90)))
                    for when, to in ((days[0], None), (days[1], None), (days[2], other)):
                        if shop.start <= when.date() <= self.end:
                            self._add_order(person, shop, when, gift_to=to)
                elif day.date() >= shop.start:
                    self._add_order(person, shop, day, qty_scale=scale)
        finally:
            self.rng = main_rng

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.start, time(0), TZ)

    def _add_order(self, person: Person, shop: ShopDef, day: datetime, qty_scale: int = 1,
                   gift_to: Person | None = None) -> None:
        rng = self.rng
        hour = rng.choices(range(24), weights=[1, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 5, 4, 4, 5, 5, 5, 5, 6, 8, 9, 8, 4])[0]
        created = day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
        seq = len(self.orders)
        items = []
        for n in range(rng.choice((1, 1, 1, 2, 2, 3))):
            sku, title, cat, price, _ = rng.choice(PRODUCTS)
            items.append(Item(sku, title, cat, price, rng.choice((1, 1, 1, 2, 3)) * qty_scale, line_id=seq * 10 + n + 1))
        order = Order(
            seq=seq,
            shop=shop,
            order_id=self._order_id(shop, seq, created),
            person=person,
            created=created,
            items=items,
            post_fee=0.0 if rng.random() < 0.7 else 10.0,
            discount=round(rng.choice((0, 0, 0, 5, 10, 20)), 2),
            flash_sale=shop.platform == "taobao" and rng.random() < 0.1,
        )
        order.phone = person.alt_phone if person.alt_phone and rng.random() < 0.4 else person.phone
        order.receiver_name = person.name
        if gift_to is not None:  # sent to a friend: her phone and name on the parcel
            order.phone, order.receiver_name = gift_to.phone, gift_to.name
        fate = rng.random()
        if fate < 0.07:  # never paid: closed by timeout after 72h (or 30 min for flash sales)
            order.closed = created + (timedelta(minutes=30) if order.flash_sale else timedelta(hours=72))
        else:
            order.paid = created + timedelta(minutes=rng.randrange(1, 180) if fate > 0.12 else rng.randrange(200, 2000))
            if fate < 0.09:  # refunded before shipping
                order.refunded = order.paid + timedelta(hours=rng.randrange(2, 30))
            else:
                order.shipped = order.paid + timedelta(hours=rng.randrange(4, 48))
                self._failed_fulfilment(order)
                order.carrier = rng.choice(CARRIERS)
                order.tracking_no = f"{'SF' if '顺丰' in order.carrier else 'YT'}{_h(self.seed, 'trk', seq) % 10**12:012d}"
                order.finished = order.shipped + timedelta(days=rng.randrange(3, 11))
                if fate > 0.965:  # refunded after delivery
                    order.refunded = order.finished + timedelta(days=rng.randrange(1, 7))
                else:
                    self._partial_refunds(order)
                if shop.platform == "taobao" and rng.random() < 0.55:
                    order.buyer_rate = True
                    order.rating = rng.choices(("good", "neutral", "bad"), weights=(85, 10, 5))[0]
                    order.review = rng.choice(
                        {
                            "good": ("很好用,会回购", "物流快,包装好", "质量不错", "好评"),
                            "neutral": ("还行吧", "一般般,效果不明显", "包装有点破"),
                            "bad": ("用了过敏", "和描述不符", "客服态度差"),
                        }[order.rating]
                    )
        self.orders.append(order)

    # -- money and fulfilment (issue 29) -----------------------------------------
    # Drawn from a generator of their own per order, so adding them left every other
    # draw of the world (people, orders, fates) as it was.
    PARTIAL_REFUND_RATE = 0.06  # drawn for delivered orders not refunded in full (Taobao: multi-line only)
    FAILED_FULFILMENT_RATE = 0.012  # of shipped orders (Shopify reports it; others do not)

    def _money_rng(self, order: Order, what: str) -> random.Random:
        return random.Random(_h(self.seed, what, order.seq))

    def _failed_fulfilment(self, order: Order) -> None:
        """A first shipment that failed or was cancelled; the goods left a day or three later."""
        if order.shop.platform != "shopify":
            return  # only Shopify's fulfillments carry a status the other formats lack
        rng = self._money_rng(order, "fulfilment")
        if rng.random() >= self.FAILED_FULFILMENT_RATE:
            return
        order.failed_fulfilment = order.shipped
        order.failed_fulfilment_status = rng.choice(("failure", "cancelled"))
        order.shipped = order.failed_fulfilment + timedelta(days=rng.randrange(1, 4))

    def _partial_refunds(self, order: Order) -> None:
        """A returned line, or an amount given back (a price adjustment, a goodwill credit),
        after delivery; sometimes a second one. Taobao reports refunds per sub-order only,
        so its refunds return whole lines; JD's order search and spreadsheets carry none."""
        platform = order.shop.platform
        if platform in ("jd", "intake"):
            return
        rng = self._money_rng(order, "refund")
        if rng.random() >= self.PARTIAL_REFUND_RATE:
            return
        at = order.finished + timedelta(days=rng.randrange(1, 10), hours=rng.randrange(0, 12))
        returned: set[int] = set()
        for _ in range(2 if rng.random() < 0.2 else 1):
            left = [i for i in order.items if i.line_id not in returned]
            if len(left) >= 2 and (platform == "taobao" or rng.random() < 0.5):
                item = rng.choice(left)
                returned.add(item.line_id)
                order.refunds.append(Refund(at, round(item.price * item.qty, 2), (item.line_id,)))
            elif platform != "taobao":
                left_to_give = order.total - sum(r.amount for r in order.refunds)  # never all of it
                amount = round(min(left_to_give / 2, order.total * rng.choice((0.1, 0.15, 0.2, 0.3))), 2)
                if amount > 0:
                    order.refunds.append(Refund(at, amount))
            at = at + timedelta(days=rng.randrange(2, 8))

    # -- queries ---------------------------------------------------------------
    def _index(self) -> None:
        self.by_shop: dict[str, list[Order]] = {}
        for order in self.orders:
            self.by_shop.setdefault(order.shop.shop_id, []).append(order)
        self._events: dict[str, list[tuple[datetime, int]]] = {}
        for shop_id, orders in self.by_shop.items():
            ev = sorted((t, o.seq) for o in orders for t in o.events())
            self._events[shop_id] = ev
        self._by_seq = {o.seq: o for o in self.orders}
        self._by_order_id = {(o.shop.shop_id, o.order_id): o for o in self.orders}

    def reindex(self) -> None:
        self._index()

    def modified_between(self, shop_id: str, start: datetime, end: datetime) -> list[Order]:
        """Orders with any event in [start, end]: their state as of ``end`` was modified in the window."""
        ev = self._events.get(shop_id, [])
        lo = bisect.bisect_left(ev, (start, -1))
        hi = bisect.bisect_right(ev, (end, 1 << 62))
        seqs = {seq for _, seq in ev[lo:hi]}
        return [self._by_seq[s] for s in sorted(seqs)]

    def order_by_id(self, shop_id: str, order_id: str) -> Order | None:
        return self._by_order_id.get((shop_id, order_id))

    def created_between(self, shop_id: str, start: datetime, end: datetime) -> list[Order]:
        return [o for o in self.by_shop.get(shop_id, []) if start <= o.created <= end]

    @cached_property
    def person_count(self) -> int:
        return len(self.persons)


_WORLDS: dict[tuple, World] = {}


def get_world(anchor: date, persons: int, seed: int = 20241101) -> World:
    key = (anchor, persons, seed)
    if key not in _WORLDS:
        _WORLDS[key] = World(anchor, persons, seed)
    return _WORLDS[key]
