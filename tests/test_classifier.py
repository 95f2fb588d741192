"""The complaint classifier as the rest of Hearken uses it: offline, shipped."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import classifier
from classifier import ComplaintModel, ModelError, Prediction, prepare_text

REPO = Path(__file__).resolve().parent.parent
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

CLEAR_COMPLAINTS = [
    "@user my order was supposed to arrive a week ago and still nothing. Three emails, zero replies. Pathetic.",
    "Your app has crashed every time I open it since the update. Fix it, I pay for this!",
    "Charged twice for the same ticket and customer service hung up on me. Disgraceful.",
    "Third time my broadband has dropped today, absolutely useless service @user",
]
CLEAR_NOT = [
    "Thank you so much for the quick reply, the new phone is working perfectly!",
    "What time does the store on Main Street open on Sunday?",
    "Had a lovely lunch with my sister today, the weather was great",
    "Congratulations to the whole team on the launch, looks brilliant",
]
UNCLEAR = [
    "Hmm, the new menu is different. Not sure how I feel about it.",
    "The update moved all the buttons around, guess I will get used to it",
    "Still waiting to hear back about my application",
    "Prices went up again I see",
]


@pytest.fixture(scope="module")
def model() -> ComplaintModel:
    return classifier.load()


def test_shipped_model_loads_offline_without_torch_or_sklearn():
    code = (
        "import sys, classifier\n"
        "m = classifier.load()\n"
        "p = m.predict(['my parcel never arrived'])[0]\n"
        "print(m.version, m.threshold, round(p.score, 3), 'torch' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=OFFLINE, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    version, threshold, score, torch_loaded, sklearn_loaded = out.stdout.split()
    assert version.startswith("minilm-")
    assert 0.0 < float(threshold) < 1.0
    assert 0.0 <= float(score) <= 1.0
    assert (torch_loaded, sklearn_loaded) == ("False", "False")


def test_clear_complaints_flagged_and_clear_non_complaints_not(model):
    complaints = model.predict(CLEAR_COMPLAINTS)
    others = model.predict(CLEAR_NOT)
    assert all(p.is_complaint for p in complaints), [p.score for p in complaints]
    assert not any(p.is_complaint for p in others), [p.score for p in others]
    assert all(p.severity in (1, 2, 3, 4) and p.topic for p in complaints)
    assert all(p.severity is None and p.topic is None for p in others)


def test_unclear_texts_score_between_clear_ones(model):
    clear_yes = min(p.score for p in model.predict(CLEAR_COMPLAINTS))
    clear_no = max(p.score for p in model.predict(CLEAR_NOT))
    for p in model.predict(UNCLEAR):
        assert clear_no < p.score < clear_yes


def test_threshold_argument_overrides_operating_point(model):
    text = [CLEAR_COMPLAINTS[0]]
    assert model.predict(text, threshold=0.0)[0].is_complaint
    assert not model.predict(text, threshold=1.01)[0].is_complaint
    assert model.predict([CLEAR_NOT[0]], threshold=0.0)[0].severity in (1, 2, 3, 4)


def test_predict_keeps_order_and_handles_empty_input(model):
    texts = CLEAR_NOT[:2] + CLEAR_COMPLAINTS[:2] + [""]
    preds = model.predict(texts)
    assert [p.is_complaint for p in preds[:4]] == [False, False, True, True]
    assert isinstance(preds[4], Prediction) and 0.0 <= preds[4].score <= 1.0
    assert model.predict([]) == []
    with pytest.raises(TypeError):
        model.predict("one string, not a list")


def test_a_texts_score_does_not_depend_on_what_it_is_batched_with(model):
    # A post near the threshold must not be a complaint in one poll and not in the next because other
    # posts came with it. (Dynamic int8 quantisation did that: one activation range per batch.)
    rng = np.random.default_rng(3)
    texts = CLEAR_COMPLAINTS + CLEAR_NOT + UNCLEAR + [
        "ok",
        "@user " + "the van came, went, came back, left again and my parcel is still in the depot. " * 12,
    ]
    alone = np.array([model.predict([t])[0].score for t in texts])
    # The tolerance is what fp32 rounding can do when ONNX Runtime picks another kernel for another batch
    # shape, on any CPU; the batch-dependent quantisation moved scores by 1e-2 and more.
    verdicts = [s >= model.threshold for s in alone]
    for _ in range(3):
        order = rng.permutation(len(texts))
        batched = model.predict([texts[i] for i in order])
        assert np.allclose([p.score for p in batched], alone[order], atol=1e-4, rtol=0)
        assert [p.is_complaint for p in batched] == [verdicts[i] for i in order]
    crowd = [f"Loving the new season of the show, episode {i} was great" for i in range(40)]
    in_crowd = model.predict(crowd + texts)[len(crowd):]
    assert np.allclose([p.score for p in in_crowd], alone, atol=1e-4, rtol=0)
    assert [p.is_complaint for p in in_crowd] == verdicts


def test_complaint_at_the_end_of_a_long_forum_post_is_found(model):
    filler = " ".join(
        [
            "We moved into the new house in March and set up the network the first weekend.",
            "The main unit sits in the hallway and the extender is upstairs in the office.",
            "My daughter streams her lessons in the afternoon and my partner works from home.",
            "The garden is bigger than at the old place, so we put a camera by the shed.",
            "I labelled every cable and drew a small map of which device is where.",
            "In the evenings we watch films in the living room on the big television.",
            "The printer is in the office and the games console is in the spare room.",
            "On weekends we walk by the river and stop for coffee at the bakery.",
            "I keep a notebook with the settings I changed, with the date of each change.",
            "The neighbours recommended the same setup, and it fitted in well with ours.",
        ]
        * 3
    )
    complaint = "Since your firmware update last week the connection drops every hour and support never replies. Fix this!"
    text = prepare_text("Router setup notes", filler + complaint)
    assert len(text) > 2000
    long_score = model.predict([text])[0].score
    filler_score = model.predict([prepare_text("Router setup notes", filler)])[0].score
    assert long_score > model.threshold > filler_score


def test_prepare_text_joins_title_and_body_and_masks_handles_and_urls():
    text = prepare_text("Refund still missing", "Hi @BigShop, see https://x.co/abc &amp; please   help")
    assert text == "Refund still missing. Hi @user, see http & please help"
    assert prepare_text("", "just a body") == "just a body"
    assert prepare_text("Why?", "") == "Why?"
    long = prepare_text("t", "start " + "x " * 5000 + " the end")
    assert len(long) <= 4000 and long.startswith("t. start") and long.endswith("the end")


def test_embed_is_normalised_and_puts_similar_texts_closer(model):
    texts = [
        "my package never arrived",
        "the parcel was not delivered",
        "great weather for a picnic today",
    ]
    vectors = classifier.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[1, 2]
    assert np.allclose(model.embed(texts), vectors, rtol=0, atol=1e-5)


@pytest.fixture
def model_copy(tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(classifier.SHIPPED_DIR, target)
    return target


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json", "meta.json"])
def test_missing_model_file_is_named(model_copy, name):
    (model_copy / name).unlink()
    with pytest.raises(ModelError, match=name.replace(".", r"\.")) as err:
        classifier.load(model_copy)
    assert "missing" in str(err.value)


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json", "meta.json"])
def test_corrupt_model_file_is_named(model_copy, name):
    path = model_copy / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a truncated download or copy
    with pytest.raises(ModelError, match=name.replace(".", r"\.")) as err:
        classifier.load(model_copy)
    assert "corrupt" in str(err.value)


def _write_tiny_benchmark(path: Path) -> None:
    complaints = [
        "my order never arrived and nobody answers", "charged twice, still waiting for a refund",
        "app keeps crashing after the update, useless", "train cancelled again with no warning",
        "rude staff and cold food, never again", "broadband down for the third day",
    ]
    fine = [
        "thanks for the quick help today", "what are your opening hours on sunday",
        "love the new colours in the shop", "just bought tickets for the weekend",
        "happy birthday to my brother", "the sunset over the bay was lovely",
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "tweet", "label", "domain", "sentiment", "emotion", "Severity", "Explain"])
        for i, t in enumerate(complaints * 2):
            w.writerow([i, t, 1, "retail", "Negative", "anger", 1 + i % 4, t])
        for i, t in enumerate(fine * 2):
            w.writerow([100 + i, t, 0, "random_tweet", "Positive", "joy", 0, ""])


def _hearken(*args: str) -> subprocess.CompletedProcess:
    code = (
        "import argparse, sys\n"
        "from classifier.cli import register\n"
        "p = argparse.ArgumentParser(prog='hearken'); register(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=OFFLINE, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_training_on_a_tiny_set_writes_a_loadable_model_that_learned(tmp_path):
    data = tmp_path / "tiny.csv"
    _write_tiny_benchmark(data)
    extra = tmp_path / "staff.jsonl"
    extra.write_text(
        json.dumps({"text": "support ignored my ticket for a month", "label": 1, "severity": 3}) + "\n"
        + json.dumps({"text": "see you at the match tonight", "label": 0, "severity": None}) + "\n"
    )
    # no training steps, with the extra training texts of classifier/train_extra/
    before = _hearken("train", "--data", str(data), "--out", str(tmp_path / "m0"), "--max-steps", "0", "--checkpoint", "",
                      "--extra")
    assert before.returncode == 0, before.stderr
    from classifier.train import Config, training_extras

    n_extra = len(training_extras(Config(extra_sets=("goemotions_friendly", "nlupp_hotels", "hard_cases"))))
    assert n_extra == 600 + 296 + 61 * 8
    assert f"adding {n_extra} texts from classifier/train_extra/" in before.stderr
    assert json.loads((tmp_path / "m0" / "meta.json").read_text())["examples"] == 24 + n_extra
    after = _hearken(
        "train", "--data", str(data), "--extra-labels", str(extra), "--out", str(tmp_path / "m1"),
        "--epochs", "4", "--checkpoint", "", "--seed", "1",
    )
    assert after.returncode == 0, after.stderr
    assert "adding 2 staff labels" in after.stderr and "epoch 4/4" in after.stderr  # progress on stderr

    texts = ["my order never arrived and nobody answers", "thanks for the quick help today"]
    untrained = classifier.load(tmp_path / "m0").predict(texts, threshold=0.5)
    trained = classifier.load(tmp_path / "m1").predict(texts, threshold=0.5)
    gap_before = untrained[0].score - untrained[1].score
    gap_after = trained[0].score - trained[1].score
    assert gap_after > gap_before + 0.05, (gap_before, gap_after)
    meta = json.loads((tmp_path / "m1" / "meta.json").read_text())
    assert meta["examples"] == 26 and meta["version"].startswith("minilm-ft-")
    assert meta["quantised"] == "int8-static-qdq"
    assert "severity head: too few labelled complaints" in after.stderr  # 26 rows: the joint head is kept
    m0 = json.loads((tmp_path / "m0" / "meta.json").read_text())
    assert m0["version"] != meta["version"]  # other weights, other version


def test_bad_extra_labels_file_is_reported(tmp_path):
    data = tmp_path / "tiny.csv"
    _write_tiny_benchmark(data)
    bad = tmp_path / "staff.csv"
    bad.write_text("text,label\nfine text,maybe\n")
    out = _hearken("train", "--data", str(data), "--extra-labels", str(bad), "--out", str(tmp_path / "m"), "--checkpoint", "")
    assert out.returncode != 0
    assert "staff.csv: record 1" in out.stderr


def test_evaluate_scores_a_model_on_a_labelled_file(tmp_path):
    data = tmp_path / "tiny.csv"
    _write_tiny_benchmark(data)
    out = _hearken("evaluate", "--model", str(classifier.SHIPPED_DIR), "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert "macro_f1" in out.stdout and "threshold 0.5" in out.stdout


DATA = Path(os.environ.get("HEARKEN_DATA", REPO.parent / "shared" / "data" / "complaints_xci.csv"))


@pytest.mark.skipif(not DATA.is_file(), reason=f"benchmark data not found at {DATA} (set HEARKEN_DATA)")
def test_benchmark_loads_with_the_published_counts():
    from classifier.data import load_benchmark

    rows = load_benchmark(DATA)
    assert len(rows) == 3448 and sum(r.label for r in rows) == 1232
    assert {r.severity for r in rows if r.label} == {1, 2, 3, 4}
    assert all(r.severity == 0 for r in rows if not r.label)


@pytest.mark.skipif(not DATA.is_file(), reason=f"benchmark data not found at {DATA} (set HEARKEN_DATA)")
def test_refitted_severity_head_uses_all_four_levels_and_reads_the_graphs_own_vector():
    # The refit puts a class-balanced logistic regression into net.severity (standardisation folded into
    # the weights), so the exported graph needs nothing new. Checked on the untrained encoder: the head's
    # own logits must reproduce a working classifier on the complaints it was fitted on.
    import torch
    from sklearn.metrics import f1_score

    from classifier.data import load_benchmark
    from classifier.net import ComplaintNet, base_encoder_dir
    from classifier.runtime import open_tokenizer
    from classifier.train import predict_torch, refit_severity_head

    torch.manual_seed(0)
    complaints = [r for r in load_benchmark(DATA) if r.label][:240]
    net = ComplaintNet().eval()
    tokenizer = open_tokenizer(base_encoder_dir() / "tokenizer.json")
    levels = np.array([r.severity for r in complaints])
    vectors = torch.tensor(predict_torch(net, tokenizer, [r.text for r in complaints])[2])

    def head_f1() -> tuple[float, set[int]]:
        with torch.no_grad():
            pred = net.severity(vectors).argmax(1).numpy() + 1
        return f1_score(levels, pred, average="macro"), set(pred.tolist())

    before, _ = head_f1()
    assert refit_severity_head(net, tokenizer, complaints, progress=None) is not None
    after, used = head_f1()
    assert used == {1, 2, 3, 4}
    assert after > max(before, 0.4)
    refitted = net.severity.weight.detach().clone()
    with torch.no_grad():
        logits = net.severity(vectors)
    # a caller holding the vectors already (the CV folds, with non-complaints among the rows) gets the same
    # head without a second encoder pass: the vectors are matched to the complaints row for row
    others = [r for r in load_benchmark(DATA) if not r.label][:60]
    mixed = [row for pair in zip(others, complaints) for row in pair] + complaints[len(others):]
    mixed_vectors = predict_torch(net, tokenizer, [r.text for r in mixed])[2]
    refit_severity_head(net, tokenizer, mixed, progress=None, vectors=mixed_vectors)
    with torch.no_grad():
        logits_again = net.severity(vectors)
    # The same head as a user sees it: the level picked for each complaint, and logits and weights equal up to
    # float rounding. Vectors encoded in batches of another make-up differ in their last bits, and the
    # standardisation folded into the weights magnifies that (up to 1e-5 relative, seen on AVX-512); rows
    # matched to the wrong complaints would change levels and weights by whole units.
    agree = (logits_again.argmax(1) == logits.argmax(1)).float().mean().item()
    assert agree >= 0.99, f"only {agree:.1%} of the complaints get the same level"
    assert torch.allclose(logits_again, logits, rtol=0, atol=1e-3 * logits.abs().max().item())
    assert torch.allclose(net.severity.weight, refitted, rtol=0, atol=1e-3 * refitted.abs().max().item())

    untouched = net.severity.weight.detach().clone()
    assert refit_severity_head(net, tokenizer, complaints[:20], progress=None) is None  # too few: head kept
    assert torch.equal(net.severity.weight, untouched)


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_file(), reason=f"benchmark data not found at {DATA} (set HEARKEN_DATA)")
def test_quantise_alone_makes_the_shipped_model_again_from_its_own_files(tmp_path):
    # `hearken quantise` on an existing model: the same step `hearken train` ends with. The shipped model was
    # made this way from its int8-weights predecessor; done again on its own files it finds the same int8
    # weights and the same activation ranges, so it scores exactly as the shipped one.
    src = tmp_path / "src"
    shutil.copytree(classifier.SHIPPED_DIR, src)
    out = _hearken("quantise", "--model", str(src), "--out", str(tmp_path / "q"), "--data", str(DATA))
    assert out.returncode == 0, out.stderr
    assert "calibrating on 500 windows of our own texts" in out.stderr
    again = classifier.load(tmp_path / "q")
    shipped = classifier.load()
    assert again.format == "int8-static-qdq"
    assert again.version.rsplit("-w", 1)[0] == shipped.version.rsplit("-w", 1)[0]  # same model, new graph hash
    texts = CLEAR_COMPLAINTS + CLEAR_NOT + UNCLEAR
    ours, theirs = again.predict(texts), shipped.predict(texts)
    assert [p.is_complaint for p in ours] == [p.is_complaint for p in theirs]
    assert np.allclose([p.score for p in ours], [p.score for p in theirs], rtol=0, atol=1e-6)
    missing = _hearken("quantise", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "q2"), "--data", str(DATA))
    assert missing.returncode == 1 and "nothing" in missing.stderr and "missing" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_meta_json_chooses_how_a_long_posts_windows_combine(model_copy, model):
    # The shipped model scores a long text as its most complaint-like window ("max"); meta.json's
    # "aggregate" can ask for the opening window weighted against a soft maximum instead. Texts of one
    # window score the same under both rules.
    meta_path = model_copy / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta.get("aggregate", {"rule": "max"}) == {"rule": "max"}
    friendly = ("Our allotment diary for June. The beans are up, the courgettes are flowering and the new water butt "
                "fills after one night of rain. ") * 6
    long_post = prepare_text("Allotment diary", friendly + "The seed company sent the wrong order twice and never refunded me.")
    texts = [long_post, CLEAR_COMPLAINTS[0], CLEAR_NOT[0]]
    assert len(model._windows([long_post])[0]) > 2
    meta["aggregate"] = {"rule": "opening-lme", "temperature": 1.0, "opening_weight": 0.5}
    meta_path.write_text(json.dumps(meta))
    soft = classifier.load(model_copy).scores(texts)[0]
    hard = model.scores(texts)[0]
    assert soft[0] < hard[0] - 0.01  # one complaint-like window among friendly ones counts for less
    assert np.allclose(soft[1:], hard[1:], atol=1e-6)
    meta["aggregate"] = {"rule": "median"}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"meta\.json.*aggregate.*median"):
        classifier.ComplaintModel(model_copy)


def test_classifier_threads_in_the_config_sets_onnx_runtimes_threads_and_the_environment_does_not(monkeypatch):
    """Every setting is a config key: `classifier.threads` reaches the runner's model; the old HEARKEN_THREADS
    variable is no longer read."""
    from desk.config.schema import parse_config
    from desk.intake.runner import Runner
    from desk.store.db import connect

    monkeypatch.setenv("HEARKEN_THREADS", "3")
    cfg = parse_config("brand: {terms: [Acme]}\nclassifier: {threads: 1}\n")
    store = connect("sqlite:///:memory:")
    try:
        one = Runner(cfg, store).model
    finally:
        store.close()
    assert one._session.get_session_options().intra_op_num_threads == 1
    default = classifier.load()
    assert default is not one
    assert default._session.get_session_options().intra_op_num_threads == min(2, os.cpu_count() or 1)
    assert one.predict(["my order never arrived"])[0].score == pytest.approx(
        default.predict(["my order never arrived"])[0].score, abs=1e-4)
