"""The field that every setting is declared with, in ``comining.config``'s sections and in each
method's ``Options``: its default, and what the command line and its help are made from."""

from __future__ import annotations

from dataclasses import field


def setting(default, help: str = "", *, flags=(), choices=None, main: bool = False, metavar: str | None = None,
            recipe: bool = False):
    """A settings field: ``flags`` are extra spellings (the authors' code's, e.g. --closeset_ratio), ``main``
    puts it on `comining train --help` (the rest on --help-all), ``recipe`` marks a Co-mining option
    that recipes set."""
    return field(default=default, metadata={"help": help, "flags": tuple(flags), "choices": choices,
                                            "main": main, "metavar": metavar, "recipe": recipe})
