"""Messages a person sees: a closed pipe ends quietly, reject lines are one line with control characters escaped."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from kodolly.report import format_examples, one_line

SPEW = textwrap.dedent(
    """
    import click
    from kodolly.cli import cli, main

    @cli.command("spew")
    def spew():
        for i in range(200000):
            click.echo(f"line {i} " + "가" * 40)

    main()
    """
)


def test_a_closed_pipe_ends_quietly_with_exit_0():
    for _ in range(3):  # the reader closes at a different moment each time
        proc = subprocess.Popen([sys.executable, "-c", SPEW, "spew"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.read(100)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0
        assert err == ""


def test_one_line_escapes_control_characters_and_joins_lines():
    assert one_line("unexpected\n  character\r\n at\tline 3") == "unexpected character at line 3"
    assert one_line("nul\x00byte and bell\x07") == "nul\\x00byte and bell\\x07"
    assert one_line("한국어 그대로") == "한국어 그대로"


def test_example_rejects_are_one_line_each():
    data = {"examples": {"bad_json": [{
        "reason": "bad_json", "source": "alpaca", "file": "x.json", "line": None, "index": 3, "id": "",
        "detail": "lexical error: invalid char in json text.\n          {\"a\": NaN}\n     (right here) ------^",
        "raw": "{\"a\":\x00 NaN}",
    }]}}
    lines = format_examples(data).splitlines()
    assert lines[0].startswith("example rejects")
    assert lines[1:] == [
        "  bad_json",
        '    alpaca x.json#3 (lexical error: invalid char in json text. {"a": NaN} (right here) ------^): {"a":\\x00 NaN}',
    ]


def test_an_empty_file_without_from_is_the_empty_file_reject(tmp_path, fixtures):
    """Auto-detection cannot tell a converter from nothing: the run goes on, the file is one
    ``empty_file`` reject (as documented), the tally adds up and the exit code is 0."""
    import orjson

    out = tmp_path / "empty.parquet"
    proc = subprocess.run([sys.executable, "-m", "kodolly", "convert", str(fixtures / "bad" / "empty.json"), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cannot tell which converter fits" not in proc.stderr
    assert "holds no data: every converter reads it as one empty_file reject" in proc.stderr
    assert "tally OK: read 1 = written 0 + rejected 1" in proc.stdout
    rejects = [orjson.loads(line) for line in (tmp_path / "empty.rejects.jsonl").read_bytes().splitlines()]
    assert [(r["reason"], Path(r["file"]).name) for r in rejects] == [("empty_file", "empty.json")]


def test_detection_passes_over_an_empty_file_to_the_first_with_data(tmp_path, fixtures):
    import kodolly

    (tmp_path / "a_empty.jsonl").write_bytes(b"\n  \n")
    (tmp_path / "b.jsonl").write_bytes((fixtures / "dolly" / "dolly_ko.jsonl").read_bytes())
    found = kodolly.api.inspect_file(tmp_path)
    assert (found.converter, found.empty, Path(found.file).name) == ("dolly", False, "b.jsonl")
    assert kodolly.api.inspect_file(tmp_path / "a_empty.jsonl").empty
