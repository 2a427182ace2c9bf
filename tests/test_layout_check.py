"""Checking layouts (src/kodolly/layout_check.py): schema errors and TOML syntax errors name the file and the line."""

import pytest

from kodolly.errors import ConfigError
from kodolly.layout_check import find_line
from kodolly.layouts import load_layout, parse_layout_text


# ------------------------------------------------------------------ bad layouts: the file and the line at fault


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ('name = "x"\n[fields]\ninstruction = "q"\nresponse = \n', "my.toml:4:", "not valid TOML"),
        ('name = "x"\nrecrods = "[]"\n[fields]\ninstruction = "q"\nresponse = "a"\n', "my.toml:2:", "recrods: unknown key"),
        ('name = "x"\n\n[fields]\ninstruction = "q"\nresponse = "a"\nanswer = "b"\n', "my.toml:6:", "fields.answer: unknown key"),
        ('[fields]\ninstruction = "q"\nresponse = { path = "a", dflt = "" }\n', "my.toml:3:", "fields.response.dflt: unknown key"),
        ('[fields]\ninstruction = "q"\n\nresponse = "a/b"\n', "my.toml:4:", "'a/b' is not a field path"),
        ('name = "x"\n[fields]\ninstruction = "q"\n', "my.toml:2:", "'response' is a required property"),
        ('[fields]\ninstruction = "q"\nresponse = "a"\ncategory = { const = "qa" }\n', "my.toml:4:", "'qa' is not a Dolly task type"),
        ('records = "data[]"\n[fields]\ninstruction = "q"\nresponse = "../a"\n', "my.toml:4:", "'../' climbs above the outer record"),
        ('name = "x"\nrecords = "data_info"\n[fields]\ninstruction = "q"\nresponse = "a"\n', "my.toml:2:", "is not a record path"),
        (
            '[fields]\ninstruction = "q"\nresponse = "a"\n\n[[checks]]\nsame = ["instruction", "response"]\nreason = "ok"\n\n'
            '[[checks]]\nsame = ["instruction", "answer"]\nreason = "bad"\n',
            "my.toml:10:",
            "checks.1.same.1: 'answer' is not one of",
        ),
        ('fields.instruction = "q"\nfields.response = 3\n', "my.toml:2:", "fields.response: a field is a path string or a table"),
        ('name = "My Layout"\n[fields]\ninstruction = "q"\nresponse = "a"\n', "my.toml:1:", "is not a converter name"),
        ('[fields]\ninstruction = "q"\nresponse = "a"\n[meta]\n"제목" = "t"\nfile = "f"\n', "my.toml:6:", "meta.file: this key is reserved"),
    ],
)
def test_bad_layout_names_the_file_and_line(text, where, says):
    with pytest.raises(ConfigError) as caught:
        parse_layout_text(text, source="my.toml")
    message = str(caught.value)
    assert message.startswith(where) and says in message, message


def test_bad_layout_file_on_disk(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('description = "x"\n[fields]\ninstruction = "question"\nresponse = "answer"\ncontxt = "text"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml:5: bad layout: fields\.contxt: unknown key"):
        load_layout(path)
    with pytest.raises(ConfigError, match="cannot read the layout"):
        load_layout(tmp_path / "absent.toml")


def test_find_line_follows_tables_arrays_of_tables_dotted_keys_and_inline_tables():
    text = (
        'name = "x"\n'                                   # 1
        '# a comment\n'                                  # 2
        '[fields]\n'                                     # 3
        'instruction = "q"\n'                            # 4
        'response = { path = "a", "default" = "" }\n'    # 5
        '\n'                                             # 6
        '[[checks]]\n'                                   # 7
        'same = ["instruction", "response"]\n'           # 8
        '[[checks]]\n'                                   # 9
        'reason = "r"\n'                                 # 10
        '[meta]\n'                                       # 11
        '"제목".sub = "t"\n'                              # 12
    )
    assert find_line(text, ["name"]) == 1
    assert find_line(text, ["fields"]) == 3
    assert find_line(text, ["fields", "instruction"]) == 4
    assert find_line(text, ["fields", "response", "default"]) == 5
    assert find_line(text, ["fields", "context"]) == 3  # absent: the enclosing table
    assert find_line(text, ["checks", 0, "same", 1]) == 8
    assert find_line(text, ["checks", 1, "reason"]) == 10
    assert find_line(text, ["meta", "제목", "sub"]) == 12
    assert find_line(text, ["nowhere"]) is None
