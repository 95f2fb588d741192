"""Platform plumbing every platform package shares: bounded HTTP for reading (http.py: httpx;
sessions.py: requests, for PRAW and Tweepy) and the wall-clock deadline of a call (deadline.py)."""
