"""hf://datasets/... sources (io/hub_source.py) through the real huggingface_hub client against a real
Hub server on 127.0.0.1 (tests/hub/hub_server.py), pointed at with HF_ENDPOINT."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import kodolly
from columnar_support import records_table
from kodolly.cli import cli
from kodolly.errors import HubSourceError, InputError
from kodolly.io import hub_source
from kodolly.io.sources import expand_inputs
from support import FIXTURES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
from hub_server import HubServer  # noqa: E402

TOKEN = "hf_testTokenForDownloads0123456789"
CARD = b"---\nlicense: cc-by-nc-4.0\nlanguage: [ko]\n---\n# KoAlpaca sample\n"
ROWS = [
    {"instruction": f"질문 {i}", "input": "", "output": f"답 {i}"} for i in range(6)
]


def _parquet(rows, rows_per_group=2) -> bytes:
    buf = io.BytesIO()
    pq.write_table(records_table(rows), buf, row_group_size=rows_per_group)
    return buf.getvalue()


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A local Hub; huggingface_hub's cache and token file in tmp_path, no token in the environment."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub_source, "RETRY_WAIT", 0.01)
    with HubServer(TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.base_url)
        yield server


@pytest.fixture
def koalpaca(hub):
    files = {
        "README.md": CARD,
        ".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n",
        "data/train-00000-of-00002.parquet": _parquet(ROWS[:4]),
        "data/train-00001-of-00002.parquet": _parquet(ROWS[4:]),
        "data/test.jsonl": _jsonl([{"instruction": "시험 질문", "output": "시험 답"}]),
        "raw/huge.bin": b"\0" * 4096,
    }
    sha = hub.state.add_dataset("beomi/KoAlpaca-sample", files)
    return sha, files


def test_parse():
    assert hub_source.parse("hf://datasets/a/b") == hub_source.HubSpec("a/b", None, "")
    assert hub_source.parse("hf://datasets/a/b@v1.0/data/*.parquet") == hub_source.HubSpec("a/b", "v1.0", "data/*.parquet")
    assert hub_source.parse("hf://datasets/a/b@refs%2Fconvert%2Fparquet/default") == hub_source.HubSpec("a/b", "refs/convert/parquet", "default")
    with pytest.raises(InputError, match="only dataset repos can be read"):
        hub_source.parse("hf://models/a/b")
    with pytest.raises(InputError, match="expected hf://datasets/OWNER/NAME"):
        hub_source.parse("hf://datasets/a")


def test_a_hub_repo_converts_like_its_files_and_the_manifest_pins_the_commit(hub, koalpaca, tmp_path):
    sha, files = koalpaca
    out = tmp_path / "ko.parquet"
    result = kodolly.convert("hf://datasets/beomi/KoAlpaca-sample", "alpaca", out)
    assert result.tally.written == 7 and result.tally.rejected == 0
    rows = pq.read_table(out).to_pylist()
    assert [r["instruction"] for r in rows] == ["시험 질문"] + [r["instruction"] for r in ROWS]  # repo paths sorted
    assert json.loads(rows[1]["meta"])["file"] == "hf://datasets/beomi/KoAlpaca-sample/data/train-00000-of-00002.parquet"
    assert {r["license"] for r in rows} == {"CC BY-NC 4.0"}  # from the dataset card: no -O license given
    manifest = json.loads(result.manifest.read_text("utf-8"))
    import hashlib

    from hub_server import git_blob_oid

    assert [i["hub"] for i in manifest["inputs"]] == [
        {"hub": "beomi/KoAlpaca-sample", "revision": "main", "commit": sha, "path": "data/test.jsonl",
         "git_blob": git_blob_oid(files["data/test.jsonl"])},
        *({"hub": "beomi/KoAlpaca-sample", "revision": "main", "commit": sha, "path": p,
           "sha256": hashlib.sha256(files[p]).hexdigest()}
          for p in ("data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet")),
    ]
    assert [i["bytes"] for i in manifest["inputs"]] == [len(files[p]) for p in
                                                        ("data/test.jsonl", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet")]
    # only the data files were fetched (not the card's neighbours raw/huge.bin, .gitattributes), no token sent
    fetched = [p for m, p in hub.state.requests if m == "GET" and ("/resolve/" in p or "/cdn/" in p)]
    assert not any("huge.bin" in p or "gitattributes" in p for p in fetched)
    assert hub.state.count("GET", r"/cdn/") == 2 and hub.state.count("GET", r"/resolve/.*test\.jsonl") == 1
    assert set(hub.state.seen_auth) == {""}
    # a second run reads the cache: no file is downloaded again
    before = hub.state.count("GET", r"/cdn/|/resolve/")
    again = kodolly.convert("hf://datasets/beomi/KoAlpaca-sample", "alpaca")
    assert again.tally.written == 7
    assert hub.state.count("GET", r"/cdn/|/resolve/") == before


def test_a_glob_a_file_and_a_folder_pick_what_is_read(hub, koalpaca):
    def names(spec):
        return [i.name.rsplit("/", 1)[-1] for i in expand_inputs([spec])]

    base = "hf://datasets/beomi/KoAlpaca-sample"
    assert names(f"{base}/data/train-*.parquet") == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert names(f"{base}/data/test.jsonl") == ["test.jsonl"]
    assert names(f"{base}/data") == ["test.jsonl", "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    with pytest.raises(HubSourceError, match=r"KoAlpaca-sample/nothing/\*\.csv: no file matching nothing/\*\.csv in the repo"):
        expand_inputs([f"{base}/nothing/*.csv"])


def test_a_revision_is_a_branch_or_a_commit(hub, koalpaca):
    sha_main, _ = koalpaca
    sha_v1 = hub.state.add_dataset("beomi/KoAlpaca-sample", {"old.jsonl": _jsonl([{"instruction": "옛 질문", "output": "옛 답"}])}, branch="v1")
    rows = kodolly.convert("hf://datasets/beomi/KoAlpaca-sample@v1", "alpaca").rows
    assert [r["instruction"] for r in rows] == ["옛 질문"]
    inputs = expand_inputs([f"hf://datasets/beomi/KoAlpaca-sample@{sha_main}/data/test.jsonl"])
    assert inputs[0].origin["commit"] == sha_main and inputs[0].origin["revision"] == sha_main
    assert sha_v1 != sha_main
    with pytest.raises(HubSourceError, match=r"hf://datasets/beomi/KoAlpaca-sample@nope: no revision 'nope' in this repo"):
        expand_inputs(["hf://datasets/beomi/KoAlpaca-sample@nope"])


def test_a_licence_given_by_the_user_wins_over_the_card(hub, koalpaca):
    rows = kodolly.convert("hf://datasets/beomi/KoAlpaca-sample", "alpaca", options={"license": "CC BY 4.0"}).rows
    assert {r["license"] for r in rows} == {"CC BY 4.0"}


def test_without_from_each_hub_file_is_detected(hub, tmp_path):
    korquad = (FIXTURES / "korquad1/KorQuAD_v1.0_dev_sample.json").read_bytes()
    hub.state.add_dataset("me/mixed", {"alpaca.jsonl": _jsonl(ROWS[:2]), "korquad.json": korquad})
    res = CliRunner().invoke(cli, ["convert", "hf://datasets/me/mixed", "-o", str(tmp_path / "mixed.parquet")])
    assert res.exit_code == 0, res.output
    assert "converter: alpaca for hf://datasets/me/mixed/alpaca.jsonl" in res.stderr
    assert "converter: korquad1 for hf://datasets/me/mixed/korquad.json" in res.stderr
    counts = json.loads((tmp_path / "mixed.manifest.json").read_text("utf-8"))["counts"]["sources"]
    assert {k: (v["read"], v["written"]) for k, v in counts.items()} == {"alpaca": (2, 2), "korquad1": (6, 4)}


# ------------------------------------------------------------------ tokens


def test_a_private_repo_is_read_with_the_token_hf_auth_login_saved(hub, koalpaca, tmp_path):
    import huggingface_hub.constants as hf_constants

    hub.state.add_dataset("me/private", {"data.jsonl": _jsonl(ROWS[:2])}, private=True)
    with pytest.raises(HubSourceError) as err:
        expand_inputs(["hf://datasets/me/private"])
    assert str(err.value) == ("hf://datasets/me/private: no such dataset repo, or it is private or gated: "
                              "check the name, or log in (HF_TOKEN or `hf auth login`)")
    token_file = Path(hf_constants.HF_TOKEN_PATH)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(TOKEN)  # what `hf auth login` leaves behind
    rows = kodolly.convert("hf://datasets/me/private", "alpaca").rows
    assert len(rows) == 2
    assert f"Bearer {TOKEN}" in hub.state.seen_auth
    assert hub.state.cdn_auth == []  # no LFS file here; see the next test for the CDN


def test_the_token_is_not_sent_to_the_cdn(hub, koalpaca, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    kodolly.convert("hf://datasets/beomi/KoAlpaca-sample/data/train-*.parquet", "alpaca")
    assert hub.state.cdn_auth == ["", ""]  # another host: huggingface_hub drops the Authorization header


def test_a_wrong_token_is_one_line_without_the_token(hub, koalpaca, monkeypatch):
    wrong = "hf_wrongWrongWrongWrong"
    monkeypatch.setenv("HF_TOKEN", wrong)
    res = CliRunner().invoke(cli, ["convert", "hf://datasets/beomi/KoAlpaca-sample", "--from", "alpaca", "-o", "x.parquet"])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == [
        "kodolly: error: hf://datasets/beomi/KoAlpaca-sample: the Hub refused the token (HTTP 401): "
        "set a valid HF_TOKEN or `hf auth login`"]
    assert wrong not in res.output + res.stderr


def test_a_missing_repo_is_one_line(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(HubSourceError) as err:
        expand_inputs(["hf://datasets/nobody/nothing"])
    assert str(err.value) == ("hf://datasets/nobody/nothing: no such dataset repo, or it is private or gated: "
                              "check the name, or that the token's account can read it")


def test_a_gated_repo_says_what_to_do(hub, monkeypatch):
    hub.state.add_dataset("corp/gated", {"data.jsonl": _jsonl(ROWS[:1])}, gated=True)
    with pytest.raises(HubSourceError, match=r"hf://datasets/corp/gated: a gated dataset: accept its conditions on its Hub page, then use a token of that account \(HF_TOKEN or `hf auth login`\)$"):
        expand_inputs(["hf://datasets/corp/gated"])
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(HubSourceError, match=r"hf://datasets/corp/gated: a gated dataset: accept its conditions on its Hub page, then use a token of that account$"):
        expand_inputs(["hf://datasets/corp/gated"])
    hub.state.gate_accepted = True
    assert len(kodolly.convert("hf://datasets/corp/gated", "alpaca").rows) == 1


# ------------------------------------------------------------------ transient failures


def test_5xx_and_dropped_connections_are_retried(hub, koalpaca):
    hub.state.fail("GET", r"^/api/datasets/beomi/KoAlpaca-sample$", 503)
    hub.state.fail("GET", r"/tree/", "drop")
    hub.state.fail("HEAD", r"/resolve/.*train-00000", 500)
    hub.state.fail("GET", r"/cdn/", 502, times=2)
    result = kodolly.convert("hf://datasets/beomi/KoAlpaca-sample", "alpaca")
    assert result.tally.written == 7
    assert hub.state.count("GET", r"^/api/datasets/beomi/KoAlpaca-sample$") == 2
    assert hub.state.count("GET", r"/tree/") == 2
    assert all(rule[3] == 0 for rule in hub.state.failures)


def test_a_hub_that_stays_down_is_one_line_after_the_retries(hub, koalpaca):
    hub.state.fail("GET", r"/cdn/", 503, times=100)
    with pytest.raises(HubSourceError) as err:
        expand_inputs(["hf://datasets/beomi/KoAlpaca-sample/data/train-00000-of-00002.parquet"])
    message = str(err.value)
    assert message.startswith("hf://datasets/beomi/KoAlpaca-sample: download data/train-00000-of-00002.parquet failed after 5 tries (")
    assert message.endswith("): check the connection and run again") and "\n" not in message


def test_a_run_config_names_a_hub_source(hub, koalpaca, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[[inputs]]\nfrom = "alpaca"\npath = "hf://datasets/beomi/KoAlpaca-sample/data/*.parquet"\n\n'
                      '[output]\npath = "out/ko.parquet"\n', "utf-8")
    result = kodolly.api.run_config(config)
    assert result.tally.written == 6
    assert result.output == tmp_path / "out" / "ko.parquet"


def test_a_hub_input_pickles_as_its_file_at_the_resolved_commit(hub, koalpaca):
    import pickle

    sha, _ = koalpaca
    (inp,) = expand_inputs(["hf://datasets/beomi/KoAlpaca-sample/data/test.jsonl"])
    hub.state.add_dataset("beomi/KoAlpaca-sample", {"data/test.jsonl": _jsonl([{"instruction": "새 질문", "output": "새 답"}])})
    again = pickle.loads(pickle.dumps(inp))  # main has moved on: the copy still reads the commit the run resolved
    assert again.name == inp.name and again.origin == inp.origin and again.origin["commit"] == sha
    assert [r["instruction"] for r, _ in kodolly.io.readers.read_records(again)] == ["시험 질문"]


def test_a_datasets_folder_pushed_as_files_reads_its_arrow_files_only(hub, tmp_path):
    from columnar_support import write_columnar

    folder = write_columnar(ROWS[:3], tmp_path / "saved", "datasets")
    files = {f"saved/{p.name}": p.read_bytes() for p in folder.iterdir()}
    assert {"saved/state.json", "saved/dataset_info.json"} <= set(files)
    hub.state.add_dataset("me/saved", files)
    names = [i.name for i in expand_inputs(["hf://datasets/me/saved"])]
    assert names == ["hf://datasets/me/saved/saved/data-00000-of-00002.arrow", "hf://datasets/me/saved/saved/data-00001-of-00002.arrow"]
    assert [r["instruction"] for r in kodolly.convert("hf://datasets/me/saved", "alpaca").rows] == [r["instruction"] for r in ROWS[:3]]


def test_a_repo_folder_of_the_hub_cache_reads_one_commit(hub, koalpaca):
    import huggingface_hub.constants as hf_constants

    kodolly.convert("hf://datasets/beomi/KoAlpaca-sample/data/test.jsonl", "alpaca")
    hub.state.add_dataset("beomi/KoAlpaca-sample", {"data/test.jsonl": _jsonl([{"instruction": "새 질문", "output": "새 답"}])})
    kodolly.convert("hf://datasets/beomi/KoAlpaca-sample/data/test.jsonl", "alpaca")  # a second commit cached
    repo = Path(hf_constants.HF_HUB_CACHE) / "datasets--beomi--KoAlpaca-sample"
    assert len(list((repo / "snapshots").iterdir())) == 2
    rows = kodolly.convert(repo, "alpaca").rows
    assert [r["instruction"] for r in rows] == ["새 질문"]  # one commit (refs/main, else the newest), not both


def test_offline_a_cached_commit_is_read_without_a_request(hub, koalpaca, monkeypatch):
    import huggingface_hub.constants as hf_constants

    sha, files = koalpaca
    online = kodolly.convert("hf://datasets/beomi/KoAlpaca-sample/data/*.parquet", "alpaca")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    before = len(hub.state.requests)
    inputs = expand_inputs([f"hf://datasets/beomi/KoAlpaca-sample@{sha}/data/*.parquet"])
    rows = kodolly.convert(inputs, "alpaca").rows
    assert len(hub.state.requests) == before  # nothing asked of the Hub
    assert [r["instruction"] for r in rows] == [r["instruction"] for r in online.rows]
    assert {r["license"] for r in rows} == {"CC BY-NC 4.0"}  # the cached card
    import hashlib

    assert [i.origin["sha256"] for i in inputs] == [hashlib.sha256(files[p]).hexdigest() for p in
                                                    ("data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet")]
    with pytest.raises(HubSourceError, match=r"HF_HUB_OFFLINE is set and revision 'v9' is not in the Hub cache"):
        expand_inputs(["hf://datasets/beomi/KoAlpaca-sample@v9"])
    # a branch whose ref is in the cache (as `hf download` leaves it) is read too
    refs = Path(hf_constants.HF_HUB_CACHE) / "datasets--beomi--KoAlpaca-sample" / "refs"
    refs.mkdir(exist_ok=True)
    (refs / "main").write_text(sha)
    assert [i.origin["commit"] for i in expand_inputs(["hf://datasets/beomi/KoAlpaca-sample/data/*.parquet"])] == [sha, sha]
    assert len(hub.state.requests) == before
