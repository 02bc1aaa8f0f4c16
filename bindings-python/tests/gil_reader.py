"""Reader for test_runtime.test_fan_out_while_another_thread_holds_the_gil.

Connects N clients with tiny receive buffers, prints READY, waits for "go" on stdin,
then reads every client for a fixed time and prints one JSON line: when each client had
its expected bytes, and how many heartbeat comments arrived."""

import json
import selectors
import socket
import sys
import time

port, clients, expected, seconds = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
socks = []
for _ in range(clients):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    socks.append(s)
print("READY", flush=True)
assert sys.stdin.readline().strip() == "go"
go = time.time()
sel = selectors.DefaultSelector()
got = {}
done_at = {}
heartbeats = {}
tails = {}
for i, s in enumerate(socks):
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, i)
    got[i] = 0
    heartbeats[i] = 0
    tails[i] = b""
end = go + seconds
while time.time() < end:
    for key, _ in sel.select(timeout=0.01):
        i = key.data
        data = key.fileobj.recv(65536)
        if not data:
            sel.unregister(key.fileobj)
            continue
        # Counted across read boundaries: the previous read's last bytes (too few to
        # hold a whole pattern) go first. A heartbeat is the comment frame ":\n\n".
        got[i] += (tails[i] + data).count(b"data: ")
        heartbeats[i] += (tails[i][-2:] + data).count(b":\n\n")
        tails[i] = (tails[i] + data)[-5:]
        if got[i] >= expected and i not in done_at:
            done_at[i] = time.time()
print(json.dumps({"go": go, "got": got, "done_at": done_at, "heartbeats": heartbeats}), flush=True)
