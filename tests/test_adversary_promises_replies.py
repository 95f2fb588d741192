"""Adversary: ways a public reply still goes out twice, or is declared posted when it is not, or costs the
dashboard its memory, against the hostile Discourse, X and Reddit stand-ins of tests/hostile_publish.py.

The reply is posted the way the dashboard's "Post publicly" posts it: from a separate process
(tests/adversary.py `post_as_dashboard`) or through the same call in this one. What is asserted is what
a person would notice: the replies the platform holds, what the case page says about ours, the memory
of the process that posted. Each test is one finding, xfail(strict) until it was fixed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.adversary import check_as_dashboard, gzip_bomb, post_as_dashboard
from tests.hostile_publish import Answer, stage

TEXT = "Hi kevin, sorry about the drops. Engineers are on it; update here by 6pm. Ref #HK1"


@pytest.fixture
def discourse(tmp_path, sqlite_store):
    st = stage("discourse", sqlite_store, tmp_path, publish_deadline_seconds=15, stale_after_seconds=30)
    yield st
    st.platform.stop()


def test_a_gzip_bomb_answering_a_reply_costs_the_dashboard_no_more_than_the_cap(discourse, tmp_path):
    """The forum stores our reply and answers 200 with `Content-Encoding: gzip`: 0.5 MB that inflates to
    512 MiB. collectors/net/deadline.py counted what the socket delivered against its 8 MB cap, and httpx
    inflated behind it, so the whole answer landed in the dashboard's memory (twice: the body, then the text
    json() decodes). Several such posts at once take the dashboard down with every user's session. The
    answer is now inflated a piece at a time and counted (collectors/net/inflate.py)."""
    st = discourse
    db_url = str(st.store.engine.url)
    st.platform.bad.refuse = 403  # a first post refused: what a post costs the dashboard's process
    baseline = post_as_dashboard(st.cfg.path, db_url, st.case_id, TEXT, st.env)
    assert baseline["status"] == "failed", baseline
    st.platform.bad.refuse = None
    bomb = gzip_bomb(512, layers=1)
    real_create = st.platform._create

    def create_then_bomb(req, m):
        real_create(req, m)  # the post is stored, as the forum would
        return Answer(200, bomb, {"Content-Encoding": "gzip"})

    st.platform.routes = [(meth, pat, create_then_bomb if fn == real_create else fn) for meth, pat, fn in st.platform.routes]
    out = post_as_dashboard(st.cfg.path, db_url, st.case_id, TEXT, st.env)
    assert st.held(TEXT) == 1
    grew = out["peak_mib"] - baseline["peak_mib"]
    assert grew < 100, f"posting one reply took the dashboard's process from {baseline['peak_mib']} to " \
                       f"{out['peak_mib']} MiB ({len(bomb):,} bytes on the wire); outcome {out['status']}"


@pytest.fixture
def x(tmp_path, sqlite_store):
    st = stage("x", sqlite_store, tmp_path)
    yield st
    st.platform.stop()


def _wrap_create(st, path: str, after_store):
    """Make the stand-in's create call store the post as usual, then answer `after_store(request)` instead."""
    for i, (meth, pat, fn) in enumerate(st.platform.routes):
        if meth == "POST" and pat.match(path):
            real = fn

            def create(req, m, real=real):
                real(req, m)
                return after_store(req)

            st.platform.routes[i] = (meth, pat, create)
            return
    raise AssertionError(f"no create route for {path}")


def test_a_redirect_after_the_reply_was_stored_does_not_post_it_again(x):
    """requests follows 307/308 keeping the method and the body, on the same origin (Hearken's session allows
    same-origin redirects), so one click on Post publicly makes two create calls when the platform stores the
    post and then answers `307 Temporary Redirect` to itself (a load balancer draining a node, a proxy
    retrying through another path). Each create stored a reply: the customer got two. A redirect on a POST is
    now never followed: the 3xx is the answer, and it does not say whether the post was made (unknown)."""
    st = x
    redirected = []

    def redirect_once(req):
        if not redirected:
            redirected.append(req)
            return Answer(307, {"title": "moved"}, {"Location": "/2/tweets"})
        return Answer(201, {"data": {"id": st.platform.tweets[-1]["id"], "text": TEXT}})

    _wrap_create(st, "/2/tweets", redirect_once)
    out = post_as_dashboard(st.cfg.path, str(st.store.engine.url), st.case_id, TEXT, st.env)
    assert st.held(TEXT) == 1, f"one click put {st.held(TEXT)} replies on X (outcome {out['status']})"
    assert out["status"] == "unknown", f"a reply X may hold is shown as {out['status']}: {out['error']}"


def test_an_odd_status_after_the_reply_was_stored_is_not_taken_as_safe_to_post_again(discourse):
    """The forum stores our reply and answers `307` (a proxy in front of it, a half-done move to another path),
    a proxy's 408 or a 409. Anything that was not 2xx or 5xx became `Rejected`, i.e. `failed`: "Nothing went
    out; you can try again". The person tries again and the customer gets two identical replies. Only the
    platform's documented refusals (400, 403, 404, 422, 429, with Discourse's errors list) say nothing was
    posted; anything else is `unknown`, to be checked (tests/test_publishers.py tries the other statuses)."""
    st = discourse
    _wrap_create(st, "/posts.json", lambda req: Answer(307, b"", {"Location": "/posts.json"}))
    first = post_as_dashboard(st.cfg.path, str(st.store.engine.url), st.case_id, TEXT, st.env)
    assert st.held(TEXT) == 1
    assert first["status"] == "unknown", f"a reply the forum holds is shown as {first['status']}: {first['error']}"


@pytest.fixture
def discourse_now(tmp_path, sqlite_store):
    """The hostile Discourse with a grace period of 0: a check that finds nothing concludes at once."""
    st = stage("discourse", sqlite_store, tmp_path, check_grace_seconds=0)
    yield st
    st.platform.stop()


def test_posts_moved_into_the_topic_do_not_hide_our_reply_from_the_check(discourse_now):
    """Our reply is stored but its answer lost (unknown). Then the topic grows: 25 new posts, and a moderator
    merges an old topic into it (Discourse's "move posts" appends them at the end with their original
    created_at, days ago). The check read the stream newest post number first, met the moved posts in
    its first chunk, took "older than the attempt" for "everything further back is older too", and stopped:
    `not_found`, "Post anyway" offered, while our reply is post 2 of the topic. It now reads every post
    above the one we answered, whatever their times."""
    st = discourse_now
    st.platform.bad.drop_after_store = True
    out = post_as_dashboard(st.cfg.path, str(st.store.engine.url), st.case_id, TEXT, st.env)
    assert out["status"] == "unknown" and st.held(TEXT) == 1
    st.platform.add_posts(25, username="someone", text="me too (#{i})")
    st.platform.add_posts(3, username="old_timer", text="from the merged topic (#{i})",
                          at=st.platform.now() - timedelta(days=3))
    checked = check_as_dashboard(st.cfg.path, str(st.store.engine.url), out["reply_id"], st.env)
    assert checked["status"] == "posted", f"our reply is on the forum; the check says {checked['status']}: " \
                                          f"{checked['error']}"
