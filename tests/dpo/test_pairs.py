"""kodolly.dpo.pairs."""

from kodolly.dpo.pairs import existing_pair, ranked_pairs


RANKED = {"id": "x", "response": "a", "meta": '{"ranked_answers": [{"rank": 2, "text": "b"}, {"rank": 1, "text": "a"}, {"rank": 3, "text": "c"}]}'}


def test_ranked_best_vs_worst_and_all_pairs():
    assert ranked_pairs(RANKED) == [("a", "c", "x")]
    assert ranked_pairs(RANKED, all_pairs=True) == [("a", "b", "x:1>2"), ("a", "c", "x:1>3"), ("b", "c", "x:2>3")]
    assert ranked_pairs({"id": "y", "meta": {"ranked_answers": [{"rank": 1, "text": "a"}, {"rank": 2, "text": " "}]}}) == "dpo_no_ranked_answers"
    assert ranked_pairs({"id": "y", "meta": "{}"}) == "dpo_no_ranked_answers"


def test_existing_pairs_from_meta_or_column():
    assert existing_pair({"id": "1", "response": "좋음", "meta": '{"rejected": "나쁨"}'}) == [("좋음", "나쁨", "1")]
    assert existing_pair({"id": "2", "response": "좋음", "rejected": "나쁨", "meta": "{}"}) == [("좋음", "나쁨", "2")]
    assert existing_pair({"id": "3", "response": "좋음", "meta": "{}"}) == "dpo_no_rejected"
    assert existing_pair({"id": "4", "response": "좋음", "rejected": "좋음"}) == "dpo_rejected_equals_chosen"
