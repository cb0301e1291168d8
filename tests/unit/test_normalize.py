"""Phone and e-mail normalization (R3): the fast path agrees with phonenumbers."""

import phonenumbers
from crm_pipeline.load.normalize import normalize_email, normalize_phone
from hypothesis import example, given
from hypothesis import strategies as st


def test_mainland_mobiles_in_every_shape_normalize_to_one_e164():
    for raw in ("13812345678", "+8613812345678", "86 138 1234 5678", "+86 138-1234-5678", "(138) 1234-5678",
                "0086 13812345678"):
        assert normalize_phone(raw) == ("+8613812345678", "ok"), raw


def test_masked_empty_and_invalid_are_told_apart():
    assert normalize_phone("138****5678").status == "masked"
    assert normalize_phone("null").status == "empty"
    assert normalize_phone("").status == "empty"
    assert normalize_phone(None).status == "empty"
    assert normalize_phone("12345").status == "invalid"
    assert normalize_phone("1381234567").status == "invalid"  # a digit missing
    assert normalize_phone("abc").status == "invalid"


def test_international_and_landline_numbers_go_through_phonenumbers():
    assert normalize_phone("+1 (613) 612-0707").e164 == "+16136120707"
    assert normalize_phone("0571-88881234").e164 == "+8657188881234"


@given(st.sampled_from("3456789"), st.integers(min_value=0, max_value=99), st.integers(min_value=0, max_value=10**8 - 1),
       st.sampled_from(["", "+86", "86", "+86 "]))
# 179xx is also China's IP-dialing prefix: phonenumbers strips "17900" as a carrier code and
# then cannot parse the rest (found by this test in a clean-clone run, seeds differ per run)
@example(second="7", third=90, rest=21100, prefix="")
@example(second="7", third=90, rest=21000, prefix="")
def test_fast_path_agrees_with_phonenumbers(second, third, rest, prefix):
    digits = f"1{second}{third:02d}{rest:08d}"[:11]
    raw = prefix + digits
    ours = normalize_phone(raw)
    try:
        parsed = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        assert ours.e164 == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    else:
        # numbers the library does not know as allocated, or cannot read, still normalize:
        # the shape (eleven digits, 1[3-9]) is a mainland mobile's
        assert ours == ("+86" + digits, "ok")


def test_email_is_lowercased_and_junk_dropped():
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"
    assert normalize_email("null") is None
    assert normalize_email("not-an-email") is None
