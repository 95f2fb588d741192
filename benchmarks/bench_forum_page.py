"""Memory and time of reading one big forum page: a post at a time (ours) against the whole-page tree.

    python benchmarks/bench_forum_page.py [--posts 1000 10000 30000] [--baseline-rev e52f47d]

The page is phpBB markup of N short posts (about 180 bytes each, so 30,000 posts are 5.3 MB, inside the
default max_response_bytes of 10 MB), served by a real HTTP server on 127.0.0.1, and read by
`ForumCollector.poll` with the phpbb preset, as the runner calls it:

- ours: the collector of this checkout: collectors/forum/stream.py parses the page, each post read as it
  closes and dropped from the tree;
- baseline: the collector as it was at `--baseline-rev` (git archive of its collectors/ into a temporary
  folder), which parsed the whole page into one BeautifulSoup tree first. Same page, same run.

Each path runs in a fresh process, so its peak resident memory (VmHWM, less what the process held before
the poll) is its own. Prints posts, page size, seconds and the peak growth in MiB for both.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[3], sys.argv[1]]  # the collectors to measure, then this checkout (for tests.hostile)

def hwm():
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))

n = int(sys.argv[2])
posts = "".join(
    f'<div class="post" id="p{i}"><p class="author"><strong>user{i}</strong> '
    f'<time datetime="2026-01-05T10:00:00+00:00">5 Jan</time></p><div class="content">router {i}</div></div>'
    for i in range(n))
page = f"<html><head><title>t</title></head><body><h2 class='topic-title'><a>Routers</a></h2>{posts}</body></html>"
from collectors import TermMatcher, build
from collectors.forum.settings import ForumSource
from tests.hostile import Body, HostileServer

with HostileServer() as srv:
    srv.serve("/t/1", Body(page))
    c = build(ForumSource(type="forum", name="big", pages=[srv.url + "/t/1"], preset="phpbb", respect_robots=False,
                          request_deadline_seconds=600, poll_deadline_seconds=600),
              matcher=TermMatcher(["Northwind"]), own_accounts=[], env={})
    before = hwm()
    started = time.perf_counter()
    read = c.poll(None).reads
    took = time.perf_counter() - started
print(json.dumps({"posts": read, "mb": len(page) / 1e6, "seconds": took, "peak_mib": (hwm() - before) / 1024}))
"""


def run(n: int, collectors_from: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, str(REPO), str(n), str(collectors_from)], cwd=REPO,
                         capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, nargs="+", default=[1000, 10000, 30000])
    ap.add_argument("--baseline-rev", default="e52f47d", help="the commit whose forum collector is the baseline")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline_rev, "collectors"],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(old, filter="data")
        print(f"baseline: collectors/ at {args.baseline_rev}")
        print(f"{'posts':>7} {'page MB':>8} | {'ours s':>7} {'ours MiB':>9} | {'baseline s':>10} {'baseline MiB':>12}")
        for n in args.posts:
            ours, base = run(n, REPO), run(n, Path(old))
            report(n, ours, base)


def report(n: int, ours: dict, base: dict) -> None:
    assert ours["posts"] == base["posts"] == n, (ours, base)
    print(f"{n:>7} {ours['mb']:>8.1f} | {ours['seconds']:>7.1f} {ours['peak_mib']:>9.0f} | "
          f"{base['seconds']:>10.1f} {base['peak_mib']:>12.0f}")


if __name__ == "__main__":
    main()
