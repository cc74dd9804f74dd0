"""The result table of the experiments: :class:`Record` (one theory value beside a measurement averaged over seeds,
with its tolerance), :class:`ResultTable` (records plus the arrays the figures need; CSV, JSON, Markdown, pandas) and
:func:`make_record`, the one place where a tolerance ``k_sigma·max(spread, floor)/√n + allowance`` is applied."""

from __future__ import annotations

import csv
import json
import math
import numbers
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import numpy as np

from meanfield.errors import InvalidParameterError

from empirical.experiments.tolerances import K_SIGMA

@dataclass(frozen=True)
class Record:
    """One comparison of a theory value with a measurement averaged over seeds.

    Attributes
    ----------
    experiment : the experiment's name (one of :data:`EXPERIMENTS`, or a user's).
    quantity : what is compared (``"q"``, ``"lambda_max"``, ``"quantile_0.5"``, …).
    params : the configuration (activation, point, weights, width, depth, layer, …): JSON-able scalars.
    theory : the prediction.
    measured : the mean of the per-seed measurements.
    spread : their sample standard deviation (ddof = 1; 0 for one seed).
    n : the number of seeds.
    tolerance : ``k_sigma·max(spread, floor)/√n + allowance`` (:func:`make_record`; the experiment's docstring says
        which floor and allowance).
    passed : ``|measured - theory| ≤ tolerance`` (False when either is not finite).
    """

    experiment: str
    quantity: str
    params: dict
    theory: float
    measured: float
    spread: float
    n: int
    tolerance: float
    passed: bool

    @property
    def deviation(self) -> float:
        """measured − theory."""
        return self.measured - self.theory

    def row(self) -> dict:
        """A flat dict: experiment, quantity, the params, then the numbers."""
        out = {"experiment": self.experiment, "quantity": self.quantity}
        out.update(self.params)
        out.update(
            theory=self.theory,
            measured=self.measured,
            spread=self.spread,
            n=self.n,
            tolerance=self.tolerance,
            deviation=self.deviation,
            passed=self.passed,
        )
        return out


_NUMBER_COLUMNS = ("theory", "measured", "spread", "n", "tolerance", "deviation", "passed")


def _jsonable(obj):
    """Arrays → lists, NumPy scalars → Python scalars, recursively (non-finite floats stay floats: JSON NaN)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _from_jsonable(obj):
    """Lists of numbers (at any nesting) → float arrays; the inverse of :func:`_jsonable` for ``data``."""
    if isinstance(obj, Mapping):
        return {k: _from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        if obj and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            return np.asarray(obj, dtype=np.float64)
        if obj and all(isinstance(v, list) for v in obj):
            try:
                return np.asarray(obj, dtype=np.float64)
            except (TypeError, ValueError):
                pass
        return [_from_jsonable(v) for v in obj]
    return obj


class ResultTable:
    """A tidy table of :class:`Record` s, plus the arrays the figures need (``data``).

    ``records`` : the list of records. ``data`` : ``{experiment: [payload dict, …]}`` — histograms, theory curves on
    fine grids, loss curves — computed by the experiments so that :mod:`empirical.plots` never computes physics.

    Tables add (``t1 + t2``), filter (:meth:`select`), and export: :meth:`to_csv`, :meth:`to_json` (records and data;
    :meth:`from_json` reads it back), :meth:`to_pandas` (when pandas is installed), :meth:`to_markdown`.
    """

    def __init__(self, records: Iterable[Record] = (), data: Mapping | None = None):
        self.records: list[Record] = list(records)
        self.data: dict = {k: list(v) for k, v in (data or {}).items()}

    # ------------------------------------------------------------------------------------------------- container
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __add__(self, other: "ResultTable") -> "ResultTable":
        if not isinstance(other, ResultTable):
            return NotImplemented
        data = {k: list(v) for k, v in self.data.items()}
        for k, v in other.data.items():
            data.setdefault(k, []).extend(v)
        return ResultTable(self.records + other.records, data)

    def __repr__(self):
        n_fail = sum(not r.passed for r in self.records)
        exps = sorted({r.experiment for r in self.records})
        return f"ResultTable({len(self)} records, {n_fail} failed, experiments={exps})"

    @property
    def passed(self) -> bool:
        """True when every record passed (an empty table passes)."""
        return all(r.passed for r in self.records)

    def failures(self) -> "ResultTable":
        """The records that failed (with the same ``data``)."""
        return ResultTable([r for r in self.records if not r.passed], self.data)

    def select(self, experiment: str | None = None, quantity: str | None = None, **params) -> "ResultTable":
        """The records matching the experiment, the quantity and every given parameter value."""
        out = []
        for r in self.records:
            if experiment is not None and r.experiment != experiment:
                continue
            if quantity is not None and r.quantity != quantity:
                continue
            if any(r.params.get(k, _MISSING) != v for k, v in params.items()):
                continue
            out.append(r)
        data = {k: v for k, v in self.data.items() if experiment is None or k == experiment}
        return ResultTable(out, data)

    @property
    def experiments(self) -> list[str]:
        """Experiment names in order of first appearance (records first, then data-only entries)."""
        return list(dict.fromkeys([r.experiment for r in self.records] + list(self.data)))

    def summary(self) -> list[dict]:
        """Per experiment: ``{"experiment", "records", "failed", "passed"}``."""
        out = []
        for e in self.experiments:
            recs = [r for r in self.records if r.experiment == e]
            failed = sum(not r.passed for r in recs)
            out.append({"experiment": e, "records": len(recs), "failed": failed, "passed": failed == 0})
        return out

    # --------------------------------------------------------------------------------------------------- export
    @property
    def columns(self) -> list[str]:
        """experiment, quantity, the union of the parameter names (in order of first appearance), the numbers."""
        names = list(dict.fromkeys(k for r in self.records for k in r.params))
        return ["experiment", "quantity"] + names + list(_NUMBER_COLUMNS)

    def rows(self) -> list[dict]:
        """One flat dict per record, every column present (None where a record lacks a parameter)."""
        cols = self.columns
        return [{c: r.row().get(c) for c in cols} for r in self.records]

    def to_csv(self, path) -> None:
        """Write :meth:`rows` as CSV (empty cells for missing parameters)."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns)
            w.writeheader()
            for row in self.rows():
                w.writerow({k: ("" if v is None else v) for k, v in row.items()})

    def to_json(self, path, include_data: bool = True) -> None:
        """Write ``{"passed", "records", "data"}`` as JSON (``data`` only with ``include_data``)."""
        doc = {"passed": self.passed, "records": [_jsonable(asdict(r)) for r in self.records]}
        if include_data:
            doc["data"] = _jsonable(self.data)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)

    @classmethod
    def from_json(cls, path) -> "ResultTable":
        """Read a table written by :meth:`to_json` (data arrays come back as float arrays)."""
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        recs = [Record(**r) for r in doc["records"]]
        return cls(recs, _from_jsonable(doc.get("data", {})))

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (one row per record). Needs pandas."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("ResultTable.to_pandas needs pandas (pip install pandas)") from exc
        return pd.DataFrame(self.rows(), columns=self.columns)

    def to_markdown(self, max_rows: int | None = None) -> str:
        """A Markdown table (numbers to 4 significant digits, ✓/✗ for passed); ``max_rows`` truncates."""
        cols = self.columns
        shown = self.rows() if max_rows is None else self.rows()[:max_rows]

        def fmt(v):
            if v is None:
                return ""
            if isinstance(v, bool):
                return "✓" if v else "✗"
            if isinstance(v, numbers.Integral):
                return str(v)
            if isinstance(v, numbers.Real):
                return f"{v:.4g}"
            return str(v).replace("|", "\\|")

        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in shown:
            lines.append("| " + " | ".join(fmt(row[c]) for c in cols) + " |")
        if max_rows is not None and len(self.records) > max_rows:
            lines.append(f"\n… {len(self.records) - max_rows} more rows")
        return "\n".join(lines)


_MISSING = object()


def make_record(
    experiment: str,
    quantity: str,
    params: Mapping,
    theory: float,
    values,
    *,
    k_sigma: float = K_SIGMA,
    allowance: float = 0.0,
    floor: float = 0.0,
) -> Record:
    """A :class:`Record` from per-seed ``values``: mean, spread (ddof = 1) and
    ``tolerance = k_sigma·max(spread, floor)/√n + allowance``.

    ``floor`` is a lower bound for the per-seed standard deviation, a fraction of the fluctuation the finite-width
    theory expects of one draw (where that is known): with few seeds a sample spread can come out several times too
    small by chance, and the floor keeps that from making a check brittle.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = int(v.size)
    if n == 0:
        raise InvalidParameterError(f"{experiment}/{quantity}: no measurements")
    mean = float(v.mean())
    spread = float(v.std(ddof=1)) if n > 1 else 0.0
    theory = float(theory)
    tol = float(k_sigma) * max(spread, float(floor)) / math.sqrt(n) + float(allowance)
    ok = bool(math.isfinite(mean) and math.isfinite(theory) and math.isfinite(tol) and abs(mean - theory) <= tol)
    return Record(experiment, quantity, _jsonable(dict(params)), theory, mean, spread, n, tol, ok)
