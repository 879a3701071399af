"""Standard-address search (标准地址): fuzzy matching of Chinese address text to address points.

Choice: an in-memory inverted index of CJK character bigrams, weighted by rarity (IDF), re-ranked by an
edit-distance ratio. Why not PostgreSQL: ``pg_trgm`` extracts no trigrams from CJK text under the C
locale and ``pg_bigm`` is not packaged by Debian; a ``text[]`` of bigrams with a GIN index works, but a
bigram such as 社区 or 号 is in nearly every row, so ``&&`` returns most of the table and ranking it in SQL
costs hundreds of milliseconds on 500k rows. Why not jieba + tsvector: a segmenter splits 锦绣华府 and a
misspelt 锦秀华府 differently, and full-text search has no partial match; bigrams degrade gracefully
(one wrong character loses two bigrams out of ten). In memory, a query reads only the posting lists of its
own bigrams and skips the very common ones when rarer ones are present: sub-millisecond on 500k
addresses (benchmarks/geocode.py).

Text normalisation: NFKC (full-width digits), no spaces or punctuation, Chinese numerals to digits
(五栋 → 5栋, 十二号 → 12号), 幢/座/号楼 → 栋. Tokens: character bigrams plus one token per number with
its unit (``#5栋``), so 5栋 does not match 15栋 as well as itself.

The index is rebuilt when a population load or the published plans change (checked at most every
``CHECK_SECONDS`` per process, so every API process follows a new load without a restart).
"""

from __future__ import annotations

import difflib
import re
import threading
import time
import unicodedata
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, text

CHECK_SECONDS = 10.0
COMMON_SHARE = 0.05  # bigrams in more than this share of addresses are skipped in the first pass when rarer ones exist
MAX_TIED = 20_000  # at most this many first-pass ties are scored on the common bigrams
RERANK = 60  # candidates re-ranked by edit similarity

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUM = re.compile(r"[〇零一二两三四五六七八九十百]+(?=[栋幢座号楼单元室层组])")
_UNIT_ALIASES = [("号楼", "栋"), ("幢", "栋"), ("座", "栋")]
_DROP = re.compile(r"[\s\-_,，.。、/\\()（）#＃·:：;；]+")
_NUM_UNIT = re.compile(r"(\d+)(栋|号|单元|室|层|组)")


def _cn_to_int(s: str) -> int | None:
    """一 → 1, 十二 → 12, 二十 → 20, 一百零五 → 105, 五二 → 52 (digit by digit)."""
    if "十" not in s and "百" not in s:
        try:
            return int("".join(str(_CN_DIGITS[c]) for c in s))
        except KeyError:
            return None
    total, cur = 0, 0
    for c in s:
        if c in _CN_DIGITS:
            cur = _CN_DIGITS[c]
        elif c == "十":
            total += (cur or 1) * 10
            cur = 0
        elif c == "百":
            total += (cur or 1) * 100
            cur = 0
    return total + cur


def normalise(s: str) -> str:
    """The comparable form of an address (see the module docstring)."""
    s = unicodedata.normalize("NFKC", s or "").lower()
    s = _DROP.sub("", s)
    s = _CN_NUM.sub(lambda m: str(_cn_to_int(m.group(0))) if _cn_to_int(m.group(0)) is not None else m.group(0), s)
    for a, b in _UNIT_ALIASES:
        s = s.replace(a, b)
    return s


def tokens(norm: str) -> set[str]:
    """Bigrams of a normalised string plus ``#<number><unit>`` tokens (a 1-character string is its own token)."""
    out = {norm[i:i + 2] for i in range(len(norm) - 1)} if len(norm) > 1 else ({norm} if norm else set())
    out.update("#" + a + b for a, b in _NUM_UNIT.findall(norm))
    return out


@dataclass
class Candidate:
    row: int
    score: float


class GeocodeIndex:
    """Bigram postings (CSR) over address texts with per-row coordinates, building, community and scope path.

    Parameters
    ----------
    rows : dict of equal-length lists/arrays
        ``id``, ``address``, ``building``, ``lon``, ``lat``, ``path`` (jurisdiction path of the deepest
        jurisdiction containing the point), ``community_code``, ``community_name``.
    """

    def __init__(self, rows: dict):
        self.rows = rows
        n = len(rows["id"])
        self.n = n
        self.search = [normalise(f"{c or ''}{a}") for c, a in zip(rows["community_name"], rows["address"])]
        vocab: dict[str, int] = {}
        tok_ids: list[int] = []
        doc_ids: list[int] = []
        for i, s in enumerate(self.search):
            for t in tokens(s):
                tid = vocab.setdefault(t, len(vocab))
                tok_ids.append(tid)
                doc_ids.append(i)
        t = np.asarray(tok_ids, dtype=np.int32)
        d = np.asarray(doc_ids, dtype=np.int32)
        order = np.argsort(t, kind="stable")
        self.postings = d[order]
        counts = np.bincount(t, minlength=len(vocab))
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.vocab = vocab
        self.idf = np.log((n + 1) / (counts + 0.5)).astype(np.float32) if n else np.zeros(0, np.float32)
        self.paths = np.asarray(rows["path"], dtype=object)
        # first-pass tie-break: among rows with the same tokens, the shorter (a building before its flats)
        self.len_penalty = (np.asarray([len(x) for x in self.search], dtype=np.float64) * 1e-4
                            if n else np.zeros(0))
        self._masks: dict[str, np.ndarray] = {}

    def _mask(self, path: str) -> np.ndarray:
        m = self._masks.get(path)
        if m is None:
            m = np.fromiter(((p or "").startswith(path) for p in self.paths), dtype=bool, count=self.n)
            if len(self._masks) > 256:
                self._masks.clear()
            self._masks[path] = m
        return m

    def search_rows(self, q: str, path: str, limit: int = 10) -> list[Candidate]:
        """Best rows for query *q* among rows whose path starts with *path*, best first (score 0–1).

        Score = 0.75 · (IDF weight of the query's tokens found in the row / weight of all query tokens)
        + 0.25 · edit-similarity ratio of the normalised texts; ties go to the shorter address.
        """
        nq = normalise(q)
        all_q = tokens(nq)
        known = np.asarray([self.vocab[t] for t in all_q if t in self.vocab], dtype=np.int64)
        if not len(known) or not self.n:
            return []
        missing = len(all_q) - len(known)
        q_weight = float(self.idf[known].sum()) + missing * float(np.log(self.n + 1))
        lens = self.offsets[known + 1] - self.offsets[known]
        rare = lens <= COMMON_SHARE * self.n
        use, common = (known[rare], known[~rare]) if rare.any() else (known, known[:0])
        parts = [self.postings[self.offsets[t]:self.offsets[t + 1]] for t in use]
        docs = np.concatenate(parts)
        w = np.repeat(self.idf[use], self.offsets[use + 1] - self.offsets[use])
        if len(docs) * 8 < self.n:
            uniq, inv = np.unique(docs, return_inverse=True)
            score = np.bincount(inv, weights=w)
        else:
            full = np.bincount(docs, weights=w, minlength=self.n)
            uniq = np.flatnonzero(full)
            score = full[uniq]
        keep = self._mask(path)[uniq]
        uniq, score = uniq[keep], score[keep]
        if not len(uniq):
            return []
        # every row at least as good as the RERANK-th best (ties included: on rare tokens alone hundreds of
        # flats and look-alike addresses can tie) is scored on the common tokens too, looked up for these
        # rows only (postings are sorted by row)
        k = min(RERANK, len(uniq))
        kth = np.partition(score, len(score) - k)[len(score) - k]
        sel = np.flatnonzero(score >= kth - 1e-6)
        if len(sel) > MAX_TIED:
            sel = np.argpartition(-score, MAX_TIED - 1)[:MAX_TIED]
        cand, cscore = uniq[sel], score[sel] - self.len_penalty[uniq[sel]]
        for t in common:
            post = self.postings[self.offsets[t]:self.offsets[t + 1]]
            pos = np.searchsorted(post, cand)
            hit = (pos < len(post)) & (post[np.minimum(pos, len(post) - 1)] == cand)
            cscore = cscore + hit * float(self.idf[t])
        if len(cand) > RERANK:
            top = np.argpartition(-cscore, RERANK - 1)[:RERANK]
            cand, cscore = cand[top], cscore[top]
        cscore = cscore + self.len_penalty[cand]
        out = []
        for row, sc in zip(cand.tolist(), cscore.tolist()):
            ratio = difflib.SequenceMatcher(None, nq, self.search[row], autojunk=False).ratio()
            out.append(Candidate(row, round(0.75 * min(sc / q_weight, 1.0) + 0.25 * ratio, 4)))
        out.sort(key=lambda c: (-c.score, len(self.search[c.row]), c.row))
        return out[:limit]

    def candidate_json(self, c: Candidate, grid_of) -> dict:
        """One answer; *grid_of(lon, lat)* gives ``(code, name)`` of the published grid or ``(None, None)``."""
        r, i = self.rows, c.row
        code, name = grid_of(r["lon"][i], r["lat"][i])
        return {"id": int(r["id"][i]), "address": r["address"][i], "building": r["building"][i],
                "community_code": r["community_code"][i], "community_name": r["community_name"][i],
                "grid_code": code, "grid_name": name, "lon": round(float(r["lon"][i]), 7),
                "lat": round(float(r["lat"][i]), 7), "score": c.score}


ROWS_SQL = """
    SELECT pu.id, pu.address, pu.building, ST_X(pt) AS lon, ST_Y(pt) AS lat, j.path, j.code, j.name
    FROM (SELECT id, address, building, ST_PointOnSurface(geom) AS pt FROM population_units
          WHERE address IS NOT NULL AND address <> '') pu
    LEFT JOIN LATERAL (SELECT j.path, j.code, j.name, j.level FROM jurisdictions j WHERE ST_Covers(j.geom, pu.pt)
                       ORDER BY length(j.path) DESC LIMIT 1) j ON true
    ORDER BY pu.id
"""


def load_rows(engine: Engine) -> dict:
    """Address rows from PostGIS with the deepest jurisdiction containing each point."""
    cols = {k: [] for k in ("id", "address", "building", "lon", "lat", "path", "community_code", "community_name")}
    with engine.connect() as conn:
        for r in conn.execute(text(ROWS_SQL)):
            for k, v in zip(cols, r):
                cols[k].append(v)
    cols["lon"] = np.asarray(cols["lon"], dtype=float)
    cols["lat"] = np.asarray(cols["lat"], dtype=float)
    return cols


class GeocodeHolder:
    """The current :class:`GeocodeIndex` of one process, rebuilt when address data or plans change."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._index: GeocodeIndex | None = None
        self._version = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def _current_version(self):
        with self.engine.connect() as conn:
            return tuple(conn.execute(text(
                "SELECT (SELECT coalesce(max(id), 0) FROM loads), (SELECT count(*) FROM population_units "
                "WHERE address IS NOT NULL), (SELECT coalesce(max(id), 0) FROM jurisdictions)")).one())

    def get(self) -> GeocodeIndex:
        with self._lock:
            if self._index is None or time.monotonic() - self._checked > CHECK_SECONDS:
                v = self._current_version()
                self._checked = time.monotonic()
                if self._index is None or v != self._version:
                    self._index = GeocodeIndex(load_rows(self.engine))
                    self._version = v
            return self._index


_lock = threading.Lock()


def geocode_of(state) -> GeocodeIndex:
    """The geocode index of an application state (one holder per state)."""
    h = getattr(state, "_geocode", None)
    if h is None:
        with _lock:
            h = getattr(state, "_geocode", None)
            if h is None:
                h = GeocodeHolder(state.engine)
                state._geocode = h
    return h.get()


def grid_namer(state):
    """``(lon, lat) → (grid code, grid name)`` on the published plans of *state*."""
    idx = state.holder.index

    def grid_of(lon, lat):
        i = idx.lookup(float(lon), float(lat)) if len(idx) else -1
        return (str(idx.codes[i]), idx.info[i].name) if i >= 0 else (None, None)

    return grid_of
