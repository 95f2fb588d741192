"""Recurring complaint themes: the week's complaints grouped by the classifier's sentence embeddings.

numpy only: average-linkage agglomerative clustering that merges the two closest groups while their mean
pairwise cosine similarity is at least `THEME_SIMILARITY`. The embeddings are those the classifier stored
when it scored each complaint (`desk.store.models.Classification.embedding`), computed again only where missing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from desk.store.models import Classification, MentionRow, unpack_vector
from desk.reports.weekly.definitions import THEME_SIMILARITY
from desk.reports.weekly.formatting import clip
from desk.reports.weekly.values import CaseRow, Theme

MAX_THEME_TEXTS = 3000


def cluster(vectors, threshold: float = THEME_SIMILARITY) -> list[list[int]]:
    """Average-linkage agglomerative clustering by cosine similarity, numpy only.

    `vectors` are L2-normalised rows. Repeatedly merges the two groups whose mean pairwise cosine
    similarity is highest, while it is at least `threshold`. For unit vectors that mean is
    sum(A) . sum(B) / (|A| |B|), so after a merge the new group's row is the size-weighted mean of
    the two old rows (Lance-Williams), O(n) per merge. Each group keeps
    its nearest neighbour, so finding the next merge is a scan of n values, not of the n x n
    matrix (3,000 complaints: well under a second instead of tens of seconds). Returns groups of
    row indexes, largest first.
    """
    import numpy as np

    x = np.asarray(vectors, dtype=np.float64)
    n = len(x)
    if n == 0:
        return []
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sizes = np.ones(n)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    members: list[list[int]] = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    nearest = sim.argmax(axis=1)
    nearest_sim = sim[np.arange(n), nearest]
    while True:
        i = int(np.argmax(nearest_sim))
        if not nearest_sim[i] >= threshold:
            break
        j = int(nearest[i])
        members[i] += members[j]
        members[j] = []
        alive[j] = False
        # average linkage (Lance-Williams): the merged group's mean similarity to k is the
        # size-weighted mean of i's and j's, the same value as sum(A).sum(B) / (|A| |B|)
        row = (sizes[i] * sim[i] + sizes[j] * sim[j]) / (sizes[i] + sizes[j])
        sizes[i] += sizes[j]
        row[~alive] = -np.inf
        row[i] = -np.inf
        sim[i, :] = row
        sim[:, i] = row
        sim[j, :] = -np.inf
        sim[:, j] = -np.inf
        nearest_sim[j] = -np.inf
        # groups whose nearest neighbour was i or j look again; the rest only compare with the new i
        stale = np.flatnonzero(alive & ((nearest == i) | (nearest == j)))
        for k in stale:
            nearest[k] = int(np.argmax(sim[k]))
            nearest_sim[k] = sim[k, nearest[k]]
        closer = alive & (row > nearest_sim)
        nearest[closer] = i
        nearest_sim[closer] = row[closer]
        nearest[i] = int(np.argmax(row))
        nearest_sim[i] = row[nearest[i]]
    groups = [sorted(m) for m in members if m]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


_STOP = set("""a about after again all also am an and any are as at be been before being but by can cannot could did do
does doing don't for from get got had has have having he her here him his how i i'm i've if in into is it it's its
just me more my no not now of off on once one only or our out over own same she so some still such than that the
their them then there these they this those through to too under until up very was we were what when where which
while who why will with would you your yours im ive dont cant wont didnt isnt doesnt since been even ever every
again still yet really please thanks thank hi hello day days today week time""".split())


def _words(texts: list[str], brand_terms: list[str], k: int = 3) -> list[str]:
    brand = {w.casefold() for t in brand_terms for w in re.findall(r"[\w']+", t)}
    counts: Counter[str] = Counter()
    for t in texts:
        seen = {w for w in re.findall(r"[a-z][a-z']{2,}", t.casefold()) if w not in _STOP and w not in brand}
        counts.update(seen)
    return [w for w, _ in counts.most_common(k)]


def themes_of(s: Session, rows: list[CaseRow], embed: Callable | None, notes: list[str],
              brand_terms: list[str]) -> tuple[list[Theme], int]:
    """The recurring themes among the rows' complaints, largest first, and how many complaints fell in none.

    Each row in a theme gets its number (`CaseRow.theme`). Without embeddings the report has no themes and
    says why in `notes`."""
    complaints = [r for r in rows if r.is_complaint][:MAX_THEME_TEXTS]
    if len(complaints) < 2:
        return [], len(complaints)
    mentions = {m.id: m for m in s.scalars(select(MentionRow).where(MentionRow.id.in_([r.mention_id for r in complaints])))}
    texts = [mentions[r.mention_id].text for r in complaints]
    try:
        import numpy as np

        vecs = vectors(s, complaints, texts, embed)
    except Exception as exc:  # the themes are a bonus: the figures stand without them
        notes.append(f"Themes left out: the classifier's embeddings were not available ({type(exc).__name__}: {exc}).")
        return [], len(complaints)
    themes = []
    grouped = 0
    for group in cluster(vecs, THEME_SIMILARITY):
        if len(group) < 2:
            continue
        centroid = vecs[group].sum(axis=0)
        best = max(group, key=lambda i: float(vecs[i] @ centroid))
        number = len(themes) + 1
        members = [complaints[i] for i in group]
        for r in members:
            r.theme = number
        grouped += len(group)
        ex = complaints[best]
        themes.append(Theme(
            number=number, size=len(group), words=_words([texts[i] for i in group], brand_terms),
            example_case_id=ex.case_id, example_text=clip(texts[best], 280), example_url=ex.url,
            case_ids=sorted(r.case_id for r in members),
            root_causes=dict(Counter(r.root_cause for r in members if r.root_cause).most_common()),
            topics=dict(Counter(r.topic for r in members if r.topic).most_common()),
            platforms=dict(Counter(r.platform for r in members).most_common())))
    return themes, len(complaints) - grouped


def vectors(s: Session, complaints: list[CaseRow], texts: list[str], embed: Callable | None):
    """The complaints' embeddings: those stored at classification time by the current model, the rest computed.

    A vector stored by another model version is not comparable and is computed again. A caller that
    passes its own `embed` (tests, benchmarks) gets that function for every text.
    """
    import numpy as np

    if embed is not None:
        return np.asarray(embed(texts), dtype=np.float64)
    import classifier

    model = classifier.load()
    stored = dict(s.execute(select(Classification.mention_id, Classification.embedding)
                            .where(Classification.mention_id.in_([r.mention_id for r in complaints]),
                                   Classification.model_version == model.version,
                                   Classification.embedding.is_not(None))).all())
    missing = [i for i, r in enumerate(complaints) if r.mention_id not in stored]
    computed = model.embed([texts[i] for i in missing]) if missing else None
    rows = [unpack_vector(stored[r.mention_id]) if r.mention_id in stored else None for r in complaints]
    for k, i in enumerate(missing):
        rows[i] = computed[k]
    return np.asarray(rows, dtype=np.float64)


