from kodolly.textedit import splice


def test_splice_replaces_and_inserts_in_order():
    assert splice("abcdef", [(1, 3, "X"), (4, 4, "+"), (6, 6, "!")]) == "aXd+ef!"
    assert splice("abc", []) == "abc"
    assert splice("", [(0, 0, "m")]) == "m"
