"""errors.one_line: how every exception becomes the one line a user sees."""

from __future__ import annotations

from nowcast.errors import DataError, one_line


def test_one_line_takes_the_first_line_and_names_foreign_types():
    assert one_line(DataError("bad file\ndetails")) == "bad file"
    assert one_line(KeyError("x")) == "KeyError: 'x'"
    assert one_line(ValueError("  first\nsecond  ")) == "ValueError: first"
    assert one_line(ValueError("first\nsecond"), typed=False) == "first"
    assert one_line(DataError("bad"), typed=True) == "DataError: bad"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert one_line(DataError("")) == "DataError"
