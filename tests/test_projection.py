"""CF grid mapping -> Cartopy CRS: the right class, and points land where pyproj says."""

from __future__ import annotations

import cartopy.crs as ccrs
import numpy as np
import pyproj
import pytest
import xarray as xr

from nowcast.errors import NowcastError
from nowcast.render.projection import crs_from_grid_mapping, grid_edges, lonlat_crs

# dataset -> (file under shared/data, grid-mapping variable, expected Cartopy class name)
DATASETS = {
    "bom": ("radar/bom-66-2020-10-31/66_20201031_050000.prcp-c10.nc", "proj", "AlbersEqualArea"),
    "knmi": ("radar/knmi-2010-08-26.nc", "crs", "Stereographic"),
    "mch": ("radar/mch-2015-05-15.nc", "crs", "ObliqueMercator"),
    "fmi": ("radar/fmi-2016-09-28.nc", "crs", "Stereographic"),
    "rmi": ("radar/rmi-2021-07-04.nc", "crs", "LambertConformal"),
}


def _grid(shared_data, key):
    """(grid-mapping attrs, x metres, y metres) read straight from the file."""
    rel, var, _ = DATASETS[key]
    with xr.open_dataset(shared_data / rel) as ds:
        attrs = dict(ds[var].attrs)
        scale = 1000.0 if str(ds["x"].attrs.get("units", "")).startswith("k") else 1.0
        return attrs, ds["x"].values * scale, ds["y"].values * scale


def _to_lonlat(crs, x, y):
    pts = lonlat_crs().transform_points(crs, np.asarray(x, float), np.asarray(y, float))
    return pts[:, 0], pts[:, 1]


@pytest.mark.parametrize("key", list(DATASETS))
def test_class_and_ellipsoid(shared_data, key):
    attrs, _, _ = _grid(shared_data, key)
    crs = crs_from_grid_mapping(attrs)
    assert isinstance(crs, getattr(ccrs, DATASETS[key][2]))
    assert crs.globe.semimajor_axis == pytest.approx(float(attrs["semi_major_axis"]))
    assert crs.globe.semiminor_axis == pytest.approx(float(attrs["semi_minor_axis"]))


@pytest.mark.parametrize("key", ["knmi", "mch", "fmi", "rmi"])
def test_grid_points_match_pyproj_wkt(shared_data, key):
    """Corners and centre of the grid: Cartopy from CF attrs == pyproj from crs_wkt."""
    attrs, x, y = _grid(shared_data, key)
    crs = crs_from_grid_mapping(attrs)
    xx, yy = np.meshgrid(x[[0, x.size // 2, -1]], y[[0, y.size // 2, -1]])
    lon, lat = _to_lonlat(crs, xx.ravel(), yy.ravel())
    ref = pyproj.Transformer.from_crs(
        pyproj.CRS.from_wkt(attrs["crs_wkt"]), "EPSG:4326", always_xy=True
    )
    rlon, rlat = ref.transform(xx.ravel(), yy.ravel())
    np.testing.assert_allclose(lon, rlon, atol=1e-6)
    np.testing.assert_allclose(lat, rlat, atol=1e-6)


def test_bom_radar_site_and_brisbane(shared_data):
    """Grid centre = Mt Stapylton radar (153.24E, 27.718S); Brisbane agrees with pyproj from_cf."""
    attrs, x, y = _grid(shared_data, "bom")
    crs = crs_from_grid_mapping(attrs)
    # the grid is symmetric about the radar: centre between the two middle cells
    cx, cy = (x[255] + x[256]) / 2, (y[255] + y[256]) / 2
    assert (cx, cy) == (0.0, 0.0)
    lon, lat = _to_lonlat(crs, [cx], [cy])
    assert lon[0] == pytest.approx(153.240, abs=0.01) and lat[0] == pytest.approx(-27.718, abs=0.01)
    bx, by = crs.transform_point(153.028, -27.468, lonlat_crs())  # Brisbane CBD
    assert -30e3 < bx < -10e3 and 20e3 < by < 35e3  # ~21 km west, ~28 km north of the radar
    ref = pyproj.Transformer.from_crs(pyproj.CRS.from_cf(attrs), "EPSG:4326", always_xy=True)
    xx, yy = np.meshgrid(x[[0, -1]], y[[0, -1]])
    lon, lat = _to_lonlat(crs, xx.ravel(), yy.ravel())
    rlon, rlat = ref.transform(xx.ravel(), yy.ravel())
    np.testing.assert_allclose(lon, rlon, atol=1e-6)
    np.testing.assert_allclose(lat, rlat, atol=1e-6)


def test_known_places_inside_the_right_grids(shared_data):
    """Cities in each radar's domain map to grid coordinates inside it (~0.05 deg is < 10 km)."""
    places = {
        "knmi": (5.18, 52.10),
        "mch": (8.54, 47.37),
        "fmi": (24.94, 60.17),
        "rmi": (4.35, 50.85),
    }
    for key, (lon, lat) in places.items():
        attrs, x, y = _grid(shared_data, key)
        crs = crs_from_grid_mapping(attrs)
        px, py = crs.transform_point(lon, lat, lonlat_crs())
        assert x.min() < px < x.max() and y.min() < py < y.max(), key
        back = lonlat_crs().transform_point(px, py, crs)
        assert back == pytest.approx((lon, lat), abs=1e-6)
    # the Swiss grid's published coordinates of Zurich (LV03): about 683 km E, 248 km N
    attrs, _, _ = _grid(shared_data, "mch")
    zx, zy = crs_from_grid_mapping(attrs).transform_point(8.5417, 47.3769, lonlat_crs())
    assert zx == pytest.approx(683_000, abs=1500) and zy == pytest.approx(248_000, abs=1500)


def test_latitude_longitude_is_plate_carree():
    crs = crs_from_grid_mapping({"grid_mapping_name": "latitude_longitude"})
    assert isinstance(crs, ccrs.PlateCarree)
    assert crs.transform_point(-0.1, 51.5, lonlat_crs()) == pytest.approx((-0.1, 51.5))
    sphere = crs_from_grid_mapping(
        {"grid_mapping_name": "latitude_longitude", "earth_radius": 6371229.0}
    )
    assert isinstance(sphere, ccrs.PlateCarree) and sphere.globe.semimajor_axis == 6371229.0


def test_southern_polar_stereographic_and_general_oblique_mercator():
    south = {
        "grid_mapping_name": "polar_stereographic",
        "straight_vertical_longitude_from_pole": 0.0,
        "standard_parallel": -71.0,
        "semi_major_axis": 6378137.0,
        "semi_minor_axis": 6356752.314245,
    }
    omerc = {
        "grid_mapping_name": "oblique_mercator",
        "latitude_of_projection_origin": 4.0,
        "longitude_of_projection_origin": 115.0,
        "azimuth_of_central_line": 53.3158204722,
        "scale_factor_at_projection_origin": 0.99984,
    }
    # CF has no rectified-grid angle: PROJ's omerc default (gamma = azimuth) is the reading used
    omerc_ref = pyproj.CRS(
        "+proj=omerc +lat_0=4 +lonc=115 +alpha=53.3158204722 +k=0.99984 +ellps=WGS84 +units=m"
    )
    cases = (
        (south, ccrs.Stereographic, pyproj.CRS.from_cf(south), (140.0, -66.7)),
        (omerc, ccrs.ObliqueMercator, omerc_ref, (114.0, 4.5)),
    )
    for attrs, cls, ref_crs, lonlat in cases:
        crs = crs_from_grid_mapping(attrs)
        assert isinstance(crs, cls)
        x, y = crs.transform_point(*lonlat, lonlat_crs())
        rx, ry = pyproj.Transformer.from_crs("EPSG:4326", ref_crs, always_xy=True).transform(
            *lonlat
        )
        assert (x, y) == pytest.approx((rx, ry), abs=0.01)
    assert crs_from_grid_mapping(south).proj4_params["lat_0"] == -90


def test_wkt_fallback_and_errors(shared_data):
    attrs, x, y = _grid(shared_data, "mch")
    odd = {"grid_mapping_name": "something_new", "crs_wkt": attrs["crs_wkt"]}
    crs = crs_from_grid_mapping(odd, extent=grid_edges(x, y))
    assert isinstance(crs, ccrs.Projection)
    lon, lat = _to_lonlat(crs, [x[10]], [y[20]])
    rlon, rlat = pyproj.Transformer.from_crs(
        pyproj.CRS.from_wkt(attrs["crs_wkt"]), "EPSG:4326", always_xy=True
    ).transform(x[10], y[20])
    assert (lon[0], lat[0]) == pytest.approx((rlon, rlat), abs=1e-6)
    x0, x1, y0, y1 = crs.bounds
    assert x0 < x.min() and x1 > x.max() and y0 < y.min() and y1 > y.max()
    # no extent: bounds around the projection centre still hold the (Swiss) grid
    x0, x1, y0, y1 = crs_from_grid_mapping(odd).bounds
    assert x0 < x.min() and x1 > x.max() and y0 < y.min() and y1 > y.max()
    with pytest.raises(NowcastError, match="vertical_perspective"):
        crs_from_grid_mapping({"grid_mapping_name": "vertical_perspective"})
    with pytest.raises(NowcastError, match="albers_conical_equal_area.*standard_parallel"):
        crs_from_grid_mapping(
            {
                "grid_mapping_name": "albers_conical_equal_area",
                "longitude_of_central_meridian": 0,
                "latitude_of_projection_origin": 0,
            }
        )
    with pytest.raises(NowcastError, match="no grid_mapping_name"):
        crs_from_grid_mapping({})


def test_grid_edges_are_outer_cell_edges():
    x = np.array([0.5, 1.5, 2.5]) * 1000
    y = np.array([10.0, 8.0, 6.0, 4.0])  # descending still gives (min, max)
    assert grid_edges(x, y) == (0.0, 3000.0, 3.0, 11.0)
