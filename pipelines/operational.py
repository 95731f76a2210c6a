"""Operational-style batch: forecast and render every issue time in a range.

One forecast file per issue time and method
(``{output}/forecasts/{method}/{method}_{issue:%Y%m%dT%H%M}.nc``), its maps under
``{output}/maps/{method}/{issue:%Y%m%dT%H%M}/`` and a manifest per issue time; complete
issue times are skipped, so the same command run again (say every few minutes as new
files arrive, with a later ``end``) does only the new work.
"""

from __future__ import annotations

import dataclasses

from nowcast.config import BatchConfig
from pipelines.runner import BatchSummary, finish, run_batch


def run_operational(cfg: BatchConfig, **options) -> BatchSummary:
    """Run ``cfg`` as an operational batch (``options``: see :func:`pipelines.runner.run_batch`)."""
    if cfg.mode != "operational":
        cfg = dataclasses.replace(cfg, mode="operational")
    return finish(run_batch(cfg, **options))
