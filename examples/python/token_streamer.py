#!/usr/bin/env python3
"""The token streamer of examples/README.md: an LLM-like SSE server whose streams can move to
another node, KV cache and all. Byte for byte the Java demo's twin. One thread per client.
Besides, a WebSocket stream and a large download (byte_streams.py), which move the same way,
and an upload read as fast as the client sends it.

    python3 token_streamer.py --listen 0.0.0.0:8080 [--agent /run/ferry/handoff.sock]
        [--agent-ca ca.crt]
"""

import argparse
import hashlib
import re
import select
import socket
import struct
import sys
import threading
import time
from urllib.parse import unquote_plus

import byte_streams
import ferry_handoff

WORDS = ("ferry moves live streams across nodes while clients keep reading tokens from spot"
         " instances that vanish with two minutes notice and nothing is lost or repeated on"
         " the way to its target").split()
MAX_TOKENS, MAX_HEAD = 1_000_000, 8192
HEADER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
          b"Connection: close\r\n\r\n")
DONE = b"data: [DONE]\n\n"
MAGIC = b"FTS1"
TOKEN = b"T"  # a token record: 'T', then u32 the index of a token written since the snapshot

_say_lock = threading.Lock()
_name = "token-streamer-py"


def say(line):
    with _say_lock:  # whole lines, even from many threads: the tests read stdout
        sys.stdout.write(f"{_name}: {line}\n")
        sys.stdout.flush()


def fmt(conn):
    return f"{conn[1]}:{conn[2]} <- {conn[3]}:{conn[4]}"


class StreamState:
    """One stream's progress and simulated KV cache: what the model would need to go on."""

    offers = True  # offered ahead of the freeze: the KV cache is worth pre-copying

    def __init__(self, prompt, tokens, rate, kv, next_index=0):
        self.prompt, self.tokens, self.rate = prompt, tokens, rate
        self.kv, self.next = kv, next_index

    @classmethod
    def start(cls, prompt, tokens, rate, kv_bytes):
        seed = 2166136261
        for b in prompt.encode():
            seed = ((seed ^ b) * 16777619) & 0xFFFFFFFF
        # kv[j] depends on j only through j mod 256, so one period repeated is the whole cache
        # (a per-byte Python loop over 2.4 MB would delay the first token by a second).
        period = bytes((j * 131 + (seed >> (8 * (j & 3)))) & 0xFF for j in range(256))
        return cls(prompt, tokens, rate, bytearray((period * (kv_bytes // 256 + 1))[:kv_bytes]))

    def finished(self):
        return self.next >= self.tokens

    def next_event(self):
        """Generates the next token, which reads and changes the cache; returns its event."""
        i = self.next
        word = WORDS[self.kv[i * 4099 % len(self.kv)] % 32]
        self.advance()
        return f'data: {{"index":{i},"token":"{word}"}}\n\n'.encode()

    def last(self):
        return DONE

    def pace(self):
        return 1 / self.rate

    def after_last(self, sock):
        pass

    def advance(self):
        """What token next does to the cache, without its event."""
        i = self.next
        pos = i * 4099 % len(self.kv)
        self.kv[pos] = (self.kv[pos] + i + 1) & 0xFF
        self.next += 1

    @staticmethod
    def token_records(start, end):
        """What a state encoded at token start needs appended to be the state at token end."""
        return b"".join(TOKEN + struct.pack(">I", i) for i in range(start, end))

    def encode(self):
        p = self.prompt.encode()
        return b"".join([MAGIC, struct.pack(">IIIH", self.tokens, self.next, self.rate, len(p)),
                         p, struct.pack(">Q", len(self.kv)), self.kv,
                         hashlib.sha256(self.kv).digest()])

    @classmethod
    def decode(cls, blob):
        """Reads a handed-over state and checks it whole; ValueError names what is wrong."""
        off = 0

        def take(n):
            nonlocal off
            if off + n > len(blob):
                raise ValueError(f"state is cut short at {len(blob)} bytes")
            off += n
            return blob[off - n:off]

        if take(4) != MAGIC:
            raise ValueError("state does not start with FTS1: not a token stream")
        # Signed, as Java reads them: both servers then judge a blob alike.
        tokens, next_index, rate, p_len = struct.unpack(">iiiH", take(14))
        prompt = take(p_len).decode(errors="replace")
        k = struct.unpack(">q", take(8))[0]
        records = len(blob) - off - 32 - k
        if k < 1 or records < 0 or records % 5:
            raise ValueError(f"KV cache length {k} does not match the state's size {len(blob)}")
        kv = bytearray(take(k))
        if take(32) != hashlib.sha256(kv).digest():
            raise ValueError("KV cache checksum (SHA-256) does not match")
        if tokens < 1 or next_index < 0 or next_index > tokens or rate < 1:
            raise ValueError(
                f"progress is impossible: next {next_index} of {tokens} at rate {rate}")
        state = cls(prompt, tokens, rate, kv, next_index)
        while off < len(blob):
            tag, index = take(1), struct.unpack(">i", take(4))[0]
            if tag != TOKEN or index != state.next or index >= tokens:
                raise ValueError(
                    f"token record for {index} does not follow token {state.next - 1}")
            state.advance()
        return state

    def __str__(self):
        return f"token {self.next} of {self.tokens}, KV cache {len(self.kv)} bytes"


class _Handover:
    """What a stream and an upload share for the agent's freezes: a worker that works in steps of
    its own (a write, a read) and can be paused between two of them to hand its connection over,
    then is either released (the connection lives elsewhere) or kept (the agent gave it back)."""

    what = "stream"

    def __init__(self, state, sock, conn):
        self.state, self.sock, self.conn = state, sock, conn
        self.cond = threading.Condition()
        self.busy = self.paused = self.gone = self.over = False

    def begin_step(self):
        """Waits while paused; False once the connection is handed over, else the step may go."""
        with self.cond:
            while self.paused and not self.gone:
                self.cond.wait()
            if self.gone:
                return False
            self.busy = True
            return True

    def end_step(self, over):
        """over: the connection ended or broke, so a freeze waiting on this step must not hand
        it over."""
        with self.cond:
            self.busy, self.over = False, over
            self.cond.notify_all()

    def close(self):
        if not self.gone:  # once released, the descriptor is a blank socket: just close
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client left first
        self.sock.close()

    def pause(self):
        """Waits out the step in progress, stops the worker: the state to hand over, or why not."""
        with self.cond:
            if self.paused:
                return f"this {self.what} is already being handed over"
            self.paused = True
            while self.busy:
                self.cond.wait()
            if self.over:
                self.paused = False
                return f"the {self.what} has just ended"
            return self.handed_over()

    def handed_over(self):
        return self.state.encode()

    def released(self):
        with self.cond:
            self.gone = True
            self.cond.notify_all()

    def kept(self, why):
        with self.cond:
            self.given_back()
            self.paused = False
            self.cond.notify_all()
        say(f"keeping {fmt(self.conn)}, the agent gave it back: {why}")

    def given_back(self):
        pass


class Stream(_Handover):
    """Writes one stream's events at its rate; can be paused between two events to hand it over.
    The state (a StreamState, or one of byte_streams) says what each event is and how fast."""

    def __init__(self, state, sock, conn):
        super().__init__(state, sock, conn)
        self.offer = None  # where each token is offered ahead of the freeze
        self.offered_next = 0  # the state offered so far is this stream's at this token

    def run(self):
        """Streams to the end (True), or until the stream moves away (False)."""
        try:
            while True:
                if not self.begin_step():
                    return False
                last, ok = self.state.finished(), False
                try:
                    self.sock.sendall(self.state.last() if last else self.state.next_event())
                    ok = True
                    offer = self.offer  # one append a token, before a pause can begin
                    if not last and offer is not None and offer.append(
                            StreamState.token_records(self.offered_next, self.state.next)):
                        self.offered_next = self.state.next
                finally:
                    self.end_step(last or not ok)
                if last:
                    self.state.after_last(self.sock)
                    return True
                time.sleep(self.state.pace())
        finally:
            self.close()

    def handed_over(self):
        if self.offer is not None and self.offer.is_open():  # only what was not offered
            return StreamState.token_records(self.offered_next, self.state.next)
        return self.state.encode()

    def offer_to(self, offer):
        """A snapshot now, between two events, then one append a token. The writer waits while
        the snapshot goes out, so that no token's append can come before it."""
        with self.cond:
            while self.busy:
                self.cond.wait()
            if not self.state.offers:
                offer.decline("a state of a few bytes: it goes whole at the freeze")
            elif self.gone or self.over or self.state.finished():
                offer.decline("the stream is ending")
            elif offer.snapshot(self.state.encode()):
                self.offer, self.offered_next = offer, self.state.next

    def given_back(self):
        self.offer = None  # closed with the freeze; a later move asks again


class Upload(_Handover):
    """Reads one upload (a byte_streams.UploadState) as fast as the client sends it, then answers
    its count and CRC-32; can be paused between two reads to hand it over."""

    what = "upload"
    WAIT = 0.002  # the longest a freeze waits for a read in progress to see whether data came

    def run(self):
        """Reads to the end and answers (True), or until the upload moves away (False)."""
        try:
            while not self.state.finished():
                if not self.begin_step():
                    return False
                ok = False
                try:
                    # A short wait, not a blocking read: a freeze must find the reader between
                    # two reads, and a client may be held for a while.
                    if select.select([self.sock], [], [], self.WAIT)[0]:
                        data = self.sock.recv(1 << 20)
                        if not data:
                            raise OSError(f"the client left at {self.state}")
                        self.state.take(data)
                    ok = True
                finally:
                    # Whole: never handed over from here, the answer goes out.
                    self.end_step(not ok or self.state.finished())
            self.sock.sendall(self.state.answer())
            return True
        finally:
            self.close()

    def offer_to(self, offer):
        offer.decline("a state of a few bytes: it goes whole at the freeze")


class Rejected(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


def read_request(sock):
    """What a GET asks for: ("stream", prompt, tokens), ("ws", name, messages, size, the 101
    answer) or ("file", name, length); or a PUT: ("upload", name, length), its body to follow.
    None if the client left before its request."""
    head, matched = bytearray(), 0
    while matched < 4:
        b = sock.recv(1)  # byte by byte: whatever follows the head is not ours to read
        if not b:
            return None
        head += b
        matched = matched + 1 if b == b"\r\n\r\n"[matched:matched + 1] else int(b == b"\r")
        if len(head) > MAX_HEAD:
            raise Rejected(431, f"request head is over {MAX_HEAD} bytes")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].rstrip(" ").split(" ")
    if len(parts) != 3 or parts[0] not in ("GET", "PUT"):
        raise Rejected(400, "expected 'GET /v1/stream?prompt=...&tokens=N HTTP/1.1'")
    path, has_query, query = parts[1].partition("?")
    if (parts[0] == "PUT") != (path == "/v1/upload"):
        raise Rejected(400, f"{parts[0]} {path}: only /v1/upload takes a PUT, and only a PUT")
    defaults = {"/v1/stream": {"prompt": "hello", "tokens": "100"},
                "/v1/ws": {"name": "ferry", "messages": "100", "size": "65536"},
                "/v1/file": {"name": "ferry", "bytes": "67108864"},
                "/v1/upload": {"name": "ferry"}}
    if path not in defaults:
        raise Rejected(404, f"no such path {path}; try /v1/stream?prompt=hello&tokens=100")
    params = defaults[path]
    for pair in query.split("&") if has_query else []:
        key, _, value = pair.partition("=")
        if re.search(r"%(?![0-9A-Fa-f]{2})", value):
            raise Rejected(400, f"'{key}' is not properly URL-encoded")
        if key in params:
            params[key] = unquote_plus(value)
    if path == "/v1/ws":
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        try:
            answer = byte_streams.ws_handshake(headers)
        except ValueError as e:
            raise Rejected(400, str(e)) from None
        return ("ws", params["name"], number(params, "messages", byte_streams.MAX_MESSAGES),
                number(params, "size", byte_streams.MAX_SIZE), answer)
    if path == "/v1/file":
        return "file", params["name"], number(params, "bytes", byte_streams.MAX_FILE)
    if path == "/v1/upload":
        headers = dict(line.lower().partition(":")[::2] for line in lines[1:] if ":" in line)
        length = headers.get("content-length", "").strip()
        if not re.fullmatch(r"[0-9]{1,15}", length) or not 1 <= int(length) <= byte_streams.MAX_FILE:
            raise Rejected(400, f"an upload needs a Content-Length of 1..{byte_streams.MAX_FILE}")
        return "upload", params["name"], int(length)
    return "stream", params["prompt"], number(params, "tokens", MAX_TOKENS)


def number(params, key, most):
    text = params[key]
    # Any Unicode decimal digits, as Java's Integer.parseInt takes them; no spaces or "_".
    n = int(text) if re.fullmatch(r"[+-]?\d+", text) else -1
    if not 1 <= n <= most:
        raise Rejected(400, f"{key} must be an integer 1..{most}, got '{text}'")
    return n


def reject(sock, status, reason):
    body = (reason + "\n").encode()
    text = {404: "Not Found", 431: "Request Header Fields Too Large"}.get(status, "Bad Request")
    sock.sendall(f"HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


class Server:
    def __init__(self, args):
        self.args = args
        self.streams = {}  # connection tuple -> Stream, for the agent's freezes

    def serve(self):
        host, _, port = self.args.listen.rpartition(":")
        host, port = host.strip("[]"), int(port)
        family = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0][0]
        # Dual-stack like Java's "::"; connection_of() maps IPv4-mapped addresses back to IPv4.
        server = socket.create_server((host, port), family=family, backlog=128,
                                      dualstack_ipv6=family == socket.AF_INET6)
        if self.args.agent:
            try:
                self.session = ferry_handoff.connect(self.args.agent, self.args.name, [port],
                                                     self.freeze, self.takeover, self.precopy,
                                                     agent_ca=self.args.agent_ca)
            except (OSError, ImportError, ValueError) as e:  # refused, or no way to check it
                sys.exit(f"{_name}: no session with the Ferry agent at {self.args.agent}: {e}")
        say(f"listening on {f'[{host}]' if ':' in host else host}:{port}"
            + (f", movable through {self.args.agent}" if self.args.agent else ""))
        while True:
            sock, _ = server.accept()
            threading.Thread(target=self.client, args=(sock,), daemon=True).start()

    def client(self, sock):
        try:
            try:
                request = read_request(sock)
            except Rejected as e:
                reject(sock, e.status, str(e))
                request = None
            if request is None:
                sock.close()
                return
            self.run(self.start(request, sock), sock)
        except OSError as e:
            say(f"a client's request failed: {e}")
            sock.close()

    def start(self, request, sock):
        """Answers the request's head; the state of the stream that follows it."""
        kind, name, *more = request
        a = self.args
        if kind == "ws":
            messages, size, answer = more
            sock.sendall(answer)
            return byte_streams.WebSocketState(name, messages, size, a.byte_rate, a.chunk)
        if kind == "file":
            sock.sendall(byte_streams.download_head(more[0]))
            return byte_streams.DownloadState(name, more[0], a.byte_rate, a.chunk)
        if kind == "upload":
            return byte_streams.UploadState(name, more[0])
        sock.sendall(HEADER)
        return StreamState.start(name, more[0], a.rate, a.kv_bytes)

    def run(self, state, sock):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # an event a packet
            conn = ferry_handoff.connection_of(sock)  # the kernel's view, as FREEZE names it
        except OSError as e:
            say(f"a stream could not start: {e}")
            sock.close()
            return
        runner = Upload if isinstance(state, byte_streams.UploadState) else Stream
        stream = self.streams[conn] = runner(state, sock, conn)
        try:
            if stream.run():
                say(f"stream {fmt(conn)} done")
            else:
                say(f"stream {fmt(conn)} moved away at {stream.state}")
        except OSError as e:
            say(f"stream {fmt(conn)} ended: {e}")
        finally:
            if self.streams.get(conn) is stream:
                del self.streams[conn]

    def freeze(self, conn):
        stream = self.streams.get(conn)
        if stream is None:
            return f"no stream on {fmt(conn)} (finished, or not begun)"
        state = stream.pause()
        if isinstance(state, str):
            return state
        # Nothing said here: the freeze holds the client (run says where the stream left, after).
        return stream.sock, state, stream.released, stream.kept

    def precopy(self, conn, offer):
        stream = self.streams.get(conn)
        if stream is None:
            offer.decline(f"no stream on {fmt(conn)} (finished, or not begun)")
        else:
            stream.offer_to(offer)

    def takeover(self, conn, blob):
        try:
            state = byte_streams.decode(blob) or StreamState.decode(blob)
        except ValueError as e:
            say(f"declining {fmt(conn)}: {e}")
            return str(e)
        say(f"taking over {fmt(conn)} at {state}, checksum verified")
        return lambda sock: self.run(state, sock)


def main():
    global _name
    ap = argparse.ArgumentParser(description="The Ferry demo token streamer, in Python.")
    ap.add_argument("--listen", required=True, metavar="HOST:PORT")
    ap.add_argument("--agent", metavar="PATH", help="the agent's handoff socket; none: no moves")
    ap.add_argument("--agent-ca", metavar="FILE",
                    help="the cluster CA that issued the agents' certificates; with it, the "
                    "streamer makes the agent prove who it is before registering (protocol "
                    "version 3)")
    ap.add_argument("--name", default="token-streamer-py")
    ap.add_argument("--rate", type=int, default=50, metavar="TOKENS_PER_SECOND")
    ap.add_argument("--kv-bytes", type=int, default=2_400_000, metavar="N")
    ap.add_argument("--byte-rate", type=int, default=4 << 20, metavar="BYTES_PER_SECOND",
                    help="how fast WebSocket streams and downloads are written")
    ap.add_argument("--chunk", type=int, default=16384, metavar="BYTES",
                    help="WebSocket streams and downloads are written this many bytes at a time")
    args = ap.parse_args()
    if not 1 <= args.rate <= 1_000_000 or args.kv_bytes < 1:
        ap.error("--rate must be 1..1000000 and --kv-bytes at least 1")
    if not 1 <= args.byte_rate < 1 << 32 or not 1 <= args.chunk < 1 << 32:
        ap.error("--byte-rate and --chunk must be 1..4294967295")
    if args.agent_ca and not args.agent:
        ap.error("--agent-ca checks the agent given with --agent: give both, or neither")
    listen = re.fullmatch(r".+:([0-9]{1,5})", args.listen)
    if not listen or not 0 < int(listen.group(1)) < 65536:
        ap.error(f"--listen must be HOST:PORT, got {args.listen}")
    _name = args.name
    try:
        Server(args).serve()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
