"""Run by test_fault.py with a build of the package that has the test-only cargo feature
fault-injection (on PYTHONPATH): injected panics must reach Python as exceptions, never
take the interpreter down, and a dead reactor must fail the engine closed."""

import queue
import socket
import sys

import sse_engine
from sse_engine import _native

NEXT_CALL, NEXT_COMMAND = 1, 2


def main() -> None:
    # A panic in a call: PyO3 raises PanicException (a BaseException); the engine goes on.
    engine = sse_engine.Engine(heartbeat=None)
    _native.arm_fault(NEXT_CALL)
    try:
        engine.broadcast("news", "x")
    except BaseException as e:  # noqa: B036 - PanicException is a BaseException
        assert type(e).__name__ == "PanicException", repr(e)
    else:
        raise AssertionError("the injected panic did not surface")
    assert engine.broadcast("news", "y") == 0
    engine.close()

    # A panic on the reactor: the client is reported "error", later calls fail closed.
    gone: "queue.Queue[tuple]" = queue.Queue()
    engine = sse_engine.Engine(heartbeat=None, on_disconnect=lambda c, r: gone.put((c, r)))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    cid = engine.connect(server)
    _native.arm_fault(NEXT_COMMAND)
    assert engine.send(cid, "boom") is True
    assert gone.get(timeout=10) == (cid, "error")
    client.settimeout(10)
    while client.recv(65536):
        pass
    try:
        engine.broadcast("news", "x")
    except sse_engine.EngineClosedError as e:
        assert "panicked" in str(e), str(e)
    else:
        raise AssertionError("a call on a failed engine did not fail")
    assert engine.stats()["reactor_failures"] == 1
    print("fault host: ok")


if __name__ == "__main__":
    main()
    sys.exit(0)
