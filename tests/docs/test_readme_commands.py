"""Every command block of the README runs as written (issue 19): the README cannot drift from the product.

Every fenced ``bash`` and ``python`` block of README.md is run, in README order, in one temporary folder
that holds the user's files the README names (``FILES``: each a bundled fixture under the README's name),
with a local fake OpenAI server (tests/dpo/fakeopenai.py, ``OPENAI_BASE_URL``) for ``build-dpo``, a local
Hub server (tests/hub/hub_server.py, ``HF_ENDPOINT``) for ``kodolly push``, and the tiny model of
tests/train/tiny_model.py for ``--model Qwen/...`` (``TEXT``: the few text substitutions). Each bash block
runs under ``set -euo pipefail`` and must exit 0 unless ``EXPECT`` documents another outcome for one of its
lines. A block that is not run is listed in ``NOT_RUN`` with the reason; a new block is run automatically.

``pip install`` lines and ``scripts/install.sh`` calls are not run (the fresh-clone check of the issue runs
them): their form is checked instead — kodolly is installed from a clone, so ``pip install -e '.[extras]'``
with extras that exist in pyproject.toml.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
sys.path.insert(0, str(ROOT / "tests" / "dpo"))
sys.path.insert(0, str(ROOT / "tests" / "hub"))
sys.path.insert(0, str(ROOT / "tests" / "train"))

HF_TOKEN = "hf_kodollyReadmeToken0123456789abcdef"

# README name -> the bundled fixture that stands in for it (a folder entry: the files it holds; a
# ``.zip`` entry built from a fixture: {member: fixture}).
FILES: dict[str, object] = {
    "ko_alpaca_data.json": "fixtures/alpaca/ko_alpaca_data.json",
    "kullm-v2.jsonl": "fixtures/alpaca/kullm-v2.jsonl",
    "kullm_eval.json": "fixtures/alpaca/kullm_eval.json",
    "big.jsonl": "fixtures/alpaca/kullm-v2.jsonl",
    "KULLM/kullm-v2.jsonl": "fixtures/alpaca/kullm-v2.jsonl",
    "data.zip": {"KoAlpaca_v1.1.jsonl": "fixtures/alpaca/KoAlpaca_v1.1.jsonl"},
    "dolly_ko.jsonl": "fixtures/dolly/dolly_ko.jsonl",
    "data/kullm-v2.jsonl": "fixtures/alpaca/kullm-v2.jsonl",
    "data/KoAlpaca_v1.1.jsonl": "fixtures/alpaca/KoAlpaca_v1.1.jsonl",
    "TL_02.RLHF데이터.zip.part0": "fixtures/aihub/Training/02.라벨링데이터/TL_02.RLHF데이터.zip.part0",
    "TL_02.RLHF데이터.zip.part1": "fixtures/aihub/Training/02.라벨링데이터/TL_02.RLHF데이터.zip.part1",
    "aihub/TL_02.RLHF데이터.zip.part0": "fixtures/aihub/Training/02.라벨링데이터/TL_02.RLHF데이터.zip.part0",
    "aihub/TL_02.RLHF데이터.zip.part1": "fixtures/aihub/Training/02.라벨링데이터/TL_02.RLHF데이터.zip.part1",
    "aihub/VL.zip": "fixtures/aihub/Validation/02.라벨링데이터/VL.zip",
    "KorQuAD_v1.0_train.json": "fixtures/korquad1/KorQuAD_v1.0_dev_sample.json",
    "KorQuAD_2.1_train_00.json": "fixtures/korquad2/KorQuAD_2.1_dev_sample.json",
    "KorQuAD_2.1_dev_00.json": "fixtures/korquad2/KorQuAD_2.1_dev_sample.json",
    "ko_dataset.json": "fixtures/sharegpt/ko_dataset.json",
    "ko_dataset_2.json": "fixtures/sharegpt/ko_dataset.json",
    "Training/02.라벨링데이터/legal_qa.zip": {"legal_qa_train.json": "fixtures/layouts/legal_qa_train.json"},
    "legal-qa.toml": "examples/layouts/legal-qa.toml",
    "my.csv": "fixtures/filters/user_scored.csv",
    "my_scored.csv": "fixtures/filters/user_scored.csv",
}
# Folders of the clone the README's commands use by their repository path.
LINKED = ["fixtures", "examples", "tests", "benchmarks", "schemas", "converters", "scripts"]
# The README's own run-config example is the user's run.toml (the Python block runs it).
RUN_CONFIG_BLOCK = "[[inputs]]"

TEXT = {
    "Qwen/Qwen3-0.6B": "$KODOLLY_TINY_MODEL",   # no network: the tiny model built by tests/train/tiny_model.py
    "hf_...": HF_TOKEN,                          # the local Hub's token
}

# A line whose documented outcome is not exit 0: (exit code, text its stderr must contain).
EXPECT = {
    "kodolly push hub/korquad me/korquad-dolly --public": (4, "refusing a public push: these sources' licences restrict sharing this set"),
}

# Blocks that are not run, by their first line, and why.
NOT_RUN = {
    "kodolly convert data/train-00000-of-00002.parquet --from alpaca -o out.parquet   # parquet":
        "names the user's parquet/Arrow files, datasets folders and hf:// repos (OWNER/NAME): the same commands run in"
        " tests/io/test_tables.py, tests/io/test_hub_source.py (a local Hub), tests/test_detection.py and tests/cli/test_head.py",
    "pip install -e '.[ray]'           # from the clone (ray[client,data] >= 2.60)":
        "needs a Ray cluster (--address auto / a head's address); tests/corridor/engines/test_ray.py runs the ray"
        " engine on a local cluster (form of the pip line checked)",
    "kodolly train sft out/ko.parquet --model Qwen/Qwen3-0.6B --answer-end \"(답변 종료)\" --4bit \\":
        "a real model's run (no network here): the same commands as the full path in the Quick start, which runs;"
        " --4bit, --merge and --answer-end are run by tests/train",
    "from kodolly.train import train_sft, train_dpo, generate":
        "a real model's 4-bit run from Python (no network here); train_sft/generate from Python are run by tests/train",
    "# CPU only (laptops, CI): the small CPU wheel":
        "torch and the train extra installed with pip (form checked; a GPU wheel needs a GPU)",
    "pip install -e '.[bench,datasets]'            # polars, pandas, psutil, datasets":
        "the benchmark: it generates 2.2 GB of data and runs four pipelines for minutes (form of the pip line checked)",
}

# Segments of a command line (split at ``&&``) that install or test rather than use kodolly: checked, not run.
INSTALL = re.compile(r"^(python3 -m venv \.venv|\. \.venv/bin/activate|pip install .*|bash scripts/install\.sh .*|python -m pytest)$")


def blocks(lang: str) -> list[str]:
    return re.findall(r"^```" + lang + r"\n(.*?)^```", README, flags=re.S | re.M)


def first_line(block: str) -> str:
    return block.strip().splitlines()[0]


def pyproject_extras() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["optional-dependencies"])


def check_install_segment(segment: str) -> None:
    extras = pyproject_extras()
    if segment.startswith("pip install "):
        args = shlex.split(segment.split("#")[0])[2:]
        if args[0] == "-e":
            m = re.fullmatch(r"\.\[([a-z0-9,-]+)\]", args[1])
            assert m and len(args) == 2, f"install line not of the form pip install -e '.[extra]': {segment}"
            assert set(m.group(1).split(",")) <= extras, f"unknown extra in {segment} (pyproject: {sorted(extras)})"
        else:
            # the only other form: a torch wheel from PyTorch's index, before the train extra
            assert re.fullmatch(r"torch==[\d.]+", args[0]) and args[1] == "--index-url", segment
            assert args[2].startswith("https://download.pytorch.org/whl/"), segment
    elif segment.startswith("bash scripts/install.sh "):
        named = segment.split()[2].split(",")
        assert set(named) <= extras, f"unknown extra in {segment}"


def runnable(block: str) -> str:
    """The block's text with the TEXT substitutions, install segments removed (after checking them)
    and EXPECT lines wrapped so their documented exit code and message are asserted."""
    for old, new in TEXT.items():
        block = block.replace(old, new)
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        code = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
        if not code:
            continue
        kept = []
        for segment in (s.strip() for s in code.split("&&")):
            if INSTALL.match(segment):
                check_install_segment(segment)
            else:
                kept.append(segment)
        if not kept:
            continue
        command = " && ".join(kept)
        for start, (status, message) in EXPECT.items():
            if command.startswith(start):
                command = (f"set +e; {command} 2>expect.err; rc=$?; set -e; cat expect.err >&2; "
                           f"test $rc -eq {status}; grep -qF {shlex.quote(message)} expect.err")
        out.append(command)
    return "\n".join(out)


def documented_quick_start_output() -> str:
    """The output block right after the Quick start (what command 1 prints)."""
    after = README.split("The first command prints", 1)[1]
    return re.search(r"^```\n(.*?)^```", after, flags=re.S | re.M).group(1)


def test_every_block_is_run_or_listed_and_every_listed_block_exists():
    bash = [first_line(b) for b in blocks("bash")]
    assert bash, "no bash block found: the extraction is broken"
    python = [first_line(b) for b in blocks("python")]
    for listed in NOT_RUN:
        assert listed in bash + python, f"NOT_RUN names a block the README no longer has: {listed!r}"
    for key in EXPECT:
        assert any(key in b for b in blocks("bash")), f"EXPECT names a line the README no longer has: {key!r}"
    for name in TEXT:
        assert name in README, f"TEXT substitutes {name!r}, which the README no longer says"


def test_install_lines_are_clone_installs_of_existing_extras():
    extras = pyproject_extras()
    # inline mentions too (``pip install -e '.[dpo]'`` in the prose)
    for m in re.finditer(r"pip install ([^`\n]*)", README):
        line = "pip install " + m.group(1).strip()
        if line.startswith("pip install -e") or "kodolly" in line:
            assert re.match(r"pip install -e '\.\[[a-z0-9,-]+\]'", line), f"not a clone install line: {line}"
            named = re.match(r"pip install -e '\.\[([a-z0-9,-]+)\]'", line).group(1).split(",")
            assert set(named) <= extras, f"{line}: unknown extra (pyproject: {sorted(extras)})"
    for block in blocks("bash"):
        runnable(block)  # checks every install segment it drops
    assert "'.[all]'" in README and "all" in extras


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The user's folder: the README's file names, each a bundled fixture; the tiny model."""
    d = tmp_path_factory.mktemp("readme")
    for name in LINKED:
        (d / name).symlink_to(ROOT / name)
    for name, fixture in FILES.items():
        target = d / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(fixture, dict):
            with zipfile.ZipFile(target, "w") as z:
                for member, path in fixture.items():
                    z.write(ROOT / path, member)
        else:
            shutil.copyfile(ROOT / fixture, target)
    run_config = next(b for b in blocks("toml") if b.startswith(RUN_CONFIG_BLOCK))
    (d / "run.toml").write_text(run_config, "utf-8")
    import kodolly

    # kodolly outputs the README's later commands read (made by the documented commands elsewhere)
    kodolly.convert(ROOT / "fixtures/dpo/rows.jsonl", "dolly", d / "kodolly.parquet")
    # out/dpo.parquet: DPO rows (Dolly fields + rejected), as `kodolly build-dpo` writes them
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    (d / "out").mkdir(exist_ok=True)
    pq.write_table(pj.read_json(ROOT / "fixtures/hub/dpo_pairs.jsonl"), d / "out" / "dpo.parquet")
    from tiny_model import build_tiny

    text = "".join((ROOT / p).read_text("utf-8") for p in ("fixtures/train/dolly_ko.jsonl", "fixtures/train/dpo_ko.jsonl"))
    build_tiny(d / "tiny-llama", text)
    return d


@pytest.fixture(scope="module")
def servers():
    from fakeopenai import FakeOpenAI
    from hub_server import HubServer

    api = FakeOpenAI().start()
    try:
        with HubServer(HF_TOKEN) as hub:
            yield api, hub
    finally:
        api.stop()


def _env(workdir: Path, servers, block: str) -> dict[str, str]:
    api, hub = servers
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]]),
        "OPENAI_BASE_URL": api.base_url, "HF_ENDPOINT": hub.base_url, "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(workdir / ".hf-home"), "KODOLLY_TINY_MODEL": str(workdir / "tiny-llama"),
        "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "NO_COLOR": "1",
    })
    env["OPENAI_API_KEY"] = "sk-readme-test"  # exported as the DPO worked example says (the fake server takes any)
    env["HF_TOKEN"] = HF_TOKEN  # exported as "Upload it" says (the full path in the Quick start pushes too)
    if "push" in block:  # a push talks to the local Hub; everything else stays offline
        env["HF_HUB_OFFLINE"] = "0"
    return env


def _python_script(block: str) -> str:
    for old, new in TEXT.items():
        block = block.replace(old, new.replace("$KODOLLY_TINY_MODEL", "__TINY__"))
    block = block.replace('"__TINY__"', 'os.environ["KODOLLY_TINY_MODEL"]').replace("__TINY__", "")
    # `for ...: ...` (an elided loop body) is a valid Python statement: the block runs as shown
    return "import os\n" + block


def _ordered_blocks() -> list[tuple[str, str]]:
    found = [(m.start(), "bash", m.group(1)) for m in re.finditer(r"^```bash\n(.*?)^```", README, flags=re.S | re.M)]
    found += [(m.start(), "python", m.group(1)) for m in re.finditer(r"^```python\n(.*?)^```", README, flags=re.S | re.M)]
    return [(lang, block) for _pos, lang, block in sorted(found)]


BLOCKS = _ordered_blocks()


@pytest.mark.parametrize("lang,block", BLOCKS, ids=[f"{i:02d}-{lang}-{first_line(b)[:40]}" for i, (lang, b) in enumerate(BLOCKS)])
def test_readme_block_runs_as_written(workdir, servers, lang, block):
    """Bash and Python blocks in README order, in one folder (later blocks read what earlier ones wrote)."""
    if first_line(block) in NOT_RUN:
        runnable(block)  # still checks its install lines
        pytest.skip(NOT_RUN[first_line(block)])
    env = _env(workdir, servers, block)
    if lang == "bash":
        cmd = ["bash", "-c", "set -euo pipefail\n" + runnable(block)]
    else:
        cmd = [sys.executable, "-c", _python_script(block)]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"{lang} block {first_line(block)!r}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    if first_line(block).startswith("# 1. install kodolly"):
        # the Quick start: its kodolly command prints what the README shows
        assert proc.stdout == documented_quick_start_output()


def test_the_full_path_pushed_a_private_repo_and_left_no_secret(workdir, servers):
    """The run above really used the local servers: the push made a private repo with the card."""
    api, hub = servers
    repo = hub.state.repos.get("datasets/me/ko-dpo") or hub.state.repos.get("me/ko-dpo")
    assert repo is not None, sorted(hub.state.repos)
    assert repo.private
    assert "README.md" in repo.branches["main"]
    assert api.served > 0
    for path in (workdir / "out").rglob("*.json"):
        assert HF_TOKEN not in path.read_text("utf-8", errors="replace")
