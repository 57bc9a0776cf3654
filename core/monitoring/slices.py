"""Slice finding: the few data segments where a model loses most, in pure numpy on one window's rows.

A segment is a conjunction of up to three conditions on the features (`card_age_days < 90 AND channel =
online`). Numeric fields are binned by the reference sample's quantiles (fields with few distinct values by
value), categorical fields by category; a missing value is a bin of its own. Segments are scored as in
SliceLine (Sagadeeva & Boehm, SIGMOD 2021):

    score = α · (mean loss in the slice / mean loss overall − 1) − (1 − α) · (rows / rows in the slice − 1)

so a slice ranks high when its loss rate is far above the average and it is not tiny. A slice's loss is
counted at the low end of its confidence interval, and a condition is kept only when it makes its slice
significantly worse than the rows it leaves out, so that chance does not rank first. The search goes level
by level; a slice is extended only while SliceLine's upper bound says a child could still enter the top-k,
and at most `beam` parents per level are extended, so its cost is a few passes over the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# SliceLine's default is 0.95, which favours thin slivers that are all loss; at 0.8 a segment that holds half
# the loss in a twentieth of the rows ranks above a sliver of 1% that holds a quarter of it.
ALPHA = 0.8
MIN_ROWS = 30  # the smallest slice worth naming, whatever the window
MIN_SHARE = 0.01  # ... and at least this share of the window
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
DISCRETE_VALUES = 10  # numeric fields with at most this many distinct values are binned by value
TOP_CATEGORIES = 15
MAX_LEVEL = 3


@dataclass(frozen=True)
class Condition:
    """One condition on a field: `field op value`, op one of <, >=, between, =, other, missing."""

    field: str
    op: str
    value: object = None
    upper: object = None

    @property
    def text(self) -> str:
        if self.op == "between":
            return f"{_num(self.value)} ≤ {self.field} < {_num(self.upper)}"
        if self.op == "missing":
            return f"{self.field} is missing"
        if self.op == "other":
            return f"{self.field} not in ({', '.join(map(str, self.value))})"
        return f"{self.field} {self.op} {_num(self.value)}"

    @property
    def words(self) -> str:
        """The condition for someone who does not read code: 'card age days under 90'."""
        name = self.field.replace("_", " ")
        if self.op == "<":
            return f"{name} under {_num(self.value)}"
        if self.op == ">=":
            return f"{name} of {_num(self.value)} or more"
        if self.op == "between":
            return f"{name} from {_num(self.value)} to under {_num(self.upper)}"
        if self.op == "missing":
            return f"no {name} given"
        if self.op == "other":
            return f"{name} other than {', '.join(map(str, self.value))}"
        return f"{name} {_num(self.value)}"

    def as_dict(self) -> dict:
        return {"field": self.field, "op": self.op, "value": self.value, "upper": self.upper}

    @classmethod
    def from_dict(cls, d: dict) -> Condition:
        value = d.get("value")
        return cls(field=d["field"], op=d["op"], value=tuple(value) if isinstance(value, list) else value,
                   upper=d.get("upper"))


def _num(value: object) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}" if not float(value).is_integer() else str(int(value))
    return str(value)


def describe(conditions: list[Condition] | tuple[Condition, ...]) -> str:
    return " AND ".join(c.text for c in conditions)


def in_words(conditions: list[Condition] | tuple[Condition, ...]) -> str:
    return " and ".join(c.words for c in conditions)


# --- binning ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Binning:
    """Each feature's bins and the conditions over them. A frame's codes are one small integer per row and
    feature (its bin); a condition (a global column) covers the bins lo..hi of one feature, so that a number
    field offers `x < e`, `x >= e` and `a <= x < b` over the same bins."""

    features: list[str]
    specs: list[tuple]  # per feature: ("numeric", edges) | ("discrete", values) | ("categorical", categories)
    levels: np.ndarray  # per feature: number of bins (the last one is "missing")
    conditions: list[Condition]  # one per global column
    feature_of: np.ndarray  # global column -> feature index
    lo: np.ndarray  # global column -> first bin it covers
    hi: np.ndarray  # global column -> last bin it covers
    by_feature: list[np.ndarray]  # feature index -> its global columns

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, features) int32 matrix of bins, column-major."""
        out = np.empty((len(frame), len(self.features)), dtype=np.int32, order="F")
        for j, (name, spec) in enumerate(zip(self.features, self.specs, strict=True)):
            col = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
            out[:, j] = _code(col, spec)
        return out


def _code(col: pd.Series, spec: tuple) -> np.ndarray:
    kind, values = spec
    missing = len(values) + 1
    if kind == "numeric":
        x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isnan(x), missing, np.searchsorted(values, x, side="right"))
    if kind == "discrete":
        x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        pos = np.searchsorted(values, x)
        at = np.minimum(pos, len(values) - 1)
        return np.where(np.isnan(x), missing, np.where(values[at] == x, at, len(values)))
    text = col if col.dtype == object else col.astype(object).where(col.notna(), None)
    codes = pd.Categorical(text, categories=list(values)).codes
    return np.where(col.isna().to_numpy(), missing, np.where(codes < 0, len(values), codes))


def fit_binning(reference: pd.DataFrame, features: list[dict]) -> Binning:
    """Bins from the reference sample: quantile edges for numbers, values or top categories otherwise."""
    names, specs, levels, conds, owner, lo, hi = [], [], [], [], [], [], []

    def add(j: int, condition: Condition, first: int, last: int) -> None:
        conds.append(condition)
        owner.append(j)
        lo.append(first)
        hi.append(last)

    for j, f in enumerate(features):
        name = f["name"]
        names.append(name)
        col = reference[name] if name in reference else pd.Series(dtype=float)
        if f.get("type") == "categorical":
            counts = col.dropna().astype(str).value_counts()
            values = tuple(sorted(counts.index[:TOP_CATEGORIES]))
            specs.append(("categorical", values))
            for i, c in enumerate(values):
                add(j, Condition(name, "=", c), i, i)
            add(j, Condition(name, "other", values), len(values), len(values))
        else:
            x = pd.to_numeric(col, errors="coerce").dropna().to_numpy(float)
            distinct = np.unique(x)
            if 0 < len(distinct) <= DISCRETE_VALUES:
                values = distinct
                specs.append(("discrete", values))
                for i, v in enumerate(values):
                    add(j, Condition(name, "=", _plain(v)), i, i)
                add(j, Condition(name, "other", tuple(_plain(v) for v in values)), len(values), len(values))
            else:
                values = np.unique([_round(e) for e in np.quantile(x, QUANTILES)]) if len(x) else np.array([])
                specs.append(("numeric", values))
                k = len(values)
                for i, e in enumerate(values):
                    add(j, Condition(name, "<", _plain(e)), 0, i)
                    add(j, Condition(name, ">=", _plain(e)), i + 1, k)
                for i in range(1, k):
                    add(j, Condition(name, "between", _plain(values[i - 1]), _plain(values[i])), i, i)
        levels.append(len(values) + 2)
        add(j, Condition(name, "missing"), len(values) + 1, len(values) + 1)
    owner_arr = np.array(owner, dtype=np.int64)
    return Binning(features=names, specs=specs, levels=np.array(levels), conditions=conds, feature_of=owner_arr,
                   lo=np.array(lo, dtype=np.int64), hi=np.array(hi, dtype=np.int64),
                   by_feature=[np.flatnonzero(owner_arr == j) for j in range(len(names))])


def _round(value: float) -> float:
    """Edges at three significant digits, so conditions read as people write them."""
    if value == 0 or not np.isfinite(value):
        return float(value)
    digits = 2 - int(np.floor(np.log10(abs(value))))
    return float(round(value, digits))


def _plain(value: object) -> object:
    v = float(value)
    return int(v) if v.is_integer() else v


def mask(frame: pd.DataFrame, conditions: list[Condition] | tuple[Condition, ...]) -> np.ndarray:
    """Rows of a frame that meet every condition (a frame without a field meets only 'missing')."""
    keep = np.ones(len(frame), dtype=bool)
    for c in conditions:
        col = frame[c.field] if c.field in frame else pd.Series(np.nan, index=frame.index)
        if c.op == "missing":
            keep &= col.isna().to_numpy()
            continue
        if c.op in ("=", "other") and (isinstance(c.value, str) or (c.op == "other" and any(
                isinstance(v, str) for v in c.value))):
            text = col.astype(object).where(col.notna(), None)
            hit = text.isin(list(c.value)) if c.op == "other" else text.eq(c.value)
            keep &= (~hit & col.notna()).to_numpy() if c.op == "other" else hit.to_numpy(dtype=bool)
            continue
        x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if c.op == "<":
                keep &= x < float(c.value)
            elif c.op == ">=":
                keep &= x >= float(c.value)
            elif c.op == "between":
                keep &= (x >= float(c.value)) & (x < float(c.upper))
            elif c.op == "=":
                keep &= x == float(c.value)
            elif c.op == "other":
                keep &= ~np.isin(x, np.array(c.value, dtype=float)) & ~np.isnan(x)
    return keep


# --- the search ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """A slice: its conditions (global column ids), rows, loss in it and its score."""

    columns: tuple[int, ...]
    rows: int
    loss: float
    score: float
    squares: float = 0.0  # summed squared loss, for the significance of a refinement


def score(loss: np.ndarray | float, rows: np.ndarray | float, *, total_rows: int, mean_loss: float,
          alpha: float = ALPHA) -> np.ndarray | float:
    """SliceLine's score of slices with `loss` summed over `rows` rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = alpha * ((loss / rows) / mean_loss - 1) - (1 - alpha) * (total_rows / rows - 1)
    if isinstance(s, np.ndarray):
        return np.where(np.asarray(rows) > 0, s, -np.inf)
    return float(s) if rows > 0 else -np.inf


def _upper_bound(loss: np.ndarray, rows: np.ndarray, top: float, *, min_rows: int, total_rows: int,
                 mean_loss: float, alpha: float) -> np.ndarray:
    """The best score any child of these slices could reach (SliceLine's bound over the child's size)."""
    best = np.full(len(loss), -np.inf)
    for size in (np.full(len(loss), float(min_rows)), loss / max(top, 1e-300), rows.astype(float)):
        size = np.minimum(np.maximum(size, min_rows), rows)
        child_loss = np.minimum(loss, top * size)
        best = np.maximum(best, score(child_loss, size, total_rows=total_rows, mean_loss=mean_loss, alpha=alpha))
    return np.where(rows >= min_rows, best, -np.inf)


def members(codes: np.ndarray, binning: Binning, columns: tuple[int, ...]) -> np.ndarray:
    """Row indices of the slice made of these global columns."""
    keep = np.ones(codes.shape[0], dtype=bool)
    for c in columns:
        col = codes[:, binning.feature_of[c]]
        lo, hi = binning.lo[c], binning.hi[c]
        keep &= (col == lo) if lo == hi else ((col >= lo) & (col <= hi))
    return np.flatnonzero(keep)


def _stats(codes: np.ndarray, loss: np.ndarray, binning: Binning, rows: np.ndarray | None = None,
           totals: tuple[np.ndarray, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, summed loss and summed squared loss of every global column among the given rows (all when None):
    one bin count per feature, then each column's range of bins from cumulative sums."""
    if rows is not None and 2 * len(rows) > codes.shape[0]:
        # A large slice is counted as everything minus the rows outside it: half the work at most.
        outside = np.ones(codes.shape[0], dtype=bool)
        outside[rows] = False
        everything = _stats(codes, loss, binning) if totals is None else totals
        rest = _stats(codes, loss, binning, np.flatnonzero(outside))
        return everything[0] - rest[0], np.maximum(everything[1] - rest[1], 0.0), np.maximum(everything[2] - rest[2], 0.0)
    m = len(binning.conditions)
    count, total, squares = np.zeros(m, dtype=np.int64), np.zeros(m), np.zeros(m)
    weights = loss if rows is None else loss[rows]
    weights2 = weights * weights
    for j, levels in enumerate(binning.levels):
        col = codes[:, j] if rows is None else codes[:, j][rows]
        cols, lo, hi = binning.by_feature[j], binning.lo[binning.by_feature[j]], binning.hi[binning.by_feature[j]] + 1
        for out, w in ((count, None), (total, weights), (squares, weights2)):
            cum = np.concatenate(([0], np.cumsum(np.bincount(col, weights=w, minlength=levels))))
            out[cols] = cum[hi] - cum[lo]
    return count, np.maximum(total, 0.0), np.maximum(squares, 0.0)


def _cautious(loss: np.ndarray, squares: np.ndarray, rows: np.ndarray, z: float) -> np.ndarray:
    """A slice's summed loss at the lower end of its confidence interval (mean − z standard errors), so that a
    small slice that is bad by chance does not outrank the segment it was cut from."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = loss / rows
        sd = np.sqrt(np.maximum(squares / rows - mean * mean, 0.0))
        return np.maximum(mean - z * sd / np.sqrt(rows), 0.0) * rows


def find(codes: np.ndarray, loss: np.ndarray, binning: Binning, *, k: int = 5, max_level: int = MAX_LEVEL,
         min_rows: int | None = None, alpha: float = ALPHA, beam: int = 16, z: float = 1.0,
         exclude: tuple[str, ...] = ()) -> list[Found]:
    """The top-k slices by score (each with a positive score), best first, distinct in their rows.

    `codes` comes from `Binning.codes` (column-major is fastest); `loss` is each row's loss (≥ 0); fields in
    `exclude` are not sliced on (e.g. the amount a business loss sums)."""
    n = codes.shape[0]
    loss = np.asarray(loss, dtype=float)
    total = float(loss.sum())
    if n == 0 or total <= 0:
        return []
    mean_loss, top = total / n, float(loss.max())
    min_rows = max(MIN_ROWS, int(np.ceil(MIN_SHARE * n))) if min_rows is None else min_rows
    allowed = ~np.isin(binning.feature_of, [i for i, f in enumerate(binning.features) if f in exclude])

    def scored(lsum: np.ndarray, sq: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return score(_cautious(lsum, sq, rows, z), rows, total_rows=n, mean_loss=mean_loss, alpha=alpha)

    totals = _stats(codes, loss, binning)
    rows1, loss1, sq1 = totals
    s1 = scored(loss1, sq1, rows1)
    candidates: dict[tuple[int, ...], Found] = {}
    level = []
    for j in np.flatnonzero((rows1 >= min_rows) & (loss1 > 0) & allowed):
        f = Found((int(j),), int(rows1[j]), float(loss1[j]), float(s1[j]), float(sq1[j]))
        candidates[f.columns] = f
        level.append(f)
    for _depth in range(2, max_level + 1):
        if not level:
            break
        kth = _kth(candidates, k)
        ub = _upper_bound(np.array([f.loss for f in level]), np.array([f.rows for f in level]), top,
                          min_rows=min_rows, total_rows=n, mean_loss=mean_loss, alpha=alpha)
        order = [i for i in np.argsort([-f.score for f in level], kind="stable") if ub[i] > max(kth, 0.0)][:beam]
        nxt: list[Found] = []
        for i in order:
            parent = level[i]
            rows, lsum, sq = _stats(codes, loss, binning, members(codes, binning, parent.columns), totals)
            used = [int(binning.feature_of[c]) for c in parent.columns]
            ok = (rows >= min_rows) & (lsum > 0) & (rows < parent.rows) & allowed & ~np.isin(binning.feature_of, used)
            picked = np.flatnonzero(ok)
            child_scores = scored(lsum[picked], sq[picked], rows[picked])
            for j, s in zip(picked, child_scores, strict=True):
                key = tuple(sorted((*parent.columns, int(j))))
                if key in candidates:
                    continue
                child = Found(key, int(rows[j]), float(lsum[j]), float(s), float(sq[j]))
                candidates[key] = child
                nxt.append(child)
        level = nxt
    return _distinct(candidates, codes, binning, k)


# Standard errors by which a refinement must beat the rest of the slice it was cut from: three, as hundreds of
# conditions are tried on every slice and two would let a few through by chance.
SIGNIFICANT = 3.0


def _sharper(f: Found, candidates: dict[tuple[int, ...], Found]) -> bool:
    """Whether each extra condition makes the slice significantly worse than the rows it leaves out of its
    parent: otherwise the parent already tells the story and the condition is noise."""
    for drop in f.columns if len(f.columns) > 1 else ():
        parent = candidates.get(tuple(c for c in f.columns if c != drop))
        if parent is None or parent.rows <= f.rows:
            continue
        rest_rows = parent.rows - f.rows
        mean_in, mean_out = f.loss / f.rows, (parent.loss - f.loss) / rest_rows
        # The parent's variance for both sides: under "no difference" they share it, and a handful of rows
        # left out cannot look significant by having no loss at all.
        pooled = max(parent.squares / parent.rows - (parent.loss / parent.rows) ** 2, 0.0)
        spread = np.sqrt(pooled * (1 / f.rows + 1 / rest_rows))
        if mean_in - mean_out <= SIGNIFICANT * spread:
            return False
    return True


def _kth(candidates: dict[tuple[int, ...], Found], k: int) -> float:
    scores = sorted((f.score for f in candidates.values()), reverse=True)
    return scores[k - 1] if len(scores) >= k else -np.inf


def _distinct(candidates: dict[tuple[int, ...], Found], codes: np.ndarray, binning: Binning, k: int,
              most: float = 0.8) -> list[Found]:
    """The best slices, skipping one that mostly lies in, or mostly holds, a better one already kept."""
    ranked = sorted((f for f in candidates.values() if f.score > 0), key=lambda f: (-f.score, len(f.columns)))
    kept: list[tuple[Found, np.ndarray]] = []
    looked = 0
    for f in ranked:
        if len(kept) == k or looked == 10 * k:
            break
        if any(set(g.columns) < set(f.columns) for g, _rows in kept):
            continue  # a narrower version of a better slice
        if not _sharper(f, candidates):
            continue
        looked += 1
        rows = members(codes, binning, f.columns)
        if any(overlap(rows, other) >= most for _g, other in kept):
            continue
        kept.append((f, rows))
    return [f for f, _rows in kept]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """How much of the smaller of two sorted row sets lies in the other."""
    both = np.intersect1d(a, b, assume_unique=True).size
    return both / min(a.size, b.size) if min(a.size, b.size) else 0.0


def column_rows(codes: np.ndarray, binning: Binning) -> np.ndarray:
    """Rows of every single-condition slice."""
    return _stats(codes, np.zeros(codes.shape[0]), binning)[0]
