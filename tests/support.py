"""Helpers shared by the tests (import with ``from support import ...``)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# The engines every conversion test runs under (the ``engine`` fixture in conftest.py parametrises a
# test over them; a test module opts in with ``pytestmark = pytest.mark.usefixtures("engine")``).
# The ray engine's tests add "ray" where a cluster fixture exists.
ENGINE_NAMES = ["inline", "processes"]

# ------------------------------------------------------------------ the reference workflow (issue 5)
# AI Hub 71748 SFT labels (fixtures/filters/aihub_sft_sample.json, read by the real ``aihub`` converter)
# plus the user's CSV ``question, answer, category, score`` (user_scored.csv, read by the shipped ``qa``
# layout): score > 30 (AI Hub rows carry no score and are kept), 예체능/종교/보건 dropped, exact
# duplicates removed across both sources, split 80/10/10 by id. fixtures/filters/reference_run.toml
# is the same run as a config file.

REFERENCE = {
    "score": {"min": 30, "keep_unscored": True},  # AI Hub has no score; the user's CSV has one
    "domain": {"exclude": ["예체능", "종교", "보건"]},
    "dedup": {},
    "split": {"train": 0.8, "validation": 0.1, "test": 0.1},
}

REFERENCE_SOURCES = {
    "aihub": {
        "read": 11, "written": 5, "rejected": 6,
        # a06: answer == question up to spaces; a11: no answer.contents; a02/a03/a04: 예체능/종교/보건;
        # a08: a01 again with extra spaces
        "by_reason": {"answer_equals_question": 1, "domain_excluded": 3, "duplicate_of": 1, "no_answer": 1},
    },
    "qa": {
        "read": 11, "written": 5, "rejected": 6,
        # rows 1 (score 30: not > 30) and 5 (10); 3 (예체능) and 10 (" 보건 "); 4 and 9 repeat a01 / a10
        "by_reason": {"domain_excluded": 2, "duplicate_of": 2, "score_below": 2},
    },
}
REFERENCE_IDS = ["a01", "a05", "a07", "a09", "a10",
                 "user_scored.csv:0", "user_scored.csv:2", "user_scored.csv:6", "user_scored.csv:7", "user_scored.csv:8"]


def convert_to_parquet(tmp_path: Path, sources, converter, **kwargs):
    """Run a conversion into a parquet file, check the tally identity, return (rows, rejects, result)."""
    import kodolly
    import orjson

    out = tmp_path / "out.parquet"
    kwargs.setdefault("filters", [])  # reading tests: no filter chain (kodolly.convert's default dedups, like the CLI)
    result = kodolly.convert(sources, converter, out, **kwargs)
    assert result.tally.balanced
    assert result.tally.read == result.tally.written + result.tally.rejected
    rows = pq.read_table(out).to_pylist()
    rejects = [orjson.loads(line) for line in result.rejects.read_bytes().splitlines()]
    assert len(rows) == result.tally.written
    assert len(rejects) == result.tally.rejected
    return rows, rejects, result


def output_files(out: Path) -> dict[str, bytes]:
    """The bytes of every file a run wrote beside ``out`` (name -> bytes), its manifest aside (it records times)."""
    return {p.name: p.read_bytes() for p in sorted(out.parent.iterdir()) if not p.name.endswith(".manifest.json")}


def record_fast_path(monkeypatch, module, name: str) -> list[bool]:
    """Wrap ``module.name`` (a fast path that returns None when it does not apply) so that each call
    appends whether it applied to the list returned."""
    made: list[bool] = []
    fast = getattr(module, name)

    def spy(*args, **kwargs):
        chunk = fast(*args, **kwargs)
        made.append(chunk is not None)
        return chunk

    monkeypatch.setattr(module, name, spy)
    return made


def strip_meta(rows):
    return [{k: v for k, v in row.items() if k != "meta"} for row in rows]


def load_tiny_model():
    """tests/train/tiny_model.py as a module (``build_tiny`` ...), from any test folder."""
    import importlib.util
    import sys

    module = sys.modules.get("tiny_model")
    if module is None:
        path = Path(__file__).resolve().parent / "train" / "tiny_model.py"
        spec = importlib.util.spec_from_file_location("tiny_model", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["tiny_model"] = module
        spec.loader.exec_module(module)
    return module


def readme_section(heading: str) -> str:
    """The README's section that starts with ``## <heading>``, up to the next ``## `` heading."""
    text = (FIXTURES.parent / "README.md").read_text("utf-8")
    start = text.index("\n## " + heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


# ------------------------------------------------------------------ parallel conversion (issue 9)
def write_mixed_jsonl(path: Path, rows: int, *, seed: int = 7, extra=None) -> None:
    """Generated Alpaca rows (benchmarks/generate.py: duplicates, NFD/whitespace variants) plus the
    awkward lines: bad JSON, a blank line, a number, escapes with an id, an empty-once-normalised
    instruction, invalid UTF-8. ``extra(n, record)`` may add fields to each generated record."""
    import sys

    import orjson

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the benchmarks package
    from benchmarks.generate import alpaca_records

    records = list(alpaca_records(rows, seed=seed))
    if extra is not None:
        records = [dict(rec, **extra(n, rec)) for n, rec in enumerate(records)]
    lines = [orjson.dumps(rec) for rec in records]
    lines[10] = b'{"instruction": "broken'  # bad JSON
    lines[20] = b""  # blank line: no record index
    lines[30] = b'{"instruction": "q", "output": 42}'  # number: the chunk falls back to record by record
    lines[40] = b'{"id": "k1", "instruction": "\\u1100\\u1161 \\ud55c", "output": "a\\r\\nb"}'  # escapes, id
    lines[50] = b'{"instruction": "   ", "output": "x"}'  # empty once normalised
    lines[2500] = b'{"instruction": "x", "output": "\xff\xfe"}'  # invalid UTF-8
    path.write_bytes(b"\n".join(lines) + b"\n")


# ------------------------------------------------------------------ a real Ray cluster (issue 12)
class LocalRayCluster:
    """A real multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``): a head node and
    ``nodes - 1`` worker nodes, each a separate set of Ray processes with ``cpus`` CPUs, all bound to
    127.0.0.1. The nodes run the kodolly this test process imports (its folder is put first on the
    nodes' PYTHONPATH: the shared venv's editable install may point at another checkout) and the test
    helpers under tests/ and ``paths`` (converters used only by tests). Tests connect through ``address``."""

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store_mb: int = 150, paths: tuple[Path, ...] = ()) -> None:
        import kodolly

        # Ray's own switch for a machine that is not a multi-host cluster: a node (and the driver's
        # resolution of "127.0.0.1:port") uses the loopback address instead of the host's public
        # interface. Read when ray is first imported, so it is set here, before that.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage report leaves the machine
        src = str(Path(kodolly.__file__).resolve().parent.parent)
        first = [src, str(Path(__file__).resolve().parent), *(str(p) for p in paths)]
        rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in first]
        os.environ["PYTHONPATH"] = os.pathsep.join([*first, *rest])
        from ray.cluster_utils import Cluster

        self.cpus = cpus
        self.object_store = object_store_mb * 1024 * 1024
        import socket

        with socket.socket() as sock:  # a free port for the head's Ray Client server (ray://)
            sock.bind(("127.0.0.1", 0))
            self.client_port = sock.getsockname()[1]
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args=self._node_args(include_dashboard=False, ray_client_server_port=self.client_port),
        )
        self.workers = [self.add_node() for _ in range(nodes - 1)]

    def _node_args(self, **extra):
        return {"num_cpus": self.cpus, "node_ip_address": "127.0.0.1", "object_store_memory": self.object_store, **extra}

    @property
    def address(self) -> str:
        return self.cluster.address

    @property
    def client_address(self) -> str:
        """``ray://`` address of the head's Ray Client server."""
        return f"ray://127.0.0.1:{self.client_port}"

    @property
    def node_ids(self) -> list[str]:
        return [node.node_id for node in self.cluster.list_all_nodes()]

    def add_node(self):
        node = self.cluster.add_node(**self._node_args())
        self.cluster.wait_for_nodes()
        return node

    def remove_node(self, node) -> None:
        """Kill a worker node's processes (not gracefully: as a machine that is lost)."""
        self.cluster.remove_node(node, allow_graceful=False)
        if node in self.workers:
            self.workers.remove(node)

    def shutdown(self) -> None:
        import ray

        ray.shutdown()
        self.cluster.shutdown()
