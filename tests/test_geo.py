"""nowcast.geo's unit and spacing helpers: one table of length units for every module."""

from __future__ import annotations

from nowcast.geo import coord_spacing, metres_per_unit, xy_scale


def test_length_units_have_one_table():
    assert metres_per_unit("km") == metres_per_unit(" Kilometres ") == 1000.0
    assert metres_per_unit("m") == metres_per_unit("metre") == metres_per_unit(None) == 1.0
    assert metres_per_unit("degrees_east") is None and xy_scale("degrees_east") == 1.0
    assert xy_scale("kilometer") == 1000.0


def test_coord_spacing_is_the_median_step_either_way():
    assert coord_spacing([0.0, 2.0, 4.0, 7.0]) == 2.0
    assert coord_spacing([3.0, 2.0, 1.0]) == 1.0
    assert coord_spacing([5.0]) is None
