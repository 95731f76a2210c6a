"""`nowcast mapdata` (issue 23): the map layers fetched once into the cache folder, copied
from an offline folder, or one line saying what to do. No network: the download is faked."""

from __future__ import annotations

import urllib.error

import pytest
from click.testing import CliRunner

from nowcast.cli import main
from nowcast.render import mapfetch
from nowcast.render.mapdata import _geometries, cache_dir, find_map_data


@pytest.fixture
def no_network(monkeypatch):
    def refuse(scratch, layer, res):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mapfetch, "cartopy_download", refuse)


def test_copies_an_offline_folder_into_the_cache_and_maps_find_it(
    shared_data, tmp_path, monkeypatch, no_network
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NOWCAST_MAP_DATA", raising=False)
    src = shared_data / "maps"
    res = CliRunner().invoke(main, ["mapdata", "--from", str(src), "--resolution", "110m"])
    assert res.exit_code == 0, res.output
    folder = cache_dir()
    assert folder == tmp_path / "cache" / "nowcast" / "maps"
    assert res.output == f"map data in {folder}: 3 layers copied from {src}\n"
    coast = folder / "shapefiles/natural_earth/physical/ne_110m_coastline.shp"
    assert len(_geometries(str(coast))) > 100  # whole shapefiles, readable
    assert (folder / "shapefiles/gshhs/c/GSHHS_c_L1.shp").is_file()
    found = find_map_data(resolution="110m")  # no --map-data, no variable: the cache
    assert found.source == "Natural Earth 110m" and found.folder == str(folder)
    assert found.lakes and found.borders
    again = CliRunner().invoke(main, ["mapdata", "--from", str(src), "--resolution", "110m"])
    assert again.output == f"map data in {folder}: 3 already there\n"
    assert not list(folder.rglob(".*"))  # no temporaries left


def test_downloads_what_is_missing(tmp_path, monkeypatch):
    def fake(scratch, layer, res):  # what Cartopy's downloader leaves in its data_dir
        shp = mapfetch._ne_path(scratch, layer, res)
        shp.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".shp", ".shx", ".dbf", ".prj"):
            shp.with_suffix(suffix).write_bytes(b"x")

    monkeypatch.setattr(mapfetch, "cartopy_download", fake)
    target = tmp_path / "maps"
    res = CliRunner().invoke(main, ["mapdata", "--to", str(target), "--resolution", "50m"])
    assert res.exit_code == 0, res.output
    assert res.output == f"map data in {target}: 3 layers downloaded from naturalearthdata.com\n"
    assert sorted(p.name for p in target.rglob("*.shp")) == [
        "ne_50m_admin_0_boundary_lines_land.shp", "ne_50m_coastline.shp", "ne_50m_lakes.shp",
    ]  # fmt: skip
    assert [p.name for p in target.iterdir()] == ["shapefiles"]  # the scratch folder is gone


def test_no_network_and_no_folder_is_one_line(tmp_path, no_network):
    target = tmp_path / "maps"
    res = CliRunner().invoke(main, ["mapdata", "--to", str(target)])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and res.output.startswith(
        "Error: cannot download the Natural Earth layers ([Errno -3] Temporary failure in "
        "name resolution): copy them from an offline folder instead, `nowcast mapdata --from "
        "DIR`"
    )
    assert not list(target.rglob("*.shp")) and not list(target.glob(".mapdata.*"))
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(main, ["mapdata", "--from", str(empty), "--to", str(target)])
    assert res.exit_code == 1 and res.output == (
        f"Error: map data {empty} holds no Natural Earth coastlines (expected "
        "shapefiles/natural_earth/physical/ne_<res>_coastline.shp)\n"
    )
