"""Choose and score severity heads on the features cached by scripts/severity_experiment.py.

    .venv/bin/python scripts/severity_heads.py select    # grid on the selection split (build/.../tune.npz)
    .venv/bin/python scripts/severity_heads.py folds "a mean" 0.003 0.5 [...]   # score variants on the 10 folds
    .venv/bin/python scripts/severity_heads.py ordinal "b mean" 0.003          # ordinal head, both splits

A fine-tuned encoder has seen its training complaints and their severity, so
their vectors are far easier to separate than new texts' (inner CV on them
scores 80-87 against 45-50 held out). C can therefore not be chosen by inner CV
on the training complaints; it is chosen on the selection split of
classifier/tune.py, whose validation texts the encoder never saw. The 10-fold
test folds are only scored.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from classifier.data import load_benchmark  # noqa: E402

DIR = Path("build/classifier/sevexp")
FEATURES = {
    "a mean": lambda d: d["a_layers"][:, 6],
    "a mean+max": lambda d: np.hstack([d["a_layers"][:, 6], d["a_max"]]),
    "b mean": lambda d: d["b_layers"][:, 6],
    "b mean+max": lambda d: np.hstack([d["b_layers"][:, 6], d["b_max"]]),
}
CS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
TFIDF_W = (0.0, 0.5, 1.0)


def mf1(y, pred):
    return f1_score(y, pred, average="macro", labels=[1, 2, 3, 4], zero_division=0)


def lr_logp(xtr, ytr, xte, c):
    m = LogisticRegression(C=c, class_weight="balanced", max_iter=1000, tol=1e-4).fit(xtr, ytr)
    return m.predict_log_proba(xte)


def tfidf_logp(ttr, ytr, tte):
    """Word 1-2 gram TF-IDF (min_df 2, sublinear tf) + class-balanced LR at C=1."""
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    return lr_logp(vec.fit_transform(list(ttr)), ytr, vec.transform(list(tte)), 1.0)


def ordinal_pred(xtr, ytr, xte, c):
    """Frank & Hall ordinal decomposition: balanced binary LRs for level > 1, > 2, > 3; argmax of the differences."""
    above = [LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(xtr, (ytr > k).astype(int))
             .predict_proba(xte)[:, 1] for k in (1, 2, 3)]
    above = np.maximum.accumulate(np.array(above)[::-1], axis=0)[::-1]  # P(>1) >= P(>2) >= P(>3)
    p = np.stack([1 - above[0], above[0] - above[1], above[1] - above[2], above[2]], 1)
    return p.argmax(1) + 1


class Data:
    def __init__(self):
        ex = load_benchmark()
        self.y = np.array([e.label for e in ex])
        self.sev = np.array([e.severity for e in ex])
        self.texts = np.array([e.text for e in ex], dtype=object)

    def split(self, d):
        tr = d["train_idx"][self.y[d["train_idx"]] == 1]
        te = d["test_idx"][self.y[d["test_idx"]] == 1]
        return tr, te


def standardised(d, feat, tr, te):
    """The feature set's rows for training and held-out complaints, scaled by the training rows."""
    x = FEATURES[feat](d).astype(np.float32)
    m, s = x[tr].mean(0), x[tr].std(0) + 1e-6
    return (x[tr] - m) / s, (x[te] - m) / s


def scores(data, d, variants):
    """{(feature, C, w): held-out macro-F1} for one cached split."""
    tr, te = data.split(d)
    ytr, yte = data.sev[tr], data.sev[te]
    need_tfidf = any(w for _, _, w in variants)
    tf = tfidf_logp(data.texts[tr], ytr, data.texts[te]) if need_tfidf else None
    out, cache = {}, {}
    for feat, c, w in variants:
        if (feat, c) not in cache:
            ztr, zte = standardised(d, feat, tr, te)
            cache[(feat, c)] = lr_logp(ztr, ytr, zte, c)
        logp = cache[(feat, c)] + (w * tf if w else 0)
        out[(feat, c, w)] = mf1(yte, logp.argmax(1) + 1)
    return out


def select():
    data = Data()
    d = np.load(DIR / "tune.npz")
    variants = [(f, c, w) for f in FEATURES for c in CS for w in TFIDF_W]
    res = scores(data, d, variants)
    tr, te = data.split(d)
    print(f"selection split: fit on {len(tr)} complaints, scored on {len(te)} unseen ones; severity macro-F1")
    print(f"  joint head a {100 * mf1(data.sev[te], d['a_sev'][te].argmax(1) + 1):.1f}, "
          f"b {100 * mf1(data.sev[te], d['b_sev'][te].argmax(1) + 1):.1f}")
    for f in FEATURES:
        print(f"  {f:<11}" + "".join(f"  C={c:g}: " + "/".join(f"{100 * res[(f, c, w)]:.1f}" for w in TFIDF_W) for c in CS))
    print("  (cells: TF-IDF weight " + "/".join(map(str, TFIDF_W)) + ")")
    best = max(res, key=res.get)
    print(f"best: {best} {100 * res[best]:.1f}")


def folds(variants):
    data = Data()
    per: dict = {}
    for p in sorted(DIR.glob("fold*.npz")):
        for k, v in scores(data, np.load(p), variants).items():
            per.setdefault(k, []).append(v)
    for k, v in per.items():
        print(f"{k}: held-out severity macro-F1 {100 * np.mean(v):.1f} ± {100 * np.std(v):.1f} over {len(v)} folds")


def ordinal(feat, c):
    data = Data()
    for name, paths in (("selection split", [DIR / "tune.npz"]), ("10 folds", sorted(DIR.glob("fold*.npz")))):
        res = []
        for p in paths:
            d = np.load(p)
            tr, te = data.split(d)
            ztr, zte = standardised(d, feat, tr, te)
            res.append(mf1(data.sev[te], ordinal_pred(ztr, data.sev[tr], zte, c)))
        print(f"ordinal {feat} C={c}, {name}: {100 * np.mean(res):.1f} ± {100 * np.std(res):.1f}")


if __name__ == "__main__":
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "select" and not args:
        select()
    elif command == "ordinal" and len(args) == 2:
        ordinal(args[0], float(args[1]))
    elif command == "folds" and args and len(args) % 3 == 0:
        folds([(args[i], float(args[i + 1]), float(args[i + 2])) for i in range(0, len(args), 3)])
    else:
        sys.exit(__doc__)
