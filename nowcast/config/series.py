"""The ``series:`` section of an experiment config: a recurrent network on 1-D series.

A config with ``model.kind: series`` trains :mod:`nowcast.series` (stacked LSTM or GRU
layers with dropout and a dense head) on series taken from ``data.events``: gridded
archives at ``series.points`` (``all`` grid points, or ``LAT,LON`` / place names), or
station files (CSV ``time,value`` or CF ``featureType: timeSeries`` NetCDF). The windows
are ``sampler.t_in`` steps in and ``sampler.t_out`` out, split in time by
``sampler.split`` like the gridded models; ``train.*`` is read as for them. The other
``model.*`` and ``preprocess.*`` keys (ConvLSTM filters, crops, transforms) do not apply:
a series model z-scores its inputs by the training period's mean and standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nowcast.config.loading import require

#: How a series model forecasts several steps: ``direct`` (one output per lead, in one pass)
#: or ``recursive`` (one step ahead, fed back ``t_out`` times: step by step).
STRATEGIES = ("direct", "recursive")


@dataclass(frozen=True)
class SeriesConfig:
    """A recurrent series forecaster and where its series come from.

    ``points``: ``["all"]`` (every grid point of each gridded archive) or points as
    ``"LAT,LON"`` or place names (``nowcast/resources/places.csv``); station files give
    their own stations. ``units``: the values' units for CSV files whose header does not
    name them (``time,t2m (K)``). ``cell``: ``lstm`` or ``gru``; ``hidden``: units per
    stacked layer; ``dropout`` after each; ``head``: hidden dense layers before the output
    layer (none: the output layer alone). ``strategy``: ``direct`` or ``recursive``.
    ``time_features``: sine and cosine of the time of day and of the day of the year as
    extra inputs.
    """

    points: tuple[str, ...] = ("all",)
    units: str | None = None
    cell: Literal["lstm", "gru"] = "lstm"
    hidden: tuple[int, ...] = (64,)
    dropout: float = 0.1
    head: tuple[int, ...] = ()
    strategy: Literal["direct", "recursive"] = "direct"
    time_features: bool = True

    def validate(self) -> SeriesConfig:
        require(len(self.points) >= 1, "series.points: give 'all' or at least one point")
        require(
            len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
            "series.hidden must be one or more positive layer sizes",
        )
        require(all(h >= 1 for h in self.head), "series.head sizes must be positive")
        require(0 <= self.dropout < 1, "series.dropout must be in [0, 1)")
        return self
