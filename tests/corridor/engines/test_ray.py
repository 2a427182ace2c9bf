"""``--engine ray`` (corridor/engines/ray.py) on a real two-node Ray cluster (the session fixture
``ray_cluster``: ray.cluster_utils, one CPU per node, 127.0.0.1 only), against ``--engine inline``:
the same rows, the same kept copies, the same rejects and reasons, on the fixtures and on a generated
file with duplicates spread across shards; both nodes at work; a node removed mid-run; a shard retried
once; an unreachable address and a missing extra in one line."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")

from kodolly.cli import cli  # noqa: E402
from kodolly.corridor import InputGroup, execute, make_spec  # noqa: E402
from ray_helpers import BROKEN, FLAKY, MARKED  # noqa: E402
from support import FIXTURES, write_mixed_jsonl  # noqa: E402

# every converter family and input shape: JSON arrays and JSON Lines (alpaca), an envelope (korquad1),
# CSV with a converter that combines records (hansol join_pairs: CSV ranges and one combine shard), ShareGPT,
# bad lines and records, and duplicates across groups
MIXED = [
    InputGroup([FIXTURES / "alpaca"], "alpaca"),
    InputGroup([FIXTURES / "archives"], "alpaca"),  # a zip (members re-opened on the nodes) and a gzip (bytes shipped)
    InputGroup([FIXTURES / "dolly" / "dolly_ko.jsonl"], "dolly"),
    InputGroup([FIXTURES / "korquad1" / "KorQuAD_v1.0_dev_sample.json"], "korquad1"),
    InputGroup([FIXTURES / "hansol" / "train_cp949.csv"], "hansol", {"join_pairs": 3}),
    InputGroup([FIXTURES / "sharegpt" / "ko_dataset.jsonl"], "sharegpt"),
    InputGroup([FIXTURES / "bad" / n for n in ("bad_line.jsonl", "wrong_types.jsonl", "invalid_utf8.jsonl", "empty.json")], "alpaca"),
    InputGroup([FIXTURES / "filters" / "dedup_variants.jsonl", FIXTURES / "filters" / "dedup_second_source.jsonl"], "alpaca"),
]
SPLIT = {"split": {"train": 0.7, "validation": 0.3}}


def run(out: Path, engine: str, groups, *, cluster=None, partitions=None, batch_size=7, filters=SPLIT, fmt=None, address=None,
        workers=None, html=None):
    options = {"address": address or cluster.address, "partitions": partitions} if cluster is not None else {}
    spec = make_spec([], None, out, groups=groups, engine=engine, batch_size=batch_size, filters=filters,
                     output_format=fmt, engine_options=options, workers=workers)
    return execute(spec, html=html)


def rejects_of(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def assert_same_files(a, b) -> None:
    """Byte-identical rows and rejects, the same report and tally."""
    assert b.output.read_bytes() == a.output.read_bytes()
    assert b.rejects.read_bytes() == a.rejects.read_bytes()
    assert b.report_data == a.report_data
    assert b.tally.format() == a.tally.format()


def nodes_at_work(result) -> set[str]:
    return {shard["node"] for shard in result.manifest_data["shards"] if shard.get("node") not in (None, "driver")}


def test_fixtures_give_the_inline_output_and_both_nodes_work(ray_cluster, tmp_path):
    from kodolly.report_html import HtmlOptions

    (tmp_path / "inline").mkdir()
    (tmp_path / "ray").mkdir()
    inline = run(tmp_path / "inline" / "out.parquet", "inline", MIXED, html=HtmlOptions())
    ray = run(tmp_path / "ray" / "out.parquet", "ray", MIXED, cluster=ray_cluster, partitions=2, html=HtmlOptions())
    assert_same_files(inline, ray)
    # the run's page too (it names the output): the same but for when it ran and on which engine
    pages = [r.report_html.read_text("utf-8") for r in (inline, ray)]
    engines = ['{&quot;name&quot;: &quot;inline&quot;, &quot;workers&quot;: 1}', '{&quot;name&quot;: &quot;ray&quot;, &quot;workers&quot;: 2}']
    assert all(page.count(engine) == 1 for page, engine in zip(pages, engines))
    same = [re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "TIME", page.replace(engine, "ENGINE")) for page, engine in zip(pages, engines)]
    assert same[1] == same[0] and same[0].count("TIME") == 2
    assert inline.tally.by_reason["duplicate_of"] == 7  # two of them across inputs: the gzip repeats the zip member's rows
    assert ray.manifest_data["engine"]["name"] == "ray"
    assert nodes_at_work(ray) == set(ray_cluster.node_ids)  # both nodes converted shards
    hansol = [s["kind"] for s in ray.manifest_data["shards"] if s["input"].endswith("train_cp949.csv")]
    assert hansol == ["csv"] * (len(hansol) - 1) + ["combine"] and len(hansol) > 1  # join_pairs: a last shard reads the ranges' records again
    assert not list(tmp_path.glob(".*"))  # no staging folder or temporary left


@pytest.mark.parametrize("name", ["ray.jsonl", "ray_ds"])
def test_jsonl_and_datasets_outputs_are_the_inline_ones(ray_cluster, tmp_path, name):
    pytest.importorskip("datasets")
    from kodolly.io.writers import read_rows

    groups = MIXED[:3]
    inline = run(tmp_path / name.replace("ray", "inline"), "inline", groups)
    ray = run(tmp_path / name, "ray", groups, cluster=ray_cluster)
    assert read_rows(ray.output).equals(read_rows(inline.output)) and len(read_rows(ray.output)) == inline.tally.written
    assert ray.rejects.read_bytes() == inline.rejects.read_bytes()
    if name.endswith(".jsonl"):
        assert ray.output.read_bytes() == inline.output.read_bytes()
    assert not list(tmp_path.glob(".*"))


def test_through_ray_client(ray_cluster, tmp_path, monkeypatch):
    # Ray Client starts a server process per client on the first connect: on a busy 2-core machine that
    # has taken more than the 25 s an unreachable address is given (tested on its own); this test is
    # about the rows through the client, so it waits longer
    monkeypatch.setattr("kodolly.corridor.engines.ray.CONNECT_SECONDS", 120.0)
    groups = MIXED[1:3]
    inline = run(tmp_path / "inline.parquet", "inline", groups)
    ray = run(tmp_path / "ray.parquet", "ray", groups, cluster=ray_cluster, address=ray_cluster.client_address)
    assert_same_files(inline, ray)


def _generated(tmp_path: Path, rows: int = 3000) -> Path:
    path = tmp_path / "gen.jsonl"
    write_mixed_jsonl(path, rows)
    return path


def test_duplicates_across_shards_keep_the_same_copy_whatever_the_partition_count(ray_cluster, tmp_path):
    src = _generated(tmp_path)
    groups = [InputGroup([src], "alpaca")]
    inline = run(tmp_path / "inline.parquet", "inline", groups, batch_size=250)
    shards = inline.manifest_data["shards"]
    assert len(shards) >= 10

    def shard_of(line: int) -> int:
        return next(s["seq"] for s in shards if s["first_line"] <= line < s["first_line"] + s["records"] + 1)

    kept_line = {row["id"]: orjson.loads(row["meta"])["line"] for row in pq.read_table(inline.output).to_pylist()}
    dups = [r for r in rejects_of(inline.rejects) if r["reason"].startswith("duplicate_of:")]
    across = [r for r in dups if shard_of(r["line"]) != shard_of(kept_line[r["reason"].split(":", 1)[1]])]
    assert len(dups) > 100 and len(across) > 100  # most copies are in another shard than their kept row
    for partitions in (1, 3):
        ray = run(tmp_path / f"ray{partitions}.parquet", "ray", groups, cluster=ray_cluster, partitions=partitions, batch_size=250)
        assert_same_files(inline, ray)
        assert nodes_at_work(ray) == set(ray_cluster.node_ids)


def test_part_files_from_the_command_line(ray_cluster, tmp_path):
    src = _generated(tmp_path)
    inline = run(tmp_path / "inline.parquet", "inline", [InputGroup([src], "alpaca")])
    out = tmp_path / "parts"
    config = tmp_path / "run.toml"
    config.write_text("[engine]\nbatch_size = 250\n")  # shards of 250 records: a part is a run of whole shards
    result = CliRunner().invoke(cli, [
        "convert", str(src), "--from", "alpaca", "--engine", "ray", "--address", ray_cluster.address, "--config", str(config),
        "--partitions", "3", "--format", "parquet", "-o", str(out), "--split", "train=0.7,validation=0.3",
    ])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{split}-{k:05d}-of-00003.parquet" for split in ("train", "validation") for k in range(3)]
    first = pq.ParquetFile(out / names[0]).metadata.row_group(0)
    assert {first.column(i).compression for i in range(first.num_columns)} == {"ZSTD"}
    expected = pq.read_table(inline.output)
    for split in ("train", "validation"):
        parts = pa.concat_tables([pq.read_table(out / n) for n in names if n.startswith(split)])
        want = expected.filter(pc.equal(expected.column("split"), split))
        assert parts.num_rows > 0 and parts.equals(want)  # each split's parts, in name order, are the input order
    assert (tmp_path / "parts.rejects.jsonl").read_bytes() == inline.rejects.read_bytes()
    manifest = json.loads((tmp_path / "parts.manifest.json").read_text())
    assert manifest["output"]["files"][0]["rows"] == inline.tally.written
    assert sorted(manifest["output"]["files"][0]["files"]) == names
    assert (tmp_path / "parts.report.json").is_file()
    assert f"tally OK: read {inline.tally.read}" in result.output


def test_a_node_lost_mid_run_does_not_change_the_output(ray_cluster, tmp_path):
    src = _generated(tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    inline = run(tmp_path / "inline.parquet", "inline", [InputGroup([src], MARKED)], batch_size=100)
    victim = ray_cluster.add_node()  # a third node, removed while it converts
    try:
        group = [InputGroup([src], MARKED, {"markers": str(markers)})]
        outcome: dict = {}

        def convert() -> None:
            try:
                outcome["result"] = run(tmp_path / "ray.parquet", "ray", group, cluster=ray_cluster, partitions=2, batch_size=100)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                outcome["error"] = exc

        thread = threading.Thread(target=convert)
        thread.start()
        deadline = time.monotonic() + 60
        while not (markers / victim.node_id).exists():
            assert thread.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.02)
        ray_cluster.remove_node(victim)  # killed while converting a shard
        removed_while_running = thread.is_alive()
        thread.join(120)
    finally:
        if victim in ray_cluster.workers:
            ray_cluster.remove_node(victim)
    assert removed_while_running
    assert "error" not in outcome, outcome.get("error")
    ray = outcome["result"]
    assert ray.output.read_bytes() == inline.output.read_bytes()
    assert ray.rejects.read_bytes() == inline.rejects.read_bytes()
    assert ray.tally.format() == inline.tally.format()


def test_a_failing_shard_is_retried_once(ray_cluster, tmp_path):
    src = _generated(tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    inline = run(tmp_path / "inline.parquet", "inline", [InputGroup([src], FLAKY)], batch_size=200)
    ray = run(tmp_path / "ray.parquet", "ray", [InputGroup([src], FLAKY, {"markers": str(markers)})],
              cluster=ray_cluster, batch_size=200)
    assert (markers / f"failed-{src.name}").exists()  # the first attempt did fail
    assert ray.output.read_bytes() == inline.output.read_bytes()
    assert ray.rejects.read_bytes() == inline.rejects.read_bytes()
    # the run's workers end with it
    pids = [int(p.name[4:]) for p in markers.glob("pid-*")]
    assert pids
    deadline = time.monotonic() + 20
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _running(pid)]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_shard_that_fails_twice_stops_the_run_naming_it(ray_cluster, tmp_path):
    from kodolly.errors import ShardError

    src = _generated(tmp_path)
    with pytest.raises(ShardError) as err:
        run(tmp_path / "ray.parquet", "ray", [InputGroup([src], BROKEN)], cluster=ray_cluster, batch_size=200)
    message = str(err.value)
    assert message.startswith(f"{src}: shard 0 (bytes 0..") and "failed 2 times" in message
    assert message.endswith("RuntimeError: record 5 always fails") and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.jsonl"]  # nothing that looks finished


def test_a_corrupt_zip_member_read_on_a_node_stops_the_run_in_one_line(ray_cluster, tmp_path):
    import zipfile

    from kodolly.errors import InputError

    # bigger than what the planner sniffs: the bad CRC shows at the end, when a node reads the member
    data = json.dumps([{"instruction": f"질문 {i}", "output": f"답 {i}"} for i in range(60_000)], ensure_ascii=False).encode()
    zp = tmp_path / "set.zip"
    with zipfile.ZipFile(zp, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("inner/a.json", data)
    raw = bytearray(zp.read_bytes())
    raw[raw.index(data[-40:]) + 5] ^= 0x01
    zp.write_bytes(bytes(raw))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"set\.zip!inner/a\.json: corrupt compressed data \(Bad CRC-32"):  # as on every engine
        run(out / "o.parquet", "ray", [InputGroup([zp], "alpaca")], cluster=ray_cluster)
    assert list(out.iterdir()) == []


def test_an_unreachable_address_fails_in_one_line(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = CliRunner().invoke(cli, [
        "convert", str(FIXTURES / "dolly" / "dolly_ko.jsonl"), "--from", "dolly", "--engine", "ray",
        "--address", f"127.0.0.1:{port}", "-o", str(tmp_path / "out.parquet"),
    ])
    assert time.monotonic() - started < 30
    assert result.exit_code != 0
    assert result.output == f"kodolly: error: --address 127.0.0.1:{port}: cannot reach a Ray cluster there (Connection refused)\n"
    assert list(tmp_path.iterdir()) == []


def test_a_connect_given_up_on_is_shut_down_before_the_next_one():
    # a stand-in for the ray module: its init answers only after the 0.2 s the caller waits
    from kodolly.corridor.engines import ray as ray_engine
    from kodolly.errors import ConfigError

    class SlowRay:
        calls: list[str] = []

        def init(self, address=None, **kwargs):
            time.sleep(0.6)
            self.calls.append(f"init {address}")

        def shutdown(self):
            self.calls.append("shutdown")

    slow = SlowRay()
    with pytest.raises(ConfigError, match=r"^--address ray://127.0.0.1:1: no Ray cluster answered within 0 s$"):
        ray_engine._init_within(slow, "ray://127.0.0.1:1", {}, 0.2)
    assert slow.calls == []  # still connecting
    ray_engine._settle_abandoned(slow)
    assert slow.calls == ["init ray://127.0.0.1:1", "shutdown"]  # waited for, then undone
    ray_engine._settle_abandoned(slow)
    assert slow.calls == ["init ray://127.0.0.1:1", "shutdown"]  # nothing left to settle


SERVER_FAILED = (
    "Initialization failure from server:\nTraceback (most recent call last):\n"
    '  File "proxier.py", line 769, in Datapath\n'
    "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for detailed logs.\n"
)


class FailingRay:
    """A stand-in for the ray module whose first ``failures`` inits fail as Ray Client does when the
    head's server process for this client died at start (ray-project/ray#63202), or with ``error``."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionAbortedError(SERVER_FAILED)
        self.calls: list[str] = []

    def init(self, address=None, **kwargs):
        self.calls.append("init")
        if self.calls.count("init") <= self.failures:
            raise self.error

    def shutdown(self):
        self.calls.append("shutdown")


def test_a_server_that_failed_to_start_is_asked_again():
    from kodolly.corridor.engines import ray as ray_engine

    flaky = FailingRay(failures=2)
    ray_engine._init_within(flaky, "ray://127.0.0.1:1", {}, 5.0)
    assert flaky.calls == ["init", "shutdown", "init", "shutdown", "init"]  # each failed try undone, the third connects


def test_a_server_that_never_starts_fails_in_one_line_with_its_reason():
    from kodolly.corridor.engines import ray as ray_engine
    from kodolly.errors import ConfigError

    broken = FailingRay(failures=99)
    with pytest.raises(ConfigError) as err:
        ray_engine._init_within(broken, "ray://127.0.0.1:1", {}, 5.0)
    assert str(err.value) == (
        "--address ray://127.0.0.1:1: cannot connect to Ray (Initialization failure from server: "
        "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for detailed logs.)"
    )
    assert broken.calls == ["init", "shutdown"] * ray_engine.SERVER_INIT_ATTEMPTS


def test_other_connect_errors_are_not_tried_again():
    from kodolly.corridor.engines import ray as ray_engine
    from kodolly.errors import ConfigError

    refused = FailingRay(failures=1, error=ConnectionError("Ray Client could not connect: version mismatch"))
    with pytest.raises(ConfigError, match=r"\(Ray Client could not connect: version mismatch\)$"):
        ray_engine._init_within(refused, "ray://127.0.0.1:1", {}, 5.0)
    assert refused.calls == ["init", "shutdown"]


def test_without_the_extra_one_line_says_how_to_install_it(tmp_path):
    code = "import sys; sys.modules['ray'] = None; from kodolly.cli import main; sys.argv[0] = 'kodolly'; main()"
    args = [str(FIXTURES / "dolly" / "dolly_ko.jsonl"), "--from", "dolly", "--engine", "ray", "-o", str(tmp_path / "o.parquet")]
    proc = subprocess.run([sys.executable, "-c", code, "convert", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr == "kodolly: error: ray is not installed; install it with: pip install -e '.[ray]' (from the kodolly clone)\n"
    assert list(tmp_path.iterdir()) == []


def _near_dup_sources(tmp_path: Path) -> list[InputGroup]:
    """Two sources with planted near-duplicates (benchmarks/near_dup_quality.py): alpaca JSONL, then
    dolly JSONL whose variants mostly repeat rows of the first; an exact copy (exact dedup drops it
    first); a chain x -> y -> z (x-y and y-z similar, x-z not: y goes, z stays) with x and y in the
    first source, z in the second, each in another shard."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the benchmarks package
    from benchmarks.near_dup_quality import planted_records

    records = [{"id": r["id"], "instruction": r["instruction"], "input": "", "output": r["output"]} for r in planted_records(260, seed=5)]
    cut = len(records) * 3 // 5
    first, second = records[:cut], records[cut:]
    rng = random.Random(3)  # 15 blocks of 30 random syllables: x-y 0.86, y-z 0.85, x-z 0.73 (exact Jaccard)
    blocks = ["".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(30)) for _ in range(15)]
    x = " ".join(blocks[:13])
    y = " ".join(blocks[:12] + blocks[13:14])
    z = " ".join(blocks[:11] + blocks[13:15])
    first.insert(5, {"id": "chain-x", "instruction": "문단 소개", "input": "", "output": x})
    first.insert(len(first) // 2, {"id": "chain-y", "instruction": "문단 소개", "input": "", "output": y})
    second.insert(len(second) // 2, {"id": "chain-z", "instruction": "문단 소개", "input": "", "output": z})
    second.insert(3, dict(first[10], id="copy-of-" + first[10]["id"]))
    a, b = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    a.write_bytes(b"\n".join(orjson.dumps(r) for r in first) + b"\n")
    b.write_bytes(b"\n".join(orjson.dumps({"id": r["id"], "instruction": r["instruction"], "context": "", "response": r["output"]})
                             for r in second) + b"\n")
    return [InputGroup([a], "alpaca"), InputGroup([b], "dolly")]


NEAR = dict(SPLIT, near_dup={"threshold": 0.8})


def test_near_dup_is_decided_in_the_cluster_as_on_one_machine(ray_cluster, tmp_path):
    groups = _near_dup_sources(tmp_path)
    inline = run(tmp_path / "inline.parquet", "inline", groups, filters=NEAR, batch_size=60)
    reasons = {r["id"]: r["reason"] for r in rejects_of(inline.rejects)}
    kept = set(pq.read_table(inline.output).column("id").to_pylist())
    # the one-machine verdicts this test holds the cluster to
    assert inline.tally.by_reason["near_duplicate_of"] > 60 and inline.tally.by_reason["duplicate_of"] == 1
    assert reasons["chain-y"] == "near_duplicate_of:chain-x" and {"chain-x", "chain-z"} <= kept  # z matched only y, which went
    second = {r["id"] for r in rejects_of(inline.rejects) if r["source"] == "dolly" and r["reason"].startswith("near_duplicate_of:")}
    firsts = set(orjson.loads(line)["id"] for line in (tmp_path / "first.jsonl").read_bytes().splitlines())
    across = [rid for rid in second if reasons[rid].split(":", 1)[1] in firsts]
    assert len(across) >= 5  # rows of the second source dropped naming the earlier copy in the first
    shards = len(inline.manifest_data["shards"])
    assert shards >= 6
    for workers in (1, 2):
        processes = run(tmp_path / f"processes{workers}.parquet", "processes", groups, filters=NEAR, batch_size=60, workers=workers)
        assert_same_files(inline, processes)
    counts = {}
    for partitions in (1, 3):
        ray = run(tmp_path / f"ray{partitions}.parquet", "ray", groups, cluster=ray_cluster, partitions=partitions, batch_size=60, filters=NEAR)
        assert_same_files(inline, ray)
        assert nodes_at_work(ray) == set(ray_cluster.node_ids)
        counts[partitions] = ray.manifest_data["engine"]["near_dup_partitions"]
        assert [c["partition"] for c in counts[partitions]] == list(range(partitions))
    # the shuffle partitions the buckets: 3 tasks each hold a third or so of the (band, key) buckets,
    # none of them shared, and each finds and checks its own pairs
    whole = counts[1][0]["buckets"]
    parts = [c["buckets"] for c in counts[3]]
    assert sum(parts) == whole and all(0 < b < whole * 0.5 for b in parts)
    assert all(c["pairs"] > 0 for c in counts[3]) and sum(c["pairs"] for c in counts[3]) >= counts[1][0]["pairs"]
    assert {c["node"] for c in counts[3]} <= set(ray_cluster.node_ids)


def test_near_dup_in_the_cluster_never_sees_rows_exact_dedup_dropped(ray_cluster, tmp_path):
    """dedup on the instruction only: b (a's instruction, another answer) goes as a duplicate; d is
    close to b alone, so, as on one machine, d is kept (b was never a near-dup candidate)."""
    answer = " ".join(f"{n}번 항목은 다른 설명을 붙여 둔 문장이고 번호 {n * 31 % 97}로 구분됩니다." for n in range(12))
    other = " ".join(f"{n}째 줄에는 전혀 다른 이야기가 적혀 있으며 값 {n * 53 % 89}가 있습니다." for n in range(12))
    lines = [{"id": "a", "instruction": "질문 하나", "output": answer}, {"id": "b", "instruction": "질문 하나", "output": other},
             {"id": "c", "instruction": "상관없는 질문", "output": "상관없는 답입니다."}, {"id": "d", "instruction": "질문 둘", "output": other + " 끝."}]
    src = tmp_path / "d.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(dict(r, input="")) for r in lines) + b"\n")
    filters = dict(NEAR, dedup={"key": ["instruction"]})
    inline = run(tmp_path / "inline.parquet", "inline", [InputGroup([src], "alpaca")], filters=filters, batch_size=1)
    assert [(r["id"], r["reason"]) for r in rejects_of(inline.rejects)] == [("b", "duplicate_of:a")]
    ray = run(tmp_path / "ray.parquet", "ray", [InputGroup([src], "alpaca")], cluster=ray_cluster, partitions=2, filters=filters, batch_size=1)
    assert_same_files(inline, ray)
    assert pq.read_table(ray.output).column("id").to_pylist() == ["a", "c", "d"]


def test_iter_rows_with_near_dup_decides_on_the_driver_from_chunks_the_nodes_convert(ray_cluster, tmp_path, monkeypatch):
    import kodolly
    from kodolly.filters import build_filters

    # iter_rows (no output: the rows come back to the caller) finds the cluster through RAY_ADDRESS
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)
    src = FIXTURES / "filters" / "near_dup_pairs.jsonl"

    def rows(engine):
        return list(kodolly.iter_rows(src, "alpaca", engine=engine, batch_size=2, filters=build_filters({"near_dup": {"threshold": 0.7}})))

    ray, inline = rows("ray"), rows("inline")
    assert ray == inline and [r["id"] for r in ray] == ["n1", "n3", "n4", "n6"]


def test_a_run_that_keeps_no_row(ray_cluster, tmp_path):
    groups = [InputGroup([FIXTURES / "bad" / "empty.json", FIXTURES / "bad" / "bad_line.jsonl"], "alpaca")]
    filters = dict(SPLIT, content={"min_chars": {"response": 10_000}})  # every row too short
    inline = run(tmp_path / "inline.parquet", "inline", groups, filters=filters)
    ray = run(tmp_path / "ray.parquet", "ray", groups, cluster=ray_cluster, filters=filters)
    assert inline.tally.written == 0 and inline.tally.rejected > 2
    assert_same_files(inline, ray)
    filters = dict(filters, near_dup={"threshold": 0.8})  # near-dup's shuffle of no row
    inline = run(tmp_path / "inline-near.parquet", "inline", groups, filters=filters)
    near = run(tmp_path / "near.parquet", "ray", groups, cluster=ray_cluster, filters=filters, partitions=2)
    assert_same_files(inline, near)
    assert [(c["rows"], c["buckets"], c["pairs"]) for c in near.manifest_data["engine"]["near_dup_partitions"]] == [(0, 0, 0)] * 2
