"""Batch workflows built on the library's public functions, run on ``dask.distributed``.

* :func:`run_operational` — forecast and render every issue time in a range, one file per
  issue time (``pipelines.operational``);
* :func:`run_backfill` — forecast many issue times with the model and the baselines, then
  verify them all together (``pipelines.backfill``);
* :func:`run_config` — either, by the config's ``mode`` (what ``nowcast batch`` runs).

Both are idempotent and resumable (a per-issue-time manifest, written last, marks an
issue time complete; see :mod:`pipelines.outputs`). ``dask.distributed`` is imported
(and a cluster started) only when a batch runs.
"""

from __future__ import annotations

from pipelines.backfill import run_backfill
from pipelines.operational import run_operational
from pipelines.runner import BatchSummary, batch_client, run_batch

__all__ = [
    "BatchSummary",
    "batch_client",
    "run_backfill",
    "run_batch",
    "run_config",
    "run_operational",
]


def run_config(cfg, **options) -> BatchSummary:
    """Run a :class:`nowcast.config.BatchConfig` by its ``mode``; returns a ``BatchSummary``."""
    if cfg.mode == "backfill":
        return run_backfill(cfg, **options)
    return run_operational(cfg, **options)
