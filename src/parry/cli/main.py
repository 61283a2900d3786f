"""``parry``: the command-line entry point; each command lives in its own module."""

from __future__ import annotations

import click

from .. import __version__
from .attack import attack
from .audit import audit
from .data import data
from .demo import demo
from .ensemble import ensemble
from .evaluate import evaluate
from .report import report
from .runs import runs
from .train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="parry")
def main() -> None:
    """Parry: attacks, defences and honest robustness evaluation for PyTorch classifiers."""


for command in (data, train, attack, evaluate, audit, runs, report, demo, ensemble):
    main.add_command(command)
