"""The commands and factories of the packages the runtime may not import (train, export: ARCHITECTURE.md),
found through entry points; and stand-ins for the commands whose packages a runtime-only install lacks.

``importlib.metadata.entry_points(group=...)`` is Python 3.10+, and the runtime also runs on JetPack 5's
Python 3.8 (where ``entry_points()`` is a dict of groups, and training is not installed): hence ``plugins``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from importlib import metadata

import click

from edge.errors import EdgeError


def plugins(group: str, name: str | None = None) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group`` (only those called ``name``, when given)."""
    eps = metadata.entry_points()
    found = eps.select(group=group) if hasattr(eps, "select") else eps.get(group, ())
    return [ep for ep in found if name is None or ep.name == name]


def unavailable(name: str, missing: str) -> click.Command:
    """A stand-in for `edge NAME`: one line saying what it needs, exit code 2."""
    if sys.version_info < (3, 10):
        why = (f"`edge {name}` needs {missing} and Python 3.10+ (this is Python {sys.version_info[0]}."
               f"{sys.version_info[1]}, a runtime-only install): run it on a host and copy the bundle here "
               "(docs/jetson.md)")
    else:
        why = f"`edge {name}` needs {missing}, which is not installed here (pip install -e .)"

    @click.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                   help=f"(unavailable: needs {missing})")
    def cmd() -> None:
        raise EdgeError(why)
    return cmd


def add_commands(group: click.Group, commands: Iterable[click.Command], needs: str) -> None:
    """Adds ``commands``, or their stand-ins when ``needs`` is not installed; looked up, not imported
    (importing torch takes seconds, and every `edge` invocation registers every command)."""
    missing = importlib.util.find_spec(needs) is None
    for cmd in commands:
        group.add_command(unavailable(str(cmd.name), needs) if missing else cmd)
