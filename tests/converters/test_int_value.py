from kodolly.converters import int_value


def test_int_value_takes_whole_numbers_as_files_store_them():
    assert [int_value(v) for v in (3, 3.0, "3", " 12 ", "-4", -4)] == [3, 3, 3, 12, -4, -4]


def test_int_value_refuses_what_is_not_a_whole_number():
    assert [int_value(v) for v in (True, 3.5, "3.5", "three", "", None, [1])] == [None] * 7
