"""Hostile platforms for the publishing side: real HTTP servers on 127.0.0.1 that play Discourse, X and
Reddit the way they behave on a bad day, and count the replies they actually hold.

Each stand-in speaks its platform's documented API shape (Discourse's /posts.json, /t/{id}.json and
/t/{id}/posts.json; X API v2 POST /2/tweets and GET /2/users/:id/tweets with pagination_token and
start_time; Reddit's /api/comment and /user/NAME/comments Listing paged with `after`), close to the
recordings in ../shared/fixtures, but self-contained so the tests run without them. What nobody
recorded (errors, a reply's timeline entry) follows the platforms' documentation.

How a create call misbehaves is set on `stand_in.bad` (a `Bad`):

- `commit_delay`: store the post this long after the request arrives, then answer (late commit);
- `answer_delay`: store at once, answer this long after;
- `status_after_store`: store, then answer this status (a 500 after a real post);
- `drop_after_store`: store, then close the connection without a word;
- `drip`: store, then answer one byte every `drip_every` seconds, for ever;
- `flood`: store, then answer an endless body as fast as the connection takes it;
- `refuse`: answer this status and store nothing;
- `clock_skew`: the platform's clock is this many seconds off ours (negative: behind);
- `never_store`: answer nothing and store nothing (the request was lost inside the platform).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests import collector_helpers


@dataclass
class Bad:
    commit_delay: float = 0.0
    answer_delay: float = 0.0
    status_after_store: int | None = None
    drop_after_store: bool = False
    drip: bool = False
    drip_every: float = 0.3
    flood: bool = False
    refuse: int | None = None
    refuse_body: Any = None
    clock_skew: float = 0.0
    never_store: bool = False


class Request(collector_helpers.Request):
    """One request the platform received (the read side's Request, with the bodies a create call sends)."""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class Answer:
    """What a route hands back: a JSON (or bytes) body with a status, or one of the hostile endings."""

    def __init__(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None, *,
                 drop: bool = False, drip_every: float | None = None, flood: bool = False) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.drop, self.drip_every, self.flood = drop, drip_every, flood


Route = Callable[[Request, re.Match], Answer]


class HostilePlatform:
    """A threading HTTP server on 127.0.0.1; subclasses add routes and keep the platform's state."""

    def __init__(self) -> None:
        self.bad = Bad()
        self.routes: list[tuple[str, re.Pattern, Route]] = []
        self.requests: list[Request] = []
        self.stored: list[str] = []  # the text of every reply a create call stored
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()

    def now(self) -> datetime:
        """The platform's clock."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.bad.clock_skew)

    def route(self, method: str, pattern: str, fn: Route) -> None:
        self.routes.append((method, re.compile(pattern + r"/?$"), fn))

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def creates(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.rstrip("/") == path.rstrip("/")]

    def start(self):
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length) if length else b"")
                with platform.lock:
                    platform.requests.append(req)
                answer = Answer(404, {"errors": ["not found"]})
                for method, pattern, fn in platform.routes:
                    match = pattern.match(req.path)
                    if method == req.method and match:
                        answer = fn(req, match)
                        break
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                if answer.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                if self.close_connection:  # the client asked for it (prawcore does, for tokens): say so, as servers do
                    self.send_header("Connection", "close")
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if answer.flood:
                    self.send_header("Content-Length", str(1 << 40))
                    self.end_headers()
                    block = b'{"x": "' + b"x" * 65536
                    while not platform._stopping.is_set():
                        self.wfile.write(block)
                    return
                if answer.drip_every is not None:
                    self.send_header("Content-Length", "100000000")
                    self.end_headers()
                    while not platform._stopping.is_set():
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(answer.drip_every)
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def handle(self) -> None:
                try:
                    super().handle()
                except OSError:  # the client hung up on a drip or a drop: that is the point
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def create(self, text: str, store: Callable[[], Any], answer: Callable[[Any], Answer]) -> Answer:
        """Play a create call by `self.bad`: `store()` keeps the post (under the lock), `answer(post)` the reply.
        Every reply stored this way is counted in `self.stored` (the text as it was sent)."""
        bad = self.bad
        if bad.refuse is not None:
            return Answer(bad.refuse, bad.refuse_body if bad.refuse_body is not None else {"errors": ["refused"]})
        if bad.never_store:
            time.sleep(bad.commit_delay or 3600)
            return Answer(drop=True)
        if bad.commit_delay:
            time.sleep(bad.commit_delay)
        with self.lock:
            post = store()
            self.stored.append(text)
        if bad.answer_delay:
            time.sleep(bad.answer_delay)
        if bad.drop_after_store:
            return Answer(drop=True)
        if bad.status_after_store:
            return Answer(bad.status_after_store, b"<html><body>Internal Server Error</body></html>")
        if bad.drip:
            return Answer(200, drip_every=bad.drip_every)
        if bad.flood:
            return Answer(200, flood=True)
        return answer(post)


def _iso(t: datetime, *, millis: bool = True) -> str:
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z" if millis else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# --- Discourse ---------------------------------------------------------------------------------


class HostileDiscourse(HostilePlatform):
    """One topic (id 17) opened by kevin.r. Posts are kept in topic order; `stream` lists every post id."""

    CHUNK = 20  # posts per page of a topic, as Discourse serves them

    def __init__(self, *, topic_id: int = 17, our_user: str = "northwind_team") -> None:
        super().__init__()
        self.topic_id = topic_id
        self.our_user = our_user
        self.posts: list[dict] = []
        self.next_id = 1000
        self._add("kevin.r", "My Northwind hub drops every evening", None, self.now() - timedelta(hours=1))
        self.route("POST", r"/posts\.json", self._create)
        self.route("GET", rf"/t/{topic_id}\.json", self._topic)
        self.route("GET", rf"/t/{topic_id}/posts\.json", self._topic_posts)
        self.route("GET", r"/posts/(\d+)\.json", self._post)
        self.route("GET", r"/posts\.json", self._latest)

    def _add(self, username: str, raw: str, reply_to: int | None, at: datetime) -> dict:
        self.next_id += 1
        post = {"id": self.next_id, "name": username, "username": username, "avatar_template": "",
                "created_at": _iso(at), "updated_at": _iso(at), "cooked": f"<p>{raw}</p>", "raw": raw,
                "post_number": len(self.posts) + 1, "post_type": 1, "reply_count": 0,
                "reply_to_post_number": reply_to, "topic_id": self.topic_id, "topic_slug": "hub-drops",
                "version": 1, "yours": username == self.our_user, "user_id": 7 if username == self.our_user else 9}
        self.posts.append(post)
        return post

    def add_posts(self, n: int, *, username: str | None = None, reply_to: int | None = None,
                  text: str = "Thanks for the update, we're on it (#{i})", at: datetime | None = None) -> None:
        """`n` more posts in the topic (ours by default), as if written since."""
        with self.lock:
            for i in range(n):
                self._add(username or self.our_user, text.format(i=i), reply_to, at or self.now())

    def ours(self, text: str) -> list[dict]:
        """Our account's posts with exactly this text: the replies that reached the forum."""
        return [p for p in self.posts if p["username"] == self.our_user and p["raw"] == text]

    def _create(self, req: Request, _m) -> Answer:
        if not req.headers.get("api-key") or not req.headers.get("api-username"):
            return Answer(403, {"errors": ["You are not permitted to view the requested resource."],
                                "error_type": "invalid_access"})
        payload = req.json()
        if int(payload.get("topic_id") or 0) != self.topic_id:
            return Answer(404, {"errors": ["The requested URL or resource could not be found."],
                                "error_type": "not_found"})
        user = req.headers["api-username"]
        return self.create(payload["raw"],
                           lambda: self._add(user, payload["raw"], payload.get("reply_to_post_number"), self.now()),
                           lambda post: Answer(200, {k: v for k, v in post.items() if k != "raw"}))

    def _view(self, post: dict, raw: bool) -> dict:
        return post if raw else {k: v for k, v in post.items() if k != "raw"}

    def _topic(self, req: Request, _m) -> Answer:
        raw = bool(req.arg("include_raw"))
        with self.lock:
            posts = [self._view(p, raw) for p in self.posts[:self.CHUNK]]
            stream = [p["id"] for p in self.posts]
        return Answer(200, {"id": self.topic_id, "title": "Hub drops", "slug": "hub-drops", "posts_count": len(stream),
                            "post_stream": {"posts": posts, "stream": stream}})

    def _topic_posts(self, req: Request, _m) -> Answer:
        wanted = {int(i) for i in req.query.get("post_ids[]", [])}
        raw = bool(req.arg("include_raw"))
        with self.lock:
            posts = [self._view(p, raw) for p in self.posts if p["id"] in wanted]
        return Answer(200, {"post_stream": {"posts": posts}, "id": self.topic_id})

    def _latest(self, req: Request, _m) -> Answer:
        """GET /posts.json: the forum's newest posts, newest first, paged back with `before` (a post id)."""
        before = int(req.arg("before") or 0) or None
        with self.lock:
            rows = [dict(p, topic_title="Hub drops") for p in reversed(self.posts) if before is None or p["id"] < before]
        return Answer(200, {"latest_posts": rows[:self.CHUNK]})

    def _post(self, req: Request, m: re.Match) -> Answer:
        with self.lock:
            for p in self.posts:
                if p["id"] == int(m.group(1)):
                    return Answer(200, p)
        return Answer(404, {"errors": ["not found"], "error_type": "not_found"})


# --- X -------------------------------------------------------------------------------------------


class HostileX(HostilePlatform):
    """Our account (id 42, @NorthwindHelp) and its timeline, newest first, paged as API v2 pages it."""

    def __init__(self, *, handle: str = "NorthwindHelp") -> None:
        super().__init__()
        self.handle = handle
        self.tweets: list[dict] = []  # ours, oldest first
        self.next_id = 1_700_000_000_000_000_000
        self.route("POST", r"/2/tweets", self._create)
        self.route("GET", r"/2/users/me", self._me)
        self.route("GET", r"/2/users/42/tweets", self._timeline)

    def _add(self, text: str, reply_to: str | None, at: datetime) -> dict:
        self.next_id += 1 + len(self.tweets)
        shown = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # X escapes these in text
        tweet = {"id": str(self.next_id), "text": ("@maria_t " + shown) if reply_to else shown,
                 "created_at": _iso(at), "author_id": "42", "edit_history_tweet_ids": [str(self.next_id)],
                 "conversation_id": reply_to or str(self.next_id),
                 "referenced_tweets": [{"type": "replied_to", "id": reply_to}] if reply_to else None}
        self.tweets.append(tweet)
        return tweet

    def add_tweets(self, n: int, *, reply_to: str | None = "999", text: str = "Sorry to hear that, DM us (#{i})",
                   at: datetime | None = None) -> None:
        with self.lock:
            for i in range(n):
                self._add(text.format(i=i), reply_to, at or self.now())

    def replies_to(self, tweet_id: str) -> list[dict]:
        return [t for t in self.tweets if any(r["id"] == tweet_id for r in t.get("referenced_tweets") or [])]

    def _create(self, req: Request, _m) -> Answer:
        if not req.headers.get("authorization", "").startswith("OAuth "):
            return Answer(403, {"title": "Unsupported Authentication", "type": "https://api.twitter.com/2/problems/"
                                "unsupported-authentication", "status": 403,
                                "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint."})
        payload = req.json()
        reply_to = (payload.get("reply") or {}).get("in_reply_to_tweet_id")
        return self.create(payload["text"], lambda: self._add(payload["text"], reply_to, self.now()),
                           lambda t: Answer(201, {"data": {"id": t["id"], "text": t["text"],
                                                           "edit_history_tweet_ids": [t["id"]]}}))

    def _me(self, req: Request, _m) -> Answer:
        return Answer(200, {"data": {"id": "42", "name": "Northwind Help", "username": self.handle}})

    def _timeline(self, req: Request, _m) -> Answer:
        size = max(5, min(100, int(req.arg("max_results", "10"))))
        start = req.arg("start_time")
        fields = set((req.arg("tweet.fields") or "").split(","))
        with self.lock:
            tweets = [t for t in reversed(self.tweets) if not start or _parse(t["created_at"]) >= _parse(start)]
        offset = int(req.arg("pagination_token", "p0")[1:])
        page = tweets[offset:offset + size]
        shown = [{k: v for k, v in t.items() if k in ("id", "text", "edit_history_tweet_ids") or
                  (k in fields and v is not None)} for t in page]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if offset + size < len(tweets):
            meta["next_token"] = f"p{offset + size}"
        return Answer(200, {"data": shown, "meta": meta} if page else {"meta": meta})


# --- Reddit --------------------------------------------------------------------------------------


class HostileReddit(HostilePlatform):
    """Reddit's OAuth API for one script app and our account's comments, newest first, paged with `after`."""

    def __init__(self, *, username: str = "northwind_support") -> None:
        super().__init__()
        self.username = username
        self.comments: list[dict] = []  # ours, oldest first
        self.next_id = 36 ** 6
        self.route("POST", r"/api/v1/access_token", self._token)
        self.route("POST", r"/api/comment", self._create)
        self.route("GET", rf"/user/{username}/comments", self._listing)

    def _add(self, text: str, parent: str, at: datetime) -> dict:
        self.next_id += 1
        cid = _base36(self.next_id)
        link = parent if parent.startswith("t3_") else "t3_abc123"
        c = {"id": cid, "name": f"t1_{cid}", "parent_id": parent, "link_id": link, "author": self.username,
             "body": text, "body_html": f"<div class=\"md\"><p>{text}</p></div>", "created_utc": at.timestamp(),
             "created": at.timestamp(), "subreddit": "northwind", "subreddit_id": "t5_2t5o6", "score": 1,
             "permalink": f"/r/northwind/comments/{link[3:]}/_/{cid}/", "replies": "", "edited": False}
        self.comments.append(c)
        return c

    def add_comments(self, n: int, *, parent: str = "t3_other", text: str = "Sorry about that, we're on it (#{i})",
                     at: datetime | None = None) -> None:
        with self.lock:
            for i in range(n):
                self._add(text.format(i=i), parent, at or self.now())

    def replies_to(self, fullname: str) -> list[dict]:
        return [c for c in self.comments if c["parent_id"] == fullname]

    def _token(self, req: Request, _m) -> Answer:
        return Answer(200, {"access_token": "tok", "token_type": "bearer", "expires_in": 3600, "scope": "*"})

    def _create(self, req: Request, _m) -> Answer:
        form = req.form()
        return self.create(form["text"], lambda: self._add(form["text"], form["thing_id"], self.now()),
                           lambda c: Answer(200, {"json": {"errors": [], "data": {"things": [{"kind": "t1",
                                                                                              "data": c}]}}}))

    def _listing(self, req: Request, _m) -> Answer:
        size = max(1, min(100, int(req.arg("limit", "25"))))  # Reddit serves at most 100 a page
        after = req.arg("after")
        with self.lock:
            items = list(reversed(self.comments))
        start = 0
        if after:
            start = next((i + 1 for i, c in enumerate(items) if c["name"] == after), len(items))
        page = items[start:start + size]
        more = start + size < len(items)
        return Answer(200, {"kind": "Listing", "data": {
            "after": page[-1]["name"] if page and more else None, "before": None, "dist": len(page),
            "children": [{"kind": "t1", "data": c} for c in page]}})


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


# --- a case on each platform, with Hearken configured to answer it there --------------------------


TEAM = """\
team:
  - {name: Alex Admin, email: alex@example.com, role: admin}
  - {name: Morgan Manager, email: morgan@example.com, role: manager}
  - {name: Sam Agent, email: sam@example.com, role: agent}
"""

ENVS = {
    "discourse": {"TEST_DISCOURSE_KEY": "test-key", "TEST_DISCOURSE_USER": "northwind_team"},
    "x": {"X_BEARER_TOKEN": "b", "X_API_KEY": "k", "X_API_SECRET": "s", "X_ACCESS_TOKEN": "t", "X_ACCESS_SECRET": "ts"},
    "reddit": {"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret", "REDDIT_USERNAME": "northwind_support",
               "REDDIT_PASSWORD": "pw"},
}


def config_text(kind: str, base_url: str, replies: dict[str, float]) -> str:
    """A config with one source of `kind` pointing at `base_url`, and these `replies:` settings."""
    source = {
        "discourse": f"  - {{type: discourse, name: community, base_url: '{base_url}', "
                     "api_key_env: TEST_DISCOURSE_KEY, api_username_env: TEST_DISCOURSE_USER}",
        "x": f"  - {{type: x, name: x, base_url: '{base_url}'}}",
        "reddit": f"  - {{type: reddit, name: reddit, subreddits: [northwind], base_url: '{base_url}'}}",
    }[kind]
    settings = ", ".join(f"{k}: {v}" for k, v in replies.items())
    return ("brand: {terms: [Northwind]}\n"
            "accounts: {discourse: [northwind_team], x: [NorthwindHelp], reddit: [northwind_support]}\n"
            f"sources:\n{source}\n{TEAM}replies: {{{settings}}}\n")


@dataclass
class Stage:
    """A hostile platform, a config answering on it, and a case whose post is on it."""

    kind: str
    platform: Any
    store: Any
    cfg: Any
    env: dict[str, str]
    case_id: int

    def held(self, text: str) -> int:
        """How many replies with this text reached the platform."""
        return self.platform.stored.count(text)

    def add_ours(self, n: int, **kw) -> None:
        """`n` more posts by our account, written after the reply under test."""
        {"discourse": lambda: self.platform.add_posts(n, **kw), "x": lambda: self.platform.add_tweets(n, **kw),
         "reddit": lambda: self.platform.add_comments(n, **kw)}[self.kind]()


FAST = {"publish_deadline_seconds": 1, "check_deadline_seconds": 5, "stale_after_seconds": 6,
        "check_grace_seconds": 300, "clock_skew_seconds": 600}


def stage(kind: str, store, tmp_path, **replies: float) -> Stage:
    """Start the `kind` stand-in (stop it with `stage.platform.stop()`) and open a case on it."""
    from desk.config.schema import load_config

    platform = {"discourse": HostileDiscourse, "x": HostileX, "reddit": HostileReddit}[kind]().start()
    path = tmp_path / f"{kind}.yaml"
    path.write_text(config_text(kind, platform.base_url, {**FAST, **replies}))
    cfg = load_config(path)
    return Stage(kind, platform, store, cfg, dict(ENVS[kind]), seed_target(kind, store, cfg, platform.base_url))


def seed_target(kind: str, store, cfg, base_url: str) -> int:
    """Open a case on a post the `kind` platform at `base_url` holds; returns the case id."""
    from tests.e2e_helpers import seed_case, seed_discourse_case

    if kind == "discourse":
        case_id = seed_discourse_case(store, cfg, base_url)
    elif kind == "x":
        case_id = seed_case(store, cfg, platform="x", source="x", external_id="555", thread_id="555",
                            author="@maria_t", body="@NorthwindHelp down again", extra={"username": "maria_t"})
    else:
        case_id = seed_case(store, cfg, platform="reddit", source="reddit", external_id="t3_abc123",
                            thread_id="t3_abc123", body="Northwind is down", extra={"fullname": "t3_abc123"},
                            url="https://www.reddit.com/r/northwind/comments/abc123/")
    return case_id
