"""Batch workflows built on the library's public functions, run on ``dask.distributed``.

* :func:`run_operational` — forecast and render every issue time in a range, one file per
  issue time (``pipelines.operational``);
* :func:`run_backfill` — forecast many issue times with the model and the baselines, then
  verify them all together (``pipelines.backfill``);
* :func:`run_config` — either, by the config's ``mode`` (what ``nowcast batch`` runs).

Both are idempotent and resumable (a per-issue-time manifest, written last, marks an
issue time complete; see :mod:`pipelines.outputs`). Imports are lazy: ``import
pipelines`` loads nothing heavy.
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

_EXPORTS = {
    "run_operational": "pipelines.operational",
    "run_backfill": "pipelines.backfill",
    "run_batch": "pipelines.runner",
    "batch_client": "pipelines.runner",
    "BatchSummary": "pipelines.runner",
}

__all__ = sorted([*_EXPORTS, "run_config"])


def run_config(cfg, **options):
    """Run a :class:`nowcast.config.BatchConfig` by its ``mode``; returns a ``BatchSummary``."""
    if cfg.mode == "backfill":
        from pipelines.backfill import run_backfill

        return run_backfill(cfg, **options)
    from pipelines.operational import run_operational

    return run_operational(cfg, **options)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
