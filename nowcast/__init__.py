"""nowcast: spatio-temporal weather nowcasting on gridded NetCDF fields.

The package reads like the pipeline::

    data -> model -> train -> forecast -> verify -> render

Importing :mod:`nowcast` does no work: Keras, Dask and Cartopy are imported by the
modules that need them, when they are used.
"""

__version__ = "0.1.0"
