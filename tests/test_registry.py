"""The converter registry (src/kodolly/registry.py): a third-party package's converter, registered through
the ``kodolly.converters`` entry point group for real (pip-installed into a folder on sys.path), converts end to end."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import kodolly
from kodolly import registry
from kodolly.errors import UnknownConverterError

PLUGIN = Path(__file__).resolve().parents[1] / "fixtures" / "plugin_pkg"


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    source = tmp_path / "src_copy"
    shutil.copytree(PLUGIN, source)  # pip builds in the tree: keep fixtures/ clean
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        # pip (and the rustup shim it ends up probing) write under $HOME: give them a throwaway one
        env={**os.environ, "HOME": str(tmp_path / "home"), "PIP_NO_CACHE_DIR": "1"},
    )
    assert list(target.glob("kodolly_transcript-0.0.1.dist-info/entry_points.txt"))
    registry.reset()
    monkeypatch.syspath_prepend(str(target))  # also invalidates importlib's caches
    yield target
    monkeypatch.undo()
    sys.modules.pop("kodolly_transcript", None)
    registry.reset()


def test_third_party_converter_through_the_entry_point(plugin_on_path, tmp_path):
    conv = kodolly.get_converter("qa-transcript")
    assert type(conv).__module__ == "kodolly.converters" and conv.convert.__module__ == "kodolly_transcript"
    assert "qa-transcript" in {c.name for c in kodolly.formats()}
    data = tmp_path / "talks.jsonl"
    data.write_text(
        '{"id": "t1", "transcript": "Q: 김치는 어떻게 만들어요?\\nA: 배추를 절이고\\n양념을 버무립니다.\\nQ: 얼마나 익혀요?\\nA: 이틀 정도요."}\n'
        '{"id": "t2", "transcript": "Q: 답이 없는 질문"}\n',
        "utf-8",
    )
    result = kodolly.convert(data, "qa-transcript", tmp_path / "out.parquet")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [(r["id"], r["instruction"], r["response"], r["source"], r["license"]) for r in rows] == [
        ("t1:0", "김치는 어떻게 만들어요?", "배추를 절이고\n양념을 버무립니다.", "qa-transcript", "CC0-1.0"),
        ("t1:1", "얼마나 익혀요?", "이틀 정도요.", "qa-transcript", "CC0-1.0"),
    ]
    assert result.manifest_data["counts"]["by_reason"] == {"no_answer": 1}
    assert result.tally.balanced and result.tally.read == 3


def test_without_the_package_the_name_is_unknown():
    registry.reset()
    with pytest.raises(UnknownConverterError, match="qa-transcript"):
        kodolly.get_converter("qa-transcript")
    assert kodolly.get_converter("aihub-71748").name == "aihub"  # aliases survive a reset


def test_reset_forgets_run_time_registrations():
    conv = kodolly.Converter(name="tmp-conv", description="x", convert=lambda r, l, c: ())
    kodolly.register(conv)
    assert kodolly.get_converter("tmp-conv") is conv
    registry.reset()
    with pytest.raises(UnknownConverterError):
        kodolly.get_converter("tmp-conv")


def test_the_koalpaca_and_kullm_aliases_carry_their_sources_licences():
    from kodolly.registry import get_converter

    koalpaca, kullm, alpaca = get_converter("koalpaca"), get_converter("kullm"), get_converter("alpaca")
    assert (koalpaca.name, koalpaca.license, koalpaca.options["license"]) == ("koalpaca", "CC BY-NC 4.0", "CC BY-NC 4.0")
    assert (kullm.name, kullm.license) == ("kullm", "Apache-2.0")
    assert (alpaca.name, alpaca.license) == ("alpaca", "")
    assert get_converter("kovicuna").name == "sharegpt"  # an alias without a licence of its own: the converter


def test_rows_converted_with_an_alias_name_the_source_and_its_licence():
    import kodolly
    from support import FIXTURES

    rows = kodolly.convert(FIXTURES / "alpaca/ko_alpaca_data.json", "koalpaca").rows
    assert {(r["source"], r["license"]) for r in rows} == {("koalpaca", "CC BY-NC 4.0")}
    rows = kodolly.convert(FIXTURES / "alpaca/ko_alpaca_data.json", "koalpaca", options={"license": "CC BY 4.0"}).rows
    assert {r["license"] for r in rows} == {"CC BY 4.0"}  # the user's -O license wins
