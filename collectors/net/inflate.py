"""Compressed answers inflated a bounded piece at a time: a byte cap counts what the body becomes, not what it was.

httpx inflates each network read whole, once per Content-Encoding layer, before anyone looks at the size:
a few kB of `gzip, gzip` on the wire become a GiB in memory in one call, and a byte cap counted on the
wire never sees it. `Inflater` undoes the layers itself, with zlib's `max_length`, so no call ever holds
more than `PIECE` bytes of any layer's output, and it counts what comes out against a limit.

`inflating(response, limit)` puts it in front of an httpx response (collectors/net/deadline.py's transport
does that for every request Hearken makes with httpx, reading and posting): the body then streams out
inflated in pieces, with the Content-Encoding header gone, so httpx does not inflate it again.

Only gzip and deflate (Hearken's Accept-Encoding) and identity are undone; a body in another encoding
(br, zstd, compress) was not asked for and is refused with its name. Requests (PRAW, Tweepy) inflates
through urllib3, which bounds each piece itself since 2.6.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx

PIECE = 64 * 1024  # the most any layer hands on at once
ACCEPT_ENCODING = "gzip, deflate"  # what Hearken asks for: what Inflater can undo


class InflateError(httpx.DecodingError):
    """The body could not be inflated (corrupt data, an encoding we did not ask for)."""


class CapExceeded(InflateError):
    """The inflated body is longer than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer inflates to more than {limit:,} bytes; stopped inflating it")
        self.limit = limit


class _Layer:
    """One gzip or deflate layer: a zlib stream, and the next one when members follow each other."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        # gzip: a gzip or zlib header (wbits 32 + 15 detects either); deflate: zlib-wrapped, or raw as some servers send it
        self._wbits = zlib.MAX_WBITS | 32 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._z = zlib.decompressobj(self._wbits)
        self._started = False

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """The inflated output of the next `data`, in pieces of at most PIECE bytes."""
        while True:
            if self._z.eof:  # the stream ended: another gzip member may follow; anything else is ignored, as httpx does
                data = self._z.unused_data + data
                if not (self._wbits != zlib.MAX_WBITS and data[:2] == b"\x1f\x8b"):
                    return
                self._z = zlib.decompressobj(self._wbits)
            try:
                out = self._z.decompress(data, PIECE)
            except zlib.error as exc:
                if self.encoding == "deflate" and not self._started:  # a raw deflate stream without its zlib wrapper
                    self._wbits, self._started = -zlib.MAX_WBITS, True
                    self._z = zlib.decompressobj(self._wbits)
                    continue
                raise InflateError(f"the {self.encoding} body is corrupt: {exc}") from exc
            self._started = True
            if out:
                yield out
            if self._z.eof:
                data = b""
                continue
            data = self._z.unconsumed_tail
            if not data and len(out) < PIECE:  # a full piece may leave output pending inside zlib: ask again
                return

    def flush(self) -> bytes:
        try:
            return self._z.flush()  # all input was fed and drained above: only what zlib buffered remains
        except zlib.error as exc:
            raise InflateError(f"the {self.encoding} body is corrupt: {exc}") from exc


class Inflater:
    """Undoes a body's Content-Encoding layers (`encodings` as the header lists them, first applied first),
    never past `limit` inflated bytes (None: no limit, the reader counts)."""

    def __init__(self, encodings: list[str], limit: int | None) -> None:
        layers = [e for e in (x.strip().lower() for x in encodings) if e and e != "identity"]
        for e in layers:
            if e not in ("gzip", "x-gzip", "deflate"):
                raise InflateError(f"the answer is in Content-Encoding {e!r}, which Hearken did not ask for "
                                   f"(it asks for {ACCEPT_ENCODING})")
        self._layers = [_Layer(e) for e in reversed(layers)]  # the last applied is undone first
        self.limit = limit
        self.inflated = 0

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self._layers):
            if data:
                self.inflated += len(data)
                if self.limit is not None and self.inflated > self.limit:
                    raise CapExceeded(self.limit)
                yield data
            return
        for piece in self._layers[i].pieces(data):
            yield from self._through(i + 1, piece)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The inflated pieces of the next bytes of the body."""
        yield from self._through(0, data)

    def finish(self) -> Iterator[bytes]:
        """What is left once the body has ended."""
        for i, layer in enumerate(self._layers):
            yield from self._through(i + 1, layer.flush())


def encodings_of(headers: httpx.Headers) -> list[str]:
    return [e for value in headers.get_list("content-encoding") for e in value.split(",") if e.strip()]


class _InflatingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, inflater: Inflater) -> None:
        self._inner = inner
        self._inflater = inflater

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            yield from self._inflater.feed(chunk)
        yield from self._inflater.finish()

    def close(self) -> None:
        self._inner.close()


def inflating(response: httpx.Response, limit: int | None) -> httpx.Response:
    """`response` (fresh from a transport, its body not read) with its body inflated by an `Inflater`."""
    encodings = encodings_of(response.headers)
    if not any(e.strip().lower() != "identity" for e in encodings):
        return response
    inflater = Inflater(encodings, limit)
    assert isinstance(response.stream, httpx.SyncByteStream)
    response.stream = _InflatingStream(response.stream, inflater)
    del response.headers["content-encoding"]  # the body is plain now: httpx must not inflate it again
    response.headers.pop("content-length", None)
    return response
