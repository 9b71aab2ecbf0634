#!/usr/bin/env python3
"""CLIENTS concurrent clients each POST a body FACTOR times over the server's limit; prints how
the server answered. Used by bench/rss.sh.

    python3 bench/overlimit.py PORT LIMIT declared|chunked [CLIENTS=100] [FACTOR=10]

declared: `Content-Length: FACTOR*LIMIT`, then the body; the layer should answer 413 from the
head. chunked: no length, `Transfer-Encoding: chunked`, 16 KiB chunks; the layer reads up to the
limit, then answers 413. Every client gives up after 20 s.
"""

import socket
import sys
import threading

port, limit, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
clients = int(sys.argv[4]) if len(sys.argv) > 4 else 100
factor = int(sys.argv[5]) if len(sys.argv) > 5 else 10
size = limit * factor
CHUNK = b"x" * 16384
start = threading.Barrier(clients)
answers = {}
lock = threading.Lock()


def client():
    status = "no answer"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        head = f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-VideoNest-Signature: {'0' * 64}\r\n"
        if mode == "declared":
            head += f"Content-Length: {size}\r\n\r\n"
        else:
            head += "Transfer-Encoding: chunked\r\n\r\n"
        start.wait()
        try:
            s.sendall(head.encode())
            sent = 0
            while sent < size:
                if mode == "declared":
                    s.sendall(CHUNK)
                else:
                    s.sendall(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
                sent += len(CHUNK)
            if mode == "chunked":
                s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed after answering
        try:
            line = s.makefile("rb").readline().decode(errors="replace").strip()
            status = line.split(" ")[1] if line else "closed"
        except OSError as e:
            status = type(e).__name__
        s.close()
    except OSError as e:
        status = type(e).__name__
    with lock:
        answers[status] = answers.get(status, 0) + 1


threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{mode}: {clients} clients x {size} B (limit {limit} B): answers {dict(sorted(answers.items()))}")
