"""kodolly.scrub: a secret's value in every form a server may echo it."""

from urllib.parse import quote

from kodolly.scrub import scrub_secret, scrub_secrets

KEY = "sk-test-kodolly-SECRET-7f3a9c"


def test_plain_and_url_encoded_forms():
    assert scrub_secret(f"bad key {KEY} here", KEY) == "bad key *** here"
    assert scrub_secret("key=" + KEY.replace("-", "%2D") + "&x=1", KEY) == "key=***&x=1"
    assert scrub_secret("key=" + KEY.replace("-", "%2d"), KEY) == "key=***"
    assert scrub_secret("".join(f"%{ord(c):02X}" for c in KEY), KEY) == "***"  # every character encoded
    assert scrub_secret(quote(KEY, safe=""), KEY) == "***"
    assert scrub_secret("".join(f"\\u{ord(c):04x}" for c in KEY) + " end", KEY) == "*** end"  # JSON escapes


def test_split_forms():
    half = len(KEY) // 2
    assert scrub_secret(f"bad key {KEY[:half]}\n{KEY[half:]}.", KEY) == "bad key ***."
    assert scrub_secret(f"{KEY[:10]}\\n{KEY[10:]}", KEY) == "***"  # an escaped line break
    assert scrub_secret(f'{{"start": "{KEY[:half]}", "end": "{KEY[half:]}"}}', KEY) == '{"start": "***", "end": "***"}'
    assert scrub_secret(f"{KEY[:12]}+{KEY[12:]}", KEY) == "***"
    assert scrub_secret(quote(f"{KEY[:12]}\n{KEY[12:]}", safe=""), KEY) == "***"  # an encoded line break (%0A)
    assert scrub_secret(f"{KEY[:5]} {KEY[5:9]} {KEY[9:]}", KEY) == "***"  # short pieces, joined by spaces


def test_long_text_without_the_secret_is_returned_as_it_is():
    text = "50% of the sky is blue; the sea, too.\n" * 300
    assert scrub_secret(text, KEY) == text


def test_values_not_names_and_nothing_else_touched():
    text = 'dedup_key: "instruction+response", api_key: none, sk-test 7f3a9c'
    assert scrub_secret(text, KEY) == text
    assert scrub_secret("", KEY) == "" and scrub_secret("x", None) == "x"
    assert scrub_secrets(f"{KEY} and hf_abcdefghijkl", [KEY, "hf_abcdefghijkl"]) == "*** and ***"
