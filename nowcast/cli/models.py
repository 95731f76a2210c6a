"""``nowcast models``: the shipped models, what they forecast and how well (held out)."""

from __future__ import annotations

import click


@click.command("models")
def command() -> None:
    """List the models shipped with nowcast (for predict --model NAME): variable, step,
    frames in/out, training data and held-out scores, read from each model's own files."""
    # imported on use, so that `nowcast --help` stays fast
    from nowcast.trained.catalogue import PRETRAINED_DIR, describe_model, packaged_models

    names = packaged_models()
    if not names:
        click.echo(f"no shipped models in {PRETRAINED_DIR}")
        return
    blocks = ["\n".join(describe_model(PRETRAINED_DIR / name)) for name in names]
    click.echo("\n\n".join(blocks))
