"""kodolly.train.generate: answers with the chat template, stops at the answer-end marker."""

from __future__ import annotations

import pytest
import torch

from conftest import MARKER
from kodolly.train.generate import cut_at_marker, generate, load_generator
from tiny_model import build_model, build_tokenizer

ANSWER = "서울입니다."
RAMBLE = "가나다라마바사아자차" * 3


@pytest.fixture(scope="module")
def rambling_model(tmp_path_factory):
    """A model whose output we control: taught (full fine-tuning) to write the answer, the marker,
    then to ramble on without an EOS, as tuned models without a marker often do."""
    tokenizer = build_tokenizer(ANSWER + RAMBLE + "질문")
    model = build_model(tokenizer, seed=1)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "질문"}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(prompt + f"{ANSWER}\n{MARKER}{RAMBLE}", add_special_tokens=False, return_tensors="pt")["input_ids"]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    out = tmp_path_factory.mktemp("rambling") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_generation_stops_at_the_marker(rambling_model):
    without = load_generator(rambling_model).answer("질문", max_new_tokens=40)
    # Without the marker as a stop string the model rambles on past it (the control) ...
    assert without.startswith(f"{ANSWER}\n{MARKER}가나다라") and len(without) > 30
    gen = load_generator(rambling_model, answer_end=MARKER)
    input_ids, _ = gen.prompt_ids("질문")
    out = gen.model.generate(input_ids=input_ids, max_new_tokens=40, do_sample=False,
                             stop_strings=[MARKER], tokenizer=gen.tokenizer)
    # ... with it generation ends on the marker's last token ...
    assert gen.tokenizer.decode(out[0, input_ids.shape[1]:]) == f"{ANSWER}\n{MARKER}"
    # ... and the answer comes back without the marker.
    assert gen.answer("질문", max_new_tokens=40) == ANSWER


def test_cut_at_marker():
    assert cut_at_marker(f"답\n{MARKER}더", MARKER) == "답"
    assert cut_at_marker(" 답 ", None) == "답"
    assert cut_at_marker("답", MARKER) == "답"


def test_tuned_run_answers_a_training_question(sft_run):
    # The run folder: base model from kodolly_train.json + adapter; the marker comes from the run.
    assert generate(sft_run.output_dir, "한국의 수도는 어디인가요?", max_new_tokens=40) == "한국의 수도는 서울입니다."
    assert generate(sft_run.merged_dir, "일주일은 며칠인가요?", max_new_tokens=40) == "일주일은 7일입니다."


def test_generate_refuses_a_missing_folder(tmp_path):
    from kodolly.errors import ConfigError

    with pytest.raises(ConfigError, match="no such model folder"):
        generate(tmp_path / "nope", "질문")
