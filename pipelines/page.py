"""A batch's page: ``{output}/index.html`` (:mod:`nowcast.render.page`) over all its issue
times.

:class:`BatchPage` writes it when the tasks are submitted, rewrites it as issue times
complete (at most every ``every`` seconds; each rewrite is a complete page, written
atomically, and reloads itself every 30 s while the batch runs, keeping the viewer's
place), and once more when the batch has finished (its summary and report in it). A page
that cannot be written while the batch runs does not stop the batch; the last one is an
output like the others.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nowcast.config import BatchConfig
from nowcast.errors import NowcastError
from nowcast.render.page import write_page


class BatchPage:
    """The page of one batch run; ``meta``: what the command adds (its command line)."""

    def __init__(self, cfg: BatchConfig, sources, meta: Mapping[str, Any] | None = None, every=2.0):
        self.output = Path(cfg.output)
        self.every = every
        self.last = float("-inf")
        self.meta: dict[str, Any] = {
            "title": f"nowcast batch: {cfg.name} ({cfg.mode})",
            "inputs": list(sources),
            "methods": list(cfg.methods),
            "model": cfg.model,
            "leads": cfg.n_leads,
            "issue times": f"{cfg.start or 'first'} .. {cfg.end or 'last'} every "
            f"{cfg.every or 'archive step'}",
            "variable": cfg.variable,
            **(meta or {}),
        }

    def running(self, summary, results: Mapping | None = None, *, force: bool = False) -> None:
        """Rewrite the page while the batch runs (throttled unless ``force``)."""
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        results = results or {}
        failed = {t.isoformat(): m for t, m in summary.failed.items()}
        failed |= {t.isoformat(): r.error for t, r in results.items() if r.status != "done"}
        status = {
            "issue_times": [t.isoformat() for t in summary.issue_times],
            "done": [t.isoformat() for t, r in results.items() if r.status == "done"],
            "skipped": [t.isoformat() for t in summary.skipped],
            "failed": failed,
        }
        try:
            write_page(self.output, {**self.meta, "status": status, "running": True})
        except (NowcastError, OSError):
            pass  # the next rewrite, or the last page, tries again

    def finished(self, summary) -> Path:
        """The last page: the batch's summary (``batch-summary.json``) and report."""
        return write_page(self.output, {**self.meta, "status": summary.to_dict()})
