"""Words people read, for the codes the pipeline keeps.

Tables and logs keep stable English keys (``champions``, ``all_fit``); call
sheets and the daily report show the Chinese word, with the key beside it only
where an analyst needs to find the row again (a tooltip, a legend). One place,
so a sheet and the report never call the same thing two names.
"""

from __future__ import annotations

RFM_SEGMENTS = {
    "champions": "重要价值客户",
    "loyal": "忠诚客户",
    "potential_loyalist": "潜力客户",
    "new": "新客户",
    "promising": "有望客户",
    "need_attention": "需关注客户",
    "about_to_sleep": "即将沉睡",
    "at_risk": "流失风险",
    "cannot_lose": "不能失去的客户",
    "hibernating": "沉睡客户",
    "lost": "已流失客户",
}
LIFECYCLE_STAGES = {
    "prospect": "潜在客户",
    "new": "新客",
    "returning": "回头客",
    "loyal": "忠诚客户",
    "win_back": "召回客户",
    "at_risk": "流失预警",
    "churned": "已流失",
}
TIERS = {"member": "普通会员", "silver": "银卡", "gold": "金卡", "platinum": "白金卡"}
TIER_CHANGES = {"upgrade": "升级", "downgrade": "降级", "new": "新入会"}

# Why a customer is on the call list (outreach.call_list_entries.priority_reason), R7.
CALL_REASONS = {
    "unresolved_followup": "二次回访：上次问题未解决",
    "all_fit": "例行回访（当日名单全部回访）",
    "order_value": "高金额订单优先",
    "expected_value": "预测客户价值（CLV）优先",  # config/clv.yml call_list_rank: expected_value
    "good_rating_lukewarm_review": "好评但评价语气一般",
    "random_sample": "随机抽样回访",
}

PLATFORMS = {"taobao": "淘宝/天猫", "jd": "京东", "shopify": "Shopify", "woocommerce": "WooCommerce",
             "youzan": "有赞（微信小店）", "intake": "表格导入"}

MESSAGE_TYPES = {
    "payment_reminder": "催付", "payment_reminder_flash": "催付（秒杀/聚划算）", "shipment_notice": "发货提醒",
    "cadence_d1": "购后第1天感谢", "cadence_d7": "购后第7天使用提示", "cadence_d20": "购后第20天关怀",
    "cadence_d60": "购后第60天复购券", "birthday": "生日祝福", "holiday": "节日问候",
    "repurchase_reminder": "复购提醒", "care": "久未购买关怀", "campaign": "营销活动",
    "campaign_followup": "活动后续（致歉/邀请关注）",
}
LEDGER_STATUS = {"pending": "待发送", "sending": "发送中", "accepted": "已发送", "failed": "发送失败",
                 "cancelled": "已取消", "unknown": "待核对"}
# Why a message was not sent (outreach.suppressions.rule), R13/R14
SUPPRESSION_RULES = {"opted_out": "已退订", "no_contact": "无联系方式", "quiet_hours": "免打扰时段",
                     "expired": "超出有效时间", "frequency_cap": "频次上限", "lower_priority": "同日有更重要的消息",
                     "missing_placeholder": "模板缺少内容", "shop_data_stale": "店铺数据未更新，暂缓",
                     "no_consent": "未同意接收营销", "reason_gone": "发送前原因已不成立"}


def zh(table: dict[str, str], key: str | None, missing: str = "未评分") -> str:
    """The Chinese word for ``key`` (the key itself when the table does not know it)."""
    if key is None or key == "":
        return missing
    return table.get(key, key)
