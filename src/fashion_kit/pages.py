"""The kit's HTML pages (the class report, the students' feedback pages), rendered from the Jinja2
templates in ``templates/`` (package data) with autoescape on.

Most of what a page shows comes from students' notebooks and uploads (names, file names, messages
quoting their code), so every value is escaped as it is written into a page; a template writes
markup, a value never does.
"""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("fashion_kit", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render(template: str, **values) -> str:
    """The page ``template`` (a file of ``templates/``) filled with ``values``, every one escaped."""
    return _environment().get_template(template).render(**values)
