"""Helpers shared by the publishing tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hub"
TOKEN = "hf_kodollyTestToken0123456789abcdef"


def load_folder(folder: Path, cache: Path):
    """``datasets.load_dataset`` on a local Hub folder (use with the ``offline`` fixture)."""
    import datasets

    return datasets.load_dataset(str(folder), cache_dir=str(cache))


def conversation_folder(tmp_path: Path) -> tuple[Path, Path]:
    """The kovicuna conversation fixture converted by kodolly (``messages`` with real turns) and built
    into a Hub folder: (the kodolly output, the folder)."""
    import kodolly
    from kodolly.hub import build_folder

    out = tmp_path / "run" / "conv.parquet"
    kodolly.convert(FIXTURES.parent / "sharegpt" / "kovicuna_system.json", "kovicuna", out)
    folder = tmp_path / "hub"
    build_folder(out, folder)
    return out, folder


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a folder by its relative POSIX path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_card(folder: Path) -> tuple[dict, str]:
    """The card's YAML front matter (parsed) and body."""
    import yaml

    text = (folder / "README.md").read_text("utf-8")
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head), body
