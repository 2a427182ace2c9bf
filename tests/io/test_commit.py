"""One commit for an output set (kodolly.io.commit): exact files present after every outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import kodolly
from kodolly.errors import InputError, OutputError
from kodolly.io.batches import iter_batches
from kodolly.io.commit import OutputSet, journal_path, require_finished, set_state
from kodolly.io.writers import file_hash, output_paths, read_rows

SET = ["out.manifest.json", "out.parquet", "out.rejects.jsonl", "out.report.json"]


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def write_input(path: Path, n: int, tag: str = "") -> Path:
    lines = [json.dumps({"instruction": f"질문{tag} {i}", "output": f"답 {i}" if i % 5 else ""}, ensure_ascii=False) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def committed_ok(out_dir: Path, stem: str = "out") -> dict:
    """The set at out_dir/stem.* agrees with its manifest: hashes, sizes and the row count (pyarrow)."""
    manifest = json.loads((out_dir / f"{stem}.manifest.json").read_text("utf-8"))
    entry = manifest["output"]["files"][0]
    out = out_dir / Path(entry["path"]).name
    assert file_hash(out) == entry["xxh3_128"] and out.stat().st_size == entry["bytes"]
    assert pq.read_metadata(out).num_rows == entry["rows"] == manifest["counts"]["written"]
    for key in ("rejects", "report"):
        f = out_dir / Path(manifest[key]["path"]).name
        assert file_hash(f) == manifest[key]["xxh3_128"]
    rejects = (out_dir / f"{stem}.rejects.jsonl").read_bytes().splitlines()
    assert len(rejects) == manifest["rejects"]["rows"] == manifest["counts"]["rejected"]
    return manifest


def test_a_run_commits_exactly_the_four_files_and_the_manifest_lists_the_report(tmp_path):
    src = write_input(tmp_path / "in.jsonl", 20)
    out_dir = tmp_path / "o"
    kodolly.convert(src, "alpaca", out_dir / "out.parquet")
    assert names(out_dir) == SET
    manifest = committed_ok(out_dir)
    assert manifest["counts"]["written"] == 16 and manifest["counts"]["rejected"] == 4
    assert manifest["report"]["path"] == str(out_dir / "out.report.json")
    assert set_state(output_paths(out_dir / "out.parquet", None), hashes=True).kind == "committed"


def test_a_failed_run_over_an_earlier_one_leaves_the_earlier_set_as_it_was(tmp_path):
    out_dir = tmp_path / "o"
    kodolly.convert(write_input(tmp_path / "a.jsonl", 10), "alpaca", out_dir / "out.parquet")
    before = {n: (out_dir / n).read_bytes() for n in SET}

    class Interrupts:
        name = "interrupts"

        def settings(self):
            return {}

        def apply(self, rows):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kodolly.convert(write_input(tmp_path / "b.jsonl", 30, "b"), "alpaca", out_dir / "out.parquet", filters=[Interrupts()])
    assert names(out_dir) == SET  # no temporary, no lock, no journal
    assert {n: (out_dir / n).read_bytes() for n in SET} == before


def test_stale_temporaries_of_this_output_are_removed_and_others_kept(tmp_path):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    stale = [
        ".out.parquet.kodolly-0123abcd.tmp",  # this protocol: a killed run
        ".out.parquet.kodolly-0123abcd.parquet.tmp",  # the scratch parquet of a datasets output
        ".out.rejects.jsonl.kodolly-0123abcd.tmp",
        ".out.manifest.json.kodolly-0123abcd.tmp",
        ".out.parquet.x1y2z3_4.tmp",  # earlier kodolly versions (mkstemp)
        ".out.rejects.jsonl.abcdefgh.tmp",
    ]
    kept = [".other.parquet.kodolly-0123abcd.tmp", ".out.parquet.notours.tmp", "notes.txt"]
    for name in stale + kept:
        (out_dir / name).write_bytes(b"x" * 100)
    (out_dir / ".out.parquet.kodolly-89abcdef.tmp.d").mkdir()  # not a temporary name of ours: kept
    with OutputSet(output_paths(out_dir / "out.parquet", None)):
        assert names(out_dir) == sorted(kept + [".out.manifest.json.lock", ".out.parquet.kodolly-89abcdef.tmp.d"])
    assert names(out_dir) == sorted(kept + [".out.parquet.kodolly-89abcdef.tmp.d"])


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(tmp_path):
    paths = output_paths(tmp_path / "out.parquet", None)
    with OutputSet(paths):
        with pytest.raises(OutputError) as err:
            OutputSet(paths).open()
        assert str(err.value) == f"{tmp_path / 'out.parquet'}: another kodolly run is writing this output"
    with OutputSet(paths):  # free again
        pass
    assert names(tmp_path) == []


def test_an_unfinished_earlier_set_is_refused_by_readers_and_replaced_by_the_next_run(tmp_path):
    out_dir = tmp_path / "o"
    src = write_input(tmp_path / "in.jsonl", 12)
    kodolly.convert(src, "alpaca", out_dir / "out.parquet")
    # what a kill right after the data was renamed leaves: data, no manifest, the journal
    (out_dir / "out.manifest.json").unlink()
    journal_path(out_dir / "out.manifest.json").write_text('{"files": []}')
    message = (
        f"{out_dir / 'out.parquet'}: an unfinished kodolly output (its manifest {out_dir / 'out.manifest.json'} is missing: "
        "the run that wrote it was stopped while committing); run the command that writes it again"
    )
    with pytest.raises(InputError) as err:
        list(iter_batches(out_dir / "out.parquet"))
    assert str(err.value) == message
    with pytest.raises(InputError, match="an unfinished kodolly output"):
        read_rows(out_dir / "out.parquet")
    with pytest.raises(InputError, match="an unfinished kodolly output"):
        kodolly.publish(out_dir / "out.parquet", tmp_path / "hub")
    assert not (tmp_path / "hub").exists()

    out = OutputSet(output_paths(out_dir / "out.parquet", None)).open()
    try:
        assert out.replaced is not None and out.replaced.kind == "unfinished"
        assert names(out_dir) == [".out.manifest.json.lock"]  # removed at start: nothing half-committed is left
    finally:
        out.abort()
    kodolly.convert(src, "alpaca", out_dir / "out.parquet")
    assert names(out_dir) == SET
    committed_ok(out_dir)
    require_finished(out_dir / "out.parquet")  # passes


def test_a_kill_after_the_manifest_is_in_place_leaves_a_committed_set(tmp_path):
    out_dir = tmp_path / "o"
    kodolly.convert(write_input(tmp_path / "in.jsonl", 12), "alpaca", out_dir / "out.parquet")
    journal_path(out_dir / "out.manifest.json").write_text('{"files": []}')  # the journal was not removed yet
    require_finished(out_dir / "out.parquet")
    assert set_state(output_paths(out_dir / "out.parquet", None), hashes=True).kind == "committed"


def test_a_new_parquet_beside_an_old_manifest_is_replaced_at_start(tmp_path):
    """What earlier kodolly versions left when killed between two renames over an earlier run."""
    out_dir = tmp_path / "o"
    kodolly.convert(write_input(tmp_path / "a.jsonl", 10), "alpaca", out_dir / "out.parquet")
    old_manifest = (out_dir / "out.manifest.json").read_bytes()
    kodolly.convert(write_input(tmp_path / "b.jsonl", 40, "b"), "alpaca", tmp_path / "b.parquet")
    (tmp_path / "b.parquet").replace(out_dir / "out.parquet")
    (out_dir / "out.manifest.json").write_bytes(old_manifest)
    paths = output_paths(out_dir / "out.parquet", None)
    state = set_state(paths)
    assert state.kind == "disagrees" and "its manifest says" in state.why
    with OutputSet(paths) as out:
        assert out.replaced == state
        assert names(out_dir) == [".out.manifest.json.lock"]


def test_commit_refuses_a_manifest_that_does_not_list_what_was_staged(tmp_path):
    paths = output_paths(tmp_path / "out.jsonl", None)
    with OutputSet(paths) as out:
        out.stage(paths.output).write_bytes(b'{"a": 1}\n')
        entry = out.describe(paths.output, 1)
        out.stage(paths.rejects).write_bytes(b"")
        with pytest.raises(OutputError, match="the manifest lists"):
            out.commit({"output": {"files": [entry]}, "rejects": None})
    assert names(tmp_path) == []


def test_commit_refuses_a_file_changed_after_it_was_described(tmp_path):
    paths = output_paths(tmp_path / "out.jsonl", None)
    with OutputSet(paths) as out:
        tmp = out.stage(paths.output)
        tmp.write_bytes(b'{"a": 1}\n')
        entry = out.describe(paths.output, 1)
        tmp.write_bytes(b'{"a": 2}\n{"a": 3}\n')
        with pytest.raises(OutputError) as err:
            out.commit({"output": {"files": [entry]}, "rejects": None})
        assert str(err.value) == f"{paths.output}: changed after it was described for the manifest"
    assert names(tmp_path) == []


def test_a_datasets_folder_replaces_an_earlier_one_and_leaves_no_scratch(tmp_path):
    import datasets

    out_dir = tmp_path / "o"
    kodolly.convert(write_input(tmp_path / "a.jsonl", 10), "alpaca", out_dir / "ds", output_format="datasets")
    kodolly.convert(write_input(tmp_path / "b.jsonl", 30, "b"), "alpaca", out_dir / "ds", output_format="datasets")
    assert names(out_dir) == ["ds", "ds.manifest.json", "ds.rejects.jsonl", "ds.report.json"]
    manifest = json.loads((out_dir / "ds.manifest.json").read_text())
    assert datasets.load_from_disk(str(out_dir / "ds")).num_rows == manifest["counts"]["written"] == 24
    assert set_state(output_paths(out_dir / "ds", "datasets"), hashes=True).kind == "committed"


def test_rejects_elsewhere_are_part_of_the_set(tmp_path):
    src = write_input(tmp_path / "in.jsonl", 10)
    kodolly.convert(src, "alpaca", tmp_path / "o" / "out.jsonl", rejects_path=tmp_path / "r" / "bad.jsonl")
    assert names(tmp_path / "o") == ["out.jsonl", "out.manifest.json", "out.report.json"]
    assert names(tmp_path / "r") == ["bad.jsonl"]
    assert len((tmp_path / "r" / "bad.jsonl").read_bytes().splitlines()) == 2


def test_a_writers_description_is_taken_only_for_the_file_it_describes(tmp_path):
    from kodolly.io.writers import RejectsWriter

    paths = output_paths(tmp_path / "out.jsonl", None)
    with OutputSet(paths) as out:
        rejects = RejectsWriter(out.stage(paths.rejects), name=paths.rejects)
        rejects.write({"reason": "x"})
        entry = rejects.close()
        assert entry["path"] == str(paths.rejects) and entry["rows"] == 1
        assert out.describe(paths.rejects, 1, entry=entry) == entry
        with pytest.raises(OutputError) as err:
            out.describe(paths.rejects, 1, entry={**entry, "bytes": entry["bytes"] + 1})
        assert str(err.value).startswith(f"{paths.rejects}: its writer described another file")
    assert names(tmp_path) == []
