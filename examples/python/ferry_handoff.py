"""The application end of the Ferry handoff protocol (docs/handoff-protocol.md), stdlib only.

    session = ferry_handoff.connect("/run/ferry/handoff.sock", "my-server", [8080],
                                    freeze=my_freeze, takeover=my_takeover)

freeze(conn): the agent wants one of our connections. Stop writing to it, then return
    (socket_object, state_bytes, on_released(), on_returned(reason))
or a str, the reason to keep it. After RELEASED the socket object is harmless: close it.
takeover(conn, state): the agent offers a connection from another node. Return
    live(socket_object), run once the socket may be used, or a str, the reason to decline.
precopy(conn, offer), optional (protocol version 2): the agent is about to move conn and asks
    for its state ahead of the freeze. Call offer.snapshot(bytes) now and offer.append(bytes)
    whenever the state changes, from any thread. If offer.is_open() when freeze(conn) comes,
    return only what was not offered yet; otherwise the whole state. Without precopy, the
    offer is declined and freeze always hands over the whole state, as in version 1.
Every callback runs on a thread of its own, so it may block without stalling the session.

On the target, an agent of version 2 may hand a connection's state ahead of its takeover
(PRESTATE); this module keeps it and gives takeover(conn, state) the whole state, put back
together, exactly as if it had all come with the takeover.

conn is (family, local_ip, local_port, remote_ip, remote_port). An IPv4-mapped IPv6
address is given as IPv4 (family 4), so that the agent's tuples and connection_of()'s
compare equal whether the server listens on IPv4 or dual-stack.
"""

import ipaddress
import os
import socket
import struct
import sys
import threading

HELLO, WELCOME, REGISTER, REGISTERED, FREEZE, FROZEN, BLOB, DECLINED = range(1, 9)
TAKEOVER, TAKEN, RESUMED, RELEASED, RETURNED, ERROR = 9, 10, 11, 12, 13, 15
PRECOPY, STATE, PRECOPY_STOP = 16, 17, 18  # version 2
PRESTATE, PRESTATE_DROP, TAKEOVER_APPEND = 19, 20, 21  # version 2, target side
MAX_STATE = 1 << 40  # the largest whole state kept for one connection
SNAPSHOT, APPEND = 1, 2  # STATE kinds
VERSION = 2  # the highest we speak; an agent of version 1 is greeted again with 1
ERR_MALFORMED, ERR_UNKNOWN_TYPE, ERR_TOO_LARGE, ERR_UNKNOWN_REQUEST = 1, 2, 3, 5
MAX_FRAME = 1 << 20  # type byte + payload; the 4-byte length is not counted
MAX_NAME = 255  # the longest name HELLO may carry, in UTF-8 bytes


class AgentError(ConnectionError):
    """The agent answered with ERROR."""

    def __init__(self, message, code):
        super().__init__(f"{message} (error {code})")
        self.code = code


class _OlderAgent(ConnectionError):
    """The agent refused our HELLO's version with an ERROR: it predates version 2."""


class ProtocolError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def connection_of(sock):
    """A connected TCP socket's tuple, as the agent names it."""
    local, remote = sock.getsockname(), sock.getpeername()
    return _connection(local[0], local[1], remote[0], remote[1])


def _connection(local_ip, local_port, remote_ip, remote_port):
    local, remote = _ip(local_ip), _ip(remote_ip)
    return (local.version, str(local), local_port, str(remote), remote_port)


def _ip(text):
    ip = ipaddress.ip_address(text.split("%")[0])
    return getattr(ip, "ipv4_mapped", None) or ip


def _read_connection(p, off):
    family = p[off]
    size = {4: 4, 6: 16}.get(family)
    if size is None or len(p) < off + 1 + 2 * (size + 2):
        raise ProtocolError(ERR_MALFORMED, f"bad connection (family {family})")
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    ends = []
    for start in (off + 1, off + 3 + size):
        ends += [socket.inet_ntop(af, p[start:start + size]),
                 struct.unpack_from(">H", p, start + size)[0]]
    return _connection(*ends)


def _log(message):
    print(f"ferry_handoff: {message}", file=sys.stderr, flush=True)


def _spawn(fn, *args):
    def run():
        try:
            fn(*args)
        except Exception as e:  # a daemon thread's traceback helps nobody; say what failed
            _log(f"{getattr(fn, '__name__', fn)} failed: {e!r}")
    threading.Thread(target=run, daemon=True).start()


class _Arrival:
    """A connection being handed to us: socket (in repair mode), then state, then go-ahead.
    With a prefix (the state handed ahead), state is only the tail that follows it."""

    def __init__(self, conn, fd, length, prefix=None):
        self.conn, self.fd, self.length, self.prefix = conn, fd, length, prefix
        self.state = bytearray()
        self.live = None

    def whole(self):
        if self.prefix is None:
            return bytes(self.state)
        prefix, self.prefix = self.prefix, None
        prefix += self.state
        return bytes(prefix)


class _Ahead:
    """State the agent handed ahead of a connection's takeover (PRESTATE): the last snapshot
    and the appends after it; remaining is what the last part still has to bring."""

    def __init__(self, rid, conn):
        self.rid, self.conn = rid, conn
        self.state = bytearray()
        self.remaining = 0


class _Offer:
    """A connection's state offered ahead of its freeze: each part is STATE + BLOB frames,
    sent under this offer's lock so that parts, and the freeze's answer, never interleave."""

    def __init__(self, session, rid, conn):
        self._session, self.rid, self.conn = session, rid, conn
        self.lock = threading.RLock()
        self.open = True

    def snapshot(self, state):
        return self._part(SNAPSHOT, state)

    def append(self, change):
        return self._part(APPEND, change)

    def _part(self, kind, data):
        with self.lock:
            if not self.open:
                return False
            try:
                self._session._send(STATE, struct.pack(">QBQ", self.rid, kind, len(data)))
                self._session._send_blob(self.rid, data)
                return True
            except OSError as e:  # the session is gone, and every offer with it
                self.open = False
                _log(f"offering the state of {self.conn} failed: {e}")
                return False

    def is_open(self):
        with self.lock:
            return self.open

    def decline(self, reason):
        with self.lock:
            if not self.open:
                return
            self.open = False
            self._session._offers.pop(self.rid, None)
            if self._session._offer_of.get(self.conn) is self:
                del self._session._offer_of[self.conn]
            try:
                self._session._decline(self.rid, reason)
            except OSError:
                pass  # the session is ending anyway

    def close(self):
        with self.lock:
            self.open = False


def connect(path, name, ports, freeze, takeover, precopy=None):
    """Greets the agent at path and registers ports; raises ConnectionError if refused."""
    return Session(path, name, ports, freeze, takeover, precopy)


class Session:
    def __init__(self, path, name, ports, freeze, takeover, precopy=None):
        if len(name.encode()) > MAX_NAME:
            raise ValueError(
                f"name is {len(name.encode())} bytes of UTF-8; the agent takes at most "
                f"{MAX_NAME}: give connect() a shorter one")
        self._freeze, self._takeover, self._precopy = freeze, takeover, precopy
        self._offers = {}  # pre-copy request id -> _Offer
        self._offer_of = {}  # connection -> _Offer
        self._write_lock = threading.Lock()  # frames from several threads must not interleave
        self._given = {}  # request id -> (fd, family, on_released, on_returned)
        self._arriving = {}  # request id -> _Arrival
        self._ahead = {}  # connection -> _Ahead, the state handed ahead of its takeover
        self._ahead_by_id = {}  # PRESTATE request id -> _Ahead
        self._unwanted = {}  # request id -> BLOB bytes still to drop (declined on arrival)
        self._ports = set(ports)
        self._closed = False
        for hello in (VERSION, 1):
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._sock.connect(path)
                self._handshake(name, list(ports), hello)
                break
            except _OlderAgent:
                self._sock.close()  # an agent of version 1 refused HELLO 2: greet it with 1
            except BaseException:
                self._sock.close()
                raise
        threading.Thread(target=self._read_loop, name="ferry-agent", daemon=True).start()

    def close(self):
        """Ends the session: the ports are unregistered, connections stay where they are."""
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader, which cleans up
        except OSError:
            pass  # already ended

    def _handshake(self, name, ports, hello):
        self._send(HELLO, struct.pack(">H", hello) + name.encode())
        try:
            welcome = self._expect(WELCOME)
        except AgentError as e:
            if hello > 1:
                raise _OlderAgent(str(e)) from None
            raise
        version, agent_max = struct.unpack_from(">HI", welcome)
        if not 1 <= version <= hello:
            raise ConnectionError(f"the agent answered HELLO {hello} with version {version}")
        self.version = version
        self._chunk = min(MAX_FRAME, agent_max) - 9  # BLOB's type byte and request id
        self._send(REGISTER, struct.pack(f">H{len(ports)}H", len(ports), *ports))
        p = self._expect(REGISTERED)
        registered = struct.unpack_from(f">{struct.unpack_from('>H', p)[0]}H", p, 2)
        if set(ports) - set(registered):
            raise ConnectionError(f"asked for ports {ports}, the agent registered {registered}")

    def _expect(self, wanted):
        frame = self._read_frame()
        if frame is None:
            raise ConnectionError("the agent closed the session")
        typ, p, fd = frame
        if fd >= 0:
            os.close(fd)
        if typ == ERROR:
            code = struct.unpack_from(">H", p)[0]
            raise AgentError(p[2:].decode(errors="replace"), code)
        if typ != wanted:
            raise ConnectionError(f"expected message type {wanted}, the agent sent {typ}")
        return p

    # Frames.

    def _send(self, typ, payload=b"", fd=-1):
        frame = memoryview(struct.pack(">IB", 1 + len(payload), typ) + payload)
        with self._write_lock:
            sent = socket.send_fds(self._sock, [frame], [fd]) if fd >= 0 else 0
            self._sock.sendall(frame[sent:])

    def _read_frame(self):
        """(type, payload, fd or -1), or None at the end. A descriptor belongs to the frame
        whose bytes it arrived with."""
        fds = []
        try:
            head = self._read_exactly(4, fds)
            if head is None:
                return None
            (n,) = struct.unpack(">I", head)
            if not 1 <= n <= MAX_FRAME:
                code = ERR_TOO_LARGE if n else ERR_MALFORMED
                raise ProtocolError(code, f"frame length {n} is outside 1..{MAX_FRAME}")
            body = self._read_exactly(n, fds)
            if body is None:
                raise ProtocolError(ERR_MALFORMED, "stream ended inside a frame")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        for extra in fds[1:]:  # one descriptor per frame; more are not ours to keep
            os.close(extra)
        return body[0], body[1:], fds[0] if fds else -1

    def _read_exactly(self, n, fds):
        buf = bytearray()
        while len(buf) < n:
            data, got, _, _ = socket.recv_fds(self._sock, n - len(buf), 1, socket.MSG_CMSG_CLOEXEC)
            fds += got
            if not data:
                if buf:
                    raise ProtocolError(ERR_MALFORMED, "stream ended inside a frame")
                return None
            buf += data
        return bytes(buf)

    def _error(self, code, message):
        try:
            self._send(ERROR, struct.pack(">H", code) + message.encode())
        except OSError:
            pass  # the session is ending anyway

    def _send_blob(self, rid, data):
        data = memoryview(data)
        for off in range(0, len(data), self._chunk):
            self._send(BLOB, struct.pack(">Q", rid) + data[off:off + self._chunk])

    def _decline(self, rid, reason):
        self._send(DECLINED, struct.pack(">Q", rid) + reason.encode()[:4096])

    # The agent's requests.

    def _read_loop(self):
        why = "the agent closed the session"
        try:
            while True:
                frame = self._read_frame()
                if frame is None:
                    break
                try:
                    self._handle(*frame)
                except ProtocolError as e:  # a request that makes no sense; the session goes on
                    _log(f"the agent sent something unexpected: {e}")
                    self._error(e.code, str(e))
        except ProtocolError as e:  # framing is broken: nothing after it can be trusted
            why = str(e)
            self._error(e.code, why)
        except OSError as e:
            why = str(e)
        finally:
            self._end(why)

    def _handle(self, typ, p, fd):
        if fd >= 0 and typ not in (TAKEOVER, TAKEOVER_APPEND):
            os.close(fd)
            fd = -1
        try:
            self._dispatch(typ, p, fd)
        except (struct.error, IndexError):
            raise ProtocolError(ERR_MALFORMED, f"message type {typ} is too short") from None

    def _dispatch(self, typ, p, fd):
        if typ == ERROR:
            code = struct.unpack_from(">H", p)[0]
            _log(f"the agent reports error {code}: {p[2:].decode(errors='replace')}")
        elif typ == FREEZE:
            rid = struct.unpack_from(">Q", p)[0]
            conn = _read_connection(p, 8)
            offer = self._offer_of.pop(conn, None)  # the answer to FREEZE ends any pre-copy
            if offer is not None:
                self._offers.pop(offer.rid, None)
            _spawn(self._answer_freeze, rid, conn, offer)
        elif typ == PRECOPY:
            rid = struct.unpack_from(">Q", p)[0]
            conn = _read_connection(p, 8)
            offer = self._offers[rid] = _Offer(self, rid, conn)
            before = self._offer_of.get(conn)
            self._offer_of[conn] = offer
            if before is not None:
                self._offers.pop(before.rid, None)
                before.close()
            _spawn(self._answer_precopy, offer)
        elif typ == PRECOPY_STOP:
            offer = self._offers.pop(struct.unpack_from(">Q", p)[0], None)
            if offer is not None:
                if self._offer_of.get(offer.conn) is offer:
                    del self._offer_of[offer.conn]
                offer.close()
        elif typ in (RELEASED, RETURNED):
            rid = struct.unpack_from(">Q", p)[0]
            given = self._given.pop(rid, None)
            if given is None and typ == RELEASED:
                # A takeover the agent gave up before RESUMED (the migration rolled back): the
                # socket never goes live; still in repair mode, closing it tells the client nothing.
                void = self._arriving.pop(rid, None)
                if void is not None:
                    os.close(void.fd)
                    return
            if given is None:
                raise ProtocolError(ERR_UNKNOWN_REQUEST, f"no handover {rid} is waiting")
            app_fd, family, on_released, on_returned = given
            if typ == RETURNED:
                _spawn(on_returned, p[8:].decode(errors="replace"))
                return
            # The connection lives elsewhere. An unconnected socket takes its place under the
            # app's descriptor, so nothing the app does with its socket object (close, shutdown)
            # can send a FIN or RST to the client.
            blank = socket.socket(family, socket.SOCK_STREAM)
            os.dup2(blank.fileno(), app_fd, inheritable=False)
            blank.close()
            _spawn(on_released)
        elif typ in (TAKEOVER, TAKEOVER_APPEND):
            self._arrive(typ, p, fd)
        elif typ == PRESTATE:
            self._prestate(p)
        elif typ == PRESTATE_DROP:
            rid = struct.unpack_from(">Q", p)[0]
            ahead = self._ahead.get(_read_connection(p, 8))
            if ahead is not None and ahead.rid == rid:
                self._forget(ahead)
        elif typ == BLOB:
            rid = struct.unpack_from(">Q", p)[0]
            ahead = self._ahead_by_id.get(rid)
            if ahead is not None:
                if len(p) - 8 > ahead.remaining:
                    self._forget(ahead)
                    raise ProtocolError(ERR_TOO_LARGE, f"BLOB {rid} runs past its PRESTATE")
                ahead.state += p[8:]
                ahead.remaining -= len(p) - 8
                return
            if rid in self._unwanted:
                left = self._unwanted[rid] - (len(p) - 8)
                if left > 0:
                    self._unwanted[rid] = left
                else:
                    del self._unwanted[rid]
                return
            a = self._arriving.get(rid)
            if a is None or len(a.state) + len(p) - 8 > a.length:
                raise ProtocolError(ERR_UNKNOWN_REQUEST, f"BLOB {rid} was not expected")
            a.state += p[8:]
            if len(a.state) == a.length:
                _spawn(self._answer_takeover, rid, a)
        elif typ == RESUMED:
            rid = struct.unpack_from(">Q", p)[0]
            a = self._arriving.get(rid)
            if a is None or a.live is None:
                raise ProtocolError(ERR_UNKNOWN_REQUEST, f"RESUMED {rid} was not expected")
            del self._arriving[rid]
            sock = socket.socket(fileno=a.fd)  # not before: until RESUMED it is in repair mode
            sock.setblocking(True)
            _spawn(a.live, sock)
        else:
            raise ProtocolError(ERR_UNKNOWN_TYPE, f"unexpected message type {typ}")

    def _prestate(self, p):
        """PRESTATE: part of a connection's state, ahead of its takeover. A snapshot replaces
        what is held; an append must follow the same prestate, whole. What cannot be kept is
        declined and forgotten: the agent then sends the whole state at TAKEOVER."""
        rid, kind, length = struct.unpack_from(">QBQ", p)
        conn = _read_connection(p, 17)
        held = self._ahead.get(conn)
        refused = None
        if kind == SNAPSHOT:
            if held is not None:
                self._forget(held)
            held = _Ahead(rid, conn)
        elif kind != APPEND:
            refused = f"PRESTATE {rid} of unknown kind {kind}"
        elif held is None or held.rid != rid or held.remaining:
            refused = f"no whole prestate {rid} of {conn} is held here to append to"
        if refused is None and conn[2] not in self._ports:
            refused = f"port {conn[2]} is not registered here"
        if refused is None and len(held.state) + length > MAX_STATE:
            refused = f"a state of {len(held.state) + length} bytes is more than is kept here"
        if refused is not None:
            if held is not None:
                self._forget(held)
            if length:
                self._unwanted[rid] = self._unwanted.get(rid, 0) + length
            self._decline(rid, refused)
            return
        held.remaining = length
        self._ahead[conn] = held
        self._ahead_by_id[rid] = held

    def _forget(self, ahead):
        self._ahead_by_id.pop(ahead.rid, None)
        if self._ahead.get(ahead.conn) is ahead:
            del self._ahead[ahead.conn]

    def _arrive(self, typ, p, fd):
        """TAKEOVER (the whole state follows) or TAKEOVER_APPEND (the tail of the state handed
        ahead follows). Either ends what is held for the connection; a TAKEOVER_APPEND without
        the very prestate it names, whole, is declined: the state is never guessed."""
        appends = typ == TAKEOVER_APPEND
        try:
            if appends:
                rid, ahead_id, length = struct.unpack_from(">QQQ", p)
            else:
                (rid, length), ahead_id = struct.unpack_from(">QQ", p), None
            conn = _read_connection(p, 24 if appends else 16)
            if fd < 0:
                raise ProtocolError(ERR_MALFORMED, f"TAKEOVER {rid} came without a socket")
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        held = self._ahead.get(conn)
        if held is not None:
            self._forget(held)
        if appends and (held is None or held.rid != ahead_id or held.remaining):
            os.close(fd)  # still in repair mode: closing it tells the client nothing
            if length:
                self._unwanted[rid] = length
            self._decline(rid, f"no whole state {ahead_id} of {conn} was handed ahead here")
            return
        prefix = held.state if appends else None
        arrival = self._arriving[rid] = _Arrival(conn, fd, length, prefix)
        if length == 0:
            _spawn(self._answer_takeover, rid, arrival)

    def _answer_precopy(self, offer):
        if self._precopy is None:
            offer.decline("this server hands its whole state over at the freeze")
            return
        try:
            self._precopy(offer.conn, offer)
        except Exception as e:
            offer.decline(f"the server failed to offer the state of {offer.conn}: {e!r}")

    def _answer_freeze(self, rid, conn, offer=None):
        try:
            answer = self._freeze(conn)
        except Exception as e:
            answer = f"the server failed to freeze {conn}: {e!r}"
        if offer is None:
            self._send_answer(rid, answer)
            return
        # Not held while freeze() ran (it may wait for a writer that is offering a part); held
        # from its return to the end of the answer, so that no part slips in between.
        with offer.lock:
            offer.open = False
            self._send_answer(rid, answer)

    def _send_answer(self, rid, answer):
        if isinstance(answer, str):
            self._decline(rid, answer)
            return
        sock, state, on_released, on_returned = answer
        # Known before FROZEN goes out: RELEASED or RETURNED may follow at once.
        self._given[rid] = (sock.fileno(), sock.family, on_released, on_returned)
        try:
            self._send(FROZEN, struct.pack(">QQ", rid, len(state)), sock.fileno())
            self._send_blob(rid, state)
        except OSError as e:  # the session is gone, so is any chance of a RELEASED
            if self._given.pop(rid, None) is not None:
                on_returned(f"the handover could not be sent: {e}")

    def _answer_takeover(self, rid, a):
        try:
            answer = self._takeover(a.conn, a.whole())
        except Exception as e:
            answer = f"the server failed to take over {a.conn}: {e!r}"
        if callable(answer):
            a.live = answer  # before TAKEN: RESUMED may follow at once
            self._send(TAKEN, struct.pack(">Q", rid))
            return
        if self._arriving.pop(rid, None) is not None:
            os.close(a.fd)  # still in repair mode: closing it tells the client nothing
        self._decline(rid, str(answer))

    def _end(self, why):
        """The agent went away: handovers in doubt stay ours, arrivals are dropped."""
        if not self._closed:
            _log(f"session with the agent ended ({why}); connections stay but cannot move")
        for rid in list(self._given):  # pop() decides the race with the answering threads
            given = self._given.pop(rid, None)
            if given is not None:
                _spawn(given[3], "the agent's session ended")
        for offer in list(self._offers.values()):
            offer.close()
        self._ahead.clear()
        self._ahead_by_id.clear()
        self._unwanted.clear()
        for rid in list(self._arriving):
            arrival = self._arriving.pop(rid, None)
            if arrival is not None:
                os.close(arrival.fd)
        self._sock.close()
