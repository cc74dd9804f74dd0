"""The documentation: "THEORY §n" citations resolve to docs/theory.md, every public name is in the API reference with an
example that runs, and the README points to the built guide.

The Sphinx build itself (HTML with warnings as errors, then the doctests) is ``make docs``, not a unit test: it takes
longer than a unit test should. These tests parse the sources only.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THEORY = DOCS / "theory.md"
SECTIONS = range(0, 9)  # §0 … §8

# --- §-citations ------------------------------------------------------------------------------------------------------

# "§3", "§ 3", "§3–5", "§3-§5", "§0–1": a section number, optionally a range.
_CITATION = re.compile(r"§\s?(\d+)(?:\s?[–—-]\s?§?\s?(\d+))?")
# A section of somebody else's text: the § follows a paper reference, "Author et al. 2019, §3", "Author & Other 2017 §2",
# "Author et al. 2017, "Title", §2", or "Author (2019) §3".
_PAPER = re.compile(
    r"""(?:et\ al\.?|\b[A-Z][A-Za-z'\-]+)          # an author
        ,?\s*\(?\d{4}[a-z]?\)?                       # a year
        (?:,?\s*["“][^"”]*["”])?                     # an optional quoted title
        ,?\s*$""",
    re.X,
)
# Documents of the project's own making that users do not get: a citation of them cannot resolve.
_FOREIGN_DOCUMENT = re.compile(r"\b(STYLE|DESIGN)(?:\.md)?\W{0,3}$")


def theory_sections(text: str | None = None) -> list[int]:
    """Section numbers of the headings "§n …" of docs/theory.md, in order."""
    text = THEORY.read_text(encoding="utf-8") if text is None else text
    return [int(m) for m in re.findall(r"^#{1,6}\s+§(\d+)\b", text, flags=re.M)]


def citations(text: str) -> list[tuple[int, str, list[int] | None]]:
    """Every § in ``text``: (line number, the cited text, the cited THEORY sections, or None for a paper's section).

    A § counts as a citation of THEORY unless it follows a paper reference (author and year). A citation of a
    document users do not have (STYLE, DESIGN) is returned with the sections ``[-1]``, which never resolve.
    """
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for m in _CITATION.finditer(line):
            before = line[max(0, m.start() - 120) : m.start()]
            if _FOREIGN_DOCUMENT.search(before):
                out.append((lineno, line.strip(), [-1]))
                continue
            if _PAPER.search(before):
                out.append((lineno, line.strip(), None))
                continue
            first = int(m.group(1))
            last = int(m.group(2)) if m.group(2) else first
            out.append((lineno, line.strip(), list(range(first, last + 1)) if last >= first else [first, last]))
    return out


def _notebook_text(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(cell.get("source", "")) for cell in nb.get("cells", []))


def cited_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder, patterns in (
        ("meanfield", ("*.py",)),
        ("empirical", ("*.py",)),
        ("benchmarks", ("*.py", "*.md")),
        ("notebooks", ("*.ipynb",)),
        ("docs", ("*.md", "*.rst", "*.py")),
    ):
        for pattern in patterns:
            files.extend(p for p in sorted((ROOT / folder).rglob(pattern)) if "_build" not in p.parts)
    return [f for f in files if f.exists() and f != THEORY]


def _text(path: Path) -> str:
    return _notebook_text(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8")


def test_theory_document_is_titled_theory_and_has_sections_0_to_8_in_order():
    text = THEORY.read_text(encoding="utf-8")
    title = next(line for line in text.splitlines() if line.startswith("# "))
    assert "THEORY" in title, f"the title of docs/theory.md must name it THEORY (citations read 'THEORY §n'): {title!r}"
    assert theory_sections(text) == list(SECTIONS)


def test_citation_parser_on_known_forms():
    """The parser itself, on the forms found in the code (so that the resolution test below cannot pass vacuously)."""
    cases = {
        "see THEORY §3 for κ": [[3]],
        "THEORY §1's table": [[1]],
        "(THEORY §3–5)": [[3, 4, 5]],
        "THEORY §3-§5": [[3, 4, 5]],
        "THEORY §0–1": [[0, 1]],
        "| fisher_depth | λ_max vs depth | §3": [[3]],
        "THEORY.md §1 table": [[1]],
        "THEORY §9": [[9]],
        'Pennington et al. 2017, "Resurrecting the sigmoid", §2': [None],
        "Schoenholz et al. 2017 §3": [None],
        "(Karakida et al. 2019, §3; THEORY §3)": [None, [3]],
        "the formula is written once (STYLE §6)": [[-1]],
    }
    for text, expected in cases.items():
        assert [c[2] for c in citations(text)] == expected, text


def test_a_wrong_section_is_reported():
    assert set(theory_sections()) >= set(SECTIONS)
    unresolved = [c for c in citations("THEORY §12 and STYLE §6") if c[2] and not set(c[2]) <= set(theory_sections())]
    assert len(unresolved) == 2


def test_every_section_citation_resolves_to_a_heading_of_the_theory_document():
    headings = set(theory_sections())
    found, bad = 0, []
    for path in cited_files():
        for lineno, line, sections in citations(_text(path)):
            if sections is None:
                continue
            found += 1
            if not set(sections) <= headings:
                bad.append(f"{path.relative_to(ROOT)}:{lineno}: {line[:140]}")
    assert found > 50, f"only {found} THEORY citations found: is the search broken?"
    assert not bad, "citations that do not resolve to a heading of docs/theory.md:\n" + "\n".join(bad)


# --- the API reference ------------------------------------------------------------------------------------------------

_AUTODOC = re.compile(r"^\.\.\s+auto(?:function|class|data|exception|attribute)::\s+(\S+)", re.M)
_PACKAGES = {"meanfield": ("mf", "meanfield"), "empirical": ("emp", "empirical")}


def reference_pages() -> list[Path]:
    return [p for p in sorted((DOCS / "api").glob("*.rst")) if p.stem != "other"]


def documented_names() -> set[str]:
    """Fully qualified names with an autodoc directive on a hand-written page of the reference."""
    names = set()
    for page in reference_pages():
        names.update(_AUTODOC.findall(page.read_text(encoding="utf-8")))
    return names


def doctest_sources() -> str:
    """The code of every example that ``sphinx-build -b doctest`` runs: ``.. doctest::`` blocks of the .rst pages and
    ```{doctest}``` fences of the .md pages under docs/ (prompts stripped)."""
    code = []
    for page in sorted(DOCS.rglob("*.rst")):
        if "_build" in page.parts:
            continue
        lines = page.read_text(encoding="utf-8").splitlines()
        inside = False
        for line in lines:
            if re.match(r"^\.\.\s+(doctest|testcode)::", line):
                inside = True
                continue
            if inside and line and not line.startswith((" ", "\t")):
                inside = False
            if inside:
                code.append(line)
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts or "figures" in page.parts:
            continue
        code.extend(re.findall(r"^```\{(?:doctest|testcode)\}[^\n]*\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S))
    text = "\n".join(code)
    return "\n".join(re.sub(r"^\s*(>>>|\.\.\.)\s?", "", line) for line in text.splitlines())


def public_names() -> list[tuple[str, str]]:
    names = []
    for package in _PACKAGES:
        module = importlib.import_module(package)
        names.extend((package, name) for name in module.__all__)
    return names


def test_every_public_name_is_in_the_reference():
    pytest.importorskip("torch")
    documented = documented_names()
    missing = [f"{p}.{n}" for p, n in public_names() if f"{p}.{n}" not in documented]
    assert not missing, (
        "public names without an autodoc entry on a topic page of docs/api/ (they appear on api/other until then): "
        + ", ".join(missing)
    )


def test_every_public_name_has_an_example_that_runs():
    pytest.importorskip("torch")
    code = doctest_sources()
    missing = []
    for package, name in public_names():
        aliases = "|".join(_PACKAGES[package])
        if not re.search(rf"\b(?:{aliases})\.{re.escape(name)}\b", code):
            missing.append(f"{package}.{name}")
    assert not missing, "public names used in no doctest example of docs/: " + ", ".join(missing)


def test_reference_entries_name_public_objects():
    """Every autodoc entry of the reference names something that exists (a renamed function leaves no stale entry)."""
    pytest.importorskip("torch")
    stale = []
    for qualified in documented_names():
        parts = qualified.split(".")
        for i in range(len(parts) - 1, 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                stale.append(qualified)
            break
        else:
            stale.append(qualified)
    assert not stale, "autodoc entries for names that do not exist: " + ", ".join(stale)


def test_docs_build_offline():
    """No extension that fetches from the network (intersphinx inventories) is enabled."""
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert '"sphinx.ext.intersphinx"' not in conf and "intersphinx_mapping" not in conf


# --- the README -------------------------------------------------------------------------------------------------------


def test_readme_links_the_built_guide_and_says_how_to_build_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make docs" in readme
    assert "](docs/_build/html/index.html)" in readme
    assert "](docs/theory.md)" in readme
