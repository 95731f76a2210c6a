"""nowcast: spatio-temporal weather nowcasting on gridded NetCDF fields.

The package reads like the pipeline, one subpackage per step::

    archive -> trainset -> model -> training -> methods -> verify -> render

Importing :mod:`nowcast` does no work: every module imports what it needs, and Keras,
Cartopy, pySTEPS and dask.distributed only when they are used (``docs/CONTRACTS.md``).
"""

__version__ = "0.1.0"
