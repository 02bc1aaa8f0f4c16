"""Taking a connected socket over from a Python server (design brief §4).

A plain ``os.dup()`` is not enough: servers later call ``shutdown(SHUT_WR)`` on their
socket object, and shutdown acts on the socket itself, not on one descriptor, so it
would end the stream the engine now writes. Two safe ways:

- ``detach``: the caller gives its ``socket.socket`` up. The engine gets a duplicate;
  the object is detached and its descriptor closed (closing one of two descriptors
  does nothing to the connection).
- ``swap`` (the dup2-swap): for servers that keep using their object after the
  handler returns (``http.server``, werkzeug, gunicorn). The engine gets a duplicate,
  then the server's descriptor number is pointed (``dup2``) at a placeholder: one end
  of a local socket pair whose other end, the *sink*, has shut its writing side. The
  server's later reads see end-of-file at once, its writes go to the sink and are
  discarded, and its ``shutdown``/``close`` act on the placeholder, never on the
  client's connection. Sinks are closed once the server closed its end (checked
  without a thread, on each later hand-over and at exit). The placeholder is made
  before the engine gets the connection (:func:`prepare_swap`): when that fails (at the
  descriptor limit, say) the engine never saw the client and the socket is unchanged.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import List

try:  # ssl is optional in some Python builds
    import ssl

    _SSL_SOCKET: tuple = (ssl.SSLSocket,)
except ImportError:  # pragma: no cover
    _SSL_SOCKET = ()

__all__ = ["check_socket", "release_detach", "prepare_swap", "reap_sinks", "Swap"]

_sinks: List[socket.socket] = []
_sinks_lock = threading.Lock()


def check_socket(sock: object) -> None:
    """Refuses, with a message naming the problem, Python objects that cannot be handed
    over. The socket itself (a connected TCP socket) is checked by the engine."""
    if _SSL_SOCKET and isinstance(sock, _SSL_SOCKET):
        raise TypeError(
            "cannot hand over an ssl.SSLSocket: the engine writes plain TCP and TLS state "
            "lives in Python; use stream mode (sse_engine.integrations.asgi, or "
            "Engine.connect_stream) or terminate TLS in a proxy"
        )
    if not isinstance(sock, socket.socket):
        raise TypeError(
            "connect() takes a socket.socket or an int file descriptor, "
            f"not {type(sock).__name__}"
        )
    if sock.fileno() == -1:
        raise ValueError("cannot hand over a closed socket")


def release_detach(sock: socket.socket) -> None:
    """The caller gave the object up: detach it and close its descriptor.

    The engine holds its own duplicate, so closing this one sends nothing to the peer.
    """
    fd = sock.detach()
    os.close(fd)


class Swap:
    """The dup2-swap, prepared: everything that can fail (the placeholder socket pair,
    which takes two descriptors) is done by :func:`prepare_swap` before the engine gets
    the connection; :meth:`release` then only points the server's descriptor at the
    placeholder (``dup2`` onto a descriptor that is open needs no new one)."""

    __slots__ = ("placeholder", "sink")

    def __init__(self, placeholder: socket.socket, sink: socket.socket) -> None:
        self.placeholder = placeholder
        self.sink = sink

    def release(self, sock: socket.socket) -> None:
        """The server keeps its object: point its descriptor at the placeholder."""
        orig = sock.fileno()
        try:
            os.dup2(self.placeholder.fileno(), orig, inheritable=os.get_inheritable(orig))
        except BaseException:
            self.sink.close()
            raise
        finally:
            self.placeholder.close()
        with _sinks_lock:
            _reap_locked()
            _sinks.append(self.sink)

    def cancel(self) -> None:
        """The hand-over did not happen: close the placeholder and the sink."""
        self.placeholder.close()
        self.sink.close()


def prepare_swap(sock: socket.socket) -> Swap:
    """Makes the placeholder for :meth:`Swap.release` (may raise ``OSError``, e.g.
    ``EMFILE`` at the descriptor limit; then nothing was changed)."""
    placeholder, sink = socket.socketpair()
    try:
        # The server reads end-of-file at once; what it writes lands in the sink.
        sink.shutdown(socket.SHUT_WR)
        sink.setblocking(False)
        # Same blocking mode as the server's object expects of its descriptor.
        placeholder.settimeout(sock.gettimeout())
    except BaseException:
        placeholder.close()
        sink.close()
        raise
    return Swap(placeholder, sink)


def _reap_locked() -> None:
    keep = []
    for sink in _sinks:
        try:
            while True:
                if not sink.recv(65536):
                    sink.close()  # the server closed its placeholder
                    break
        except BlockingIOError:
            keep.append(sink)  # still open on the server's side
        except OSError:
            sink.close()
    _sinks[:] = keep


def reap_sinks(close_all: bool = False) -> int:
    """Closes the sinks whose placeholder the server closed (all of them with
    ``close_all``). Returns how many are still open."""
    with _sinks_lock:
        _reap_locked()
        if close_all:
            for sink in _sinks:
                sink.close()
            _sinks.clear()
        return len(_sinks)
