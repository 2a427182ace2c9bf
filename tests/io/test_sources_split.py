"""Split zip sets next to stray files (issue 4 fix in io/sources.py)."""

import shutil
from pathlib import Path

from kodolly.io.sources import expand_inputs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "aihub" / "Training" / "02.라벨링데이터"


def test_stray_file_beside_split_parts_is_ignored(tmp_path):
    for part in FIXTURES.glob("TL_02.RLHF데이터.zip.part*"):
        shutil.copy(part, tmp_path / part.name)
    # a backup copy beside the parts used to crash the part numbering with a ValueError
    shutil.copy(tmp_path / "TL_02.RLHF데이터.zip.part1", tmp_path / "TL_02.RLHF데이터.zip.part1.bak")
    inputs = expand_inputs([tmp_path / "TL_02.RLHF데이터.zip.part0"])
    assert [inp.name.rsplit("!", 1)[1] for inp in inputs] == ["/RMlabel.json", "/SFTlabel.json"]
    with inputs[0].open() as stream:
        assert stream.read().startswith(b"{")
