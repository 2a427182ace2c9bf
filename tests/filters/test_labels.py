import unicodedata

from kodolly.filters.labels import LabelFilter, split_list

from kodolly.rows import make_row


def row(id="r", instruction="질문입니다", response="답입니다", **fields):
    """A row as the pipeline hands it to filters (already normalised)."""
    return make_row(instruction=instruction, response=response, source="test", id=id, **fields)


def test_exclude_domains_from_a_comma_list_normalised():
    nfd = unicodedata.normalize("NFD", "보건")
    flt = LabelFilter("domain", exclude=["예체능, 종교", nfd + " "])
    assert flt.settings() == {"include": [], "exclude": ["예체능", "종교", "보건"]}
    rows = [row("a", domain="예체능"), row("b", domain="보건"), row("c", domain="사회"), row("d", domain="")]
    assert flt.apply(rows) == ["domain_excluded", "domain_excluded", None, None]


def test_include_domains_drops_everything_else_including_empty():
    flt = LabelFilter("domain", include="사회,인문")
    rows = [row("a", domain="사회"), row("b", domain="자연"), row("c", domain="")]
    assert flt.apply(rows) == [None, "domain_not_included", "domain_not_included"]


def test_category_include_and_exclude():
    flt = LabelFilter("category", include=["open_qa", "closed_qa"], exclude="closed_qa")
    rows = [row("a", category="open_qa"), row("b", category="closed_qa"), row("c", category="brainstorming")]
    assert flt.apply(rows) == [None, "category_excluded", "category_not_included"]


def test_split_list_drops_empty_items_and_repeats():
    assert split_list(("a,,b", " a ", "c")) == ["a", "b", "c"]
