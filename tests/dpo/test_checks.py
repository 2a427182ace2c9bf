"""kodolly.dpo.checks."""

import pytest

from kodolly.dpo.checks import code_share, skip_reason, translation_problem


@pytest.mark.parametrize("instruction", ["이 문장을 영어로 바꿔줘", "다음을 번역하세요", "영문으로 써줘", "Translate this", "답을 in English로", "영어 번역본"])
def test_asks_for_english(instruction):
    assert skip_reason(instruction, "안녕하세요") == "dpo_asks_for_english"


def test_skip_code_and_not_korean():
    assert skip_reason("함수", "```js\nconst x = 1;\nconsole.log(x);\n```") == "dpo_code_response"
    assert skip_reason("함수", "설명입니다.\nfor (int i = 0; i < n; i++) {\n  sum += i;\n}") == "dpo_code_response"
    assert skip_reason("질문", "This answer is English with 한글 one word") == "dpo_not_korean"
    assert skip_reason("질문", "   ") == "dpo_empty_response"
    assert skip_reason("영국의 수도는?", "영국의 수도는 런던(London)입니다.") is None
    assert code_share("첫 줄입니다.\n두 번째 줄입니다.") == 0.0


def test_translation_problems():
    ko = "서울은 한국의 수도입니다."
    assert translation_problem(ko, "Seoul is the capital of Korea.") is None
    assert translation_problem(ko, "  ") == "dpo_translation_empty"
    assert translation_problem(ko, None) == "dpo_translation_empty"
    assert translation_problem(ko, ko) == "dpo_translation_echo"
    assert translation_problem(ko, "Seoul 서울은 한국의 수도입니다") == "dpo_translation_echo"
    assert translation_problem(ko, "Сеул — столица Кореи.") == "dpo_translation_not_latin"
    assert translation_problem(ko, "I'm sorry, but I can't assist with that.") == "dpo_translation_refusal"
    assert translation_problem(ko, "As an AI language model, I cannot translate.") == "dpo_translation_refusal"
    assert translation_problem("죄송하지만 도와드릴 수 없습니다.", "I'm sorry, but I can't help.") is None
    assert translation_problem(ko, "Café au lait in Seoul.") is None  # accented Latin is Latin
