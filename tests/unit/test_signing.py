"""Signing against published vectors (reference §3, §6a)."""

from crm_pipeline.extract.signing import aliyun_rpc_sign, percent_encode, top_sign, webhook_sign


def test_top_md5_matches_the_documented_example_concatenation():
    # the TOP doc's example: sorted and concatenated as bar2foo1foo_bar3foobar4
    params = {"foo": "1", "bar": "2", "foo_bar": "3", "foobar": "4"}
    assert top_sign(params, "helloworld", "md5") == "5AAF1C690262A24768F5478B084C2C8A"


def test_top_sign_ignores_sign_and_empty_values_and_is_uppercase_hex():
    base = {"method": "taobao.trades.sold.get", "app_key": "k", "v": "2.0"}
    with_noise = {**base, "sign": "XYZ", "empty": "", "none": None}
    assert top_sign(base, "s") == top_sign(with_noise, "s")
    for method in ("md5", "hmac", "hmac-sha256"):
        value = top_sign(base, "s", method)
        assert value == value.upper() and len(value) in (32, 64)
    assert len({top_sign(base, "s", m) for m in ("md5", "hmac", "hmac-sha256")}) == 3


def test_aliyun_sendsms_official_vector():
    params = {
        "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
        "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
    }
    assert aliyun_rpc_sign(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_describe_regions_official_vector():
    params = {
        "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
        "Version": "2014-05-26", "Timestamp": "2016-02-23T12:46:24Z",
    }
    assert aliyun_rpc_sign(params, "testsecret", "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_follows_rfc3986_as_alibaba_wants():
    assert percent_encode("a b*c~") == "a%20b%2Ac~"
    assert percent_encode("阿") == "%E9%98%BF"


def test_webhook_signature_covers_timestamp_and_body():
    a = webhook_sign(b'{"x":1}', "secret", "100")
    assert a.startswith("sha256=")
    assert a != webhook_sign(b'{"x":2}', "secret", "100")
    assert a != webhook_sign(b'{"x":1}', "secret", "101")
