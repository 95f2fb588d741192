"""Platform plumbing every platform package shares.

- reading: http.py (bounded requests with httpx: client, `fetch`/`get`, robots.txt), sessions.py (the same
  limits for requests, so PRAW and Tweepy); what an answer means is responses.py's (status codes to
  collector errors, Retry-After, JSON, ETag validators), where a redirect may go origins.py's, a page's
  charset charset.py's, compressed bodies inflated within the byte cap inflate.py's;
- the wall-clock deadline of a request, a poll and a platform call (posting a reply): deadline.py, with
  its httpx transport; requests_adapter.py makes it real in requests.
"""
