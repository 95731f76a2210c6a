"""Small training configs for tests: one archive, a private cache, short windows."""

from __future__ import annotations

from nowcast.config import load_config


def small_config(archive, cache, *extra: str):
    """3 in / 3 out, a quarter of the frames for validation, augmentation, one cache worker;
    ``extra`` overrides (``section.key=value``) come last."""
    return load_config(
        None,
        [
            f"data.events=[{archive}]",
            f"data.cache_dir={cache}",
            "data.cache_workers=1",
            "sampler.t_in=3",
            "sampler.t_out=3",
            "sampler.split.validation=0.25",
            "sampler.augment=true",
            *extra,
        ],
    )
