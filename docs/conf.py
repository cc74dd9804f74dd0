"""Sphinx configuration of the meanfield documentation (``make docs``: HTML with warnings as errors, then the doctests).

Builds offline: no intersphinx, no downloads. The API pages list their names by hand, grouped by topic, each with a
doctest example; public names that are in ``__all__`` but on no topic page yet are documented automatically on
``api/other`` (see :func:`_other_names`), so that a new name is never missing from the reference.
"""

import doctest
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

# Figures for the docs are drawn off-screen.
os.environ.setdefault("MPLBACKEND", "Agg")

project = "meanfield"
author = "the meanfield authors"
copyright = "2026, the meanfield authors"
try:
    import meanfield

    release = version = meanfield.__version__
except Exception:  # pragma: no cover - the build reports the import error through autodoc
    release = version = ""

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# figures/ holds the reports of `make figures` (linked from the README, not pages of the guide).
exclude_patterns = ["_build", "figures/**", "Thumbs.db", ".DS_Store"]

# MyST: $…$ and $$…$$ maths, heading anchors for links such as theory.md#1-signal-propagation.
myst_enable_extensions = ["dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3

# autodoc + numpydoc. The docstrings use Unicode maths and free-form sections; numpydoc's validation is off (it would
# judge the docstrings' style, not the documentation's correctness), and class members are listed by autodoc itself.
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

# Doctests: every example runs with these names in scope (the bare names too, for the examples inside docstrings);
# examples round their floats themselves. The empirical examples need torch.
doctest_global_setup = """
import numpy as np
import meanfield as mf
from meanfield import *
import torch
import empirical as emp
np.set_printoptions(precision=6, suppress=True)
"""
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.DONT_ACCEPT_TRUE_FOR_1

html_theme = "alabaster"
html_title = "meanfield"
html_static_path = []
html_theme_options = {"description": "Mean-field theory of deep networks at initialisation", "fixed_sidebar": True}

nitpicky = False


# --- public names not yet on a topic page ------------------------------------------------------------------------------
_DIRECTIVE = re.compile(r"^\.\.\s+auto(?:function|class|data|exception|attribute)::\s+(\S+)", re.M)


def documented_names() -> set[str]:
    """Fully qualified names (``meanfield.q_star``) with an autodoc directive on a hand-written API page."""
    names = set()
    for page in (DOCS / "api").glob("*.rst"):
        if page.stem == "other":
            continue
        names.update(_DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    return names


def _other_names() -> list[tuple[str, str]]:
    import importlib

    done = documented_names()
    missing = []
    for package in ("meanfield", "empirical"):
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        for name in module.__all__:
            if f"{package}.{name}" not in done:
                missing.append((package, name))
    return missing


def _directive_for(package: str, name: str) -> str:
    import importlib

    obj = getattr(importlib.import_module(package), name)
    if isinstance(obj, type):
        kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        extra = "\n   :members:\n" if kind == "autoclass" else "\n"
    elif callable(obj):
        kind, extra = "autofunction", "\n"
    else:
        kind, extra = "autodata", "\n   :no-value:\n"
    return f".. {kind}:: {package}.{name}{extra}"


def _fill_other(app, docname, source):
    if docname != "api/other":
        return
    missing = _other_names()
    if missing:
        body = "\n".join(_directive_for(p, n) for p, n in missing)
    else:
        body = "Every public name is documented on a topic page."
    source[0] = source[0].replace(".. other-names-go-here", body)


def _optional_pages(app, docname, source):
    # docs/edge_of_chaos.md is written alongside this guide; until it exists the toctree leaves it out.
    if docname == "index" and not (DOCS / "edge_of_chaos.md").exists():
        source[0] = source[0].replace("   edge_of_chaos\n", "")


_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _escape_bars(app, what, name, obj, options, lines):
    """``|x|`` in a docstring is an absolute value or a norm, not a reST substitution: escape bars outside literals.

    A line that starts with ``| `` or ``+-`` (a table or a line block) is left alone.
    """
    for i, line in enumerate(lines):
        if "|" not in line or line.lstrip().startswith(("| ", "+-", "+=")):
            continue
        parts = _LITERAL.split(line)
        for j in range(0, len(parts), 2):
            parts[j] = re.sub(r"(?<!\\)\|", r"\\|", parts[j])
        lines[i] = "".join(parts)


def _theory_labels(app, docname, source):
    # Targets theory-s0 … theory-s8 for the "THEORY §n" links of the API pages, added at build time so that
    # docs/theory.md stays plain Markdown in the repository.
    if docname == "theory":
        source[0] = re.sub(r"^(## §(\d+) )", r"(theory-s\2)=\n\1", source[0], flags=re.M)


_THEORY_CITATION = re.compile(r"\bTHEORY(?:\.md)? §(\d+)")


def _link_theory(app, what, name, obj, options, lines):
    """"THEORY §n" in a docstring (outside literals) becomes a link to that section of the theory page."""
    for i, line in enumerate(lines):
        if "§" not in line:
            continue
        parts = _LITERAL.split(line)
        for j in range(0, len(parts), 2):
            parts[j] = _THEORY_CITATION.sub(r":ref:`THEORY §\1 <theory-s\1>`", parts[j])
        lines[i] = "".join(parts)


def _always_reread_other(app, env, added, changed, removed):
    # api/other depends on __all__ and on the other pages, not on its own source: regenerate it on every build.
    return ["api/other"]


_FIELD = re.compile(r"^[A-Za-z_][\w, ]*\s:\s")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def _separate_fields(app, what, name, obj, options, lines):
    """A free-form list of ``name : description`` lines before the first numpydoc section (a habit of some result
    classes' docstrings) is valid reST only with a blank line before each entry: insert them. Sections are left alone.
    """
    out = []
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1]) and line.strip():
            out.extend(lines[i:])
            break
        if _FIELD.match(line) and out and out[-1].strip():
            out.append("")
        out.append(line)
    lines[:] = out


def _purge_before_reading(app, env, docnames):
    # A name moves between api/other and a topic page in an incremental build: forget every page that is about to be
    # read before reading any, so that the page which held the name last time cannot clash with its new home.
    for docname in docnames:
        app.events.emit("env-purge-doc", env, docname)
        env.clear_doc(docname)


def setup(app):
    app.connect("env-get-outdated", _always_reread_other)
    app.connect("env-before-read-docs", _purge_before_reading)
    app.connect("source-read", _fill_other)
    app.connect("source-read", _optional_pages)
    app.connect("source-read", _theory_labels)
    # numpydoc rewrites docstrings at priority 500; escape first.
    app.connect("autodoc-process-docstring", _escape_bars, priority=100)
    app.connect("autodoc-process-docstring", _separate_fields, priority=100)
    app.connect("autodoc-process-docstring", _link_theory, priority=110)
