"""The application end of the Ferry handoff protocol (docs/handoff-protocol.md), version 3.

Standard library only, unless agent_ca is given: checking the agent's proof needs the
cryptography package (Debian: python3-cryptography), imported only then.

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

When the agent goes away (a restart, an upgrade), the session is opened again in the background
(0.1 s later, then twice as long each time, up to 2 s) and every port registered again; close()
ends it for good.

agent_ca, optional (protocol version 3): the PEM file of the cluster CA that issues the Ferry
agents' certificates (their ca.crt). With it, before registering anything, the agent must prove
that it is the node's Ferry agent: sign a fresh nonce, and this pod's network namespace, with
the key of a certificate that CA issued to ferry-node-agent. If it does not (or speaks an older
version, which cannot), connect() closes the session and raises ProofRefused, a ConnectionError
whose message says which check failed and what to do. Without agent_ca nothing is asked.

On the target, an agent of version 2 may hand a connection's state ahead of its takeover
(PRESTATE); this module keeps it and gives takeover(conn, state) the whole state, put back
together, exactly as if it had all come with the takeover.

conn is (family, local_ip, local_port, remote_ip, remote_port). An IPv4-mapped IPv6
address is given as IPv4 (family 4), so that the agent's tuples and connection_of()'s
compare equal whether the server listens on IPv4 or dual-stack.
"""

import ipaddress
import os
import re
import socket
import struct
import sys
import threading
import types
from datetime import datetime, timezone

HELLO, WELCOME, REGISTER, REGISTERED, FREEZE, FROZEN, BLOB, DECLINED = range(1, 9)
TAKEOVER, TAKEN, RESUMED, RELEASED, RETURNED, ERROR = 9, 10, 11, 12, 13, 15
PRECOPY, STATE, PRECOPY_STOP = 16, 17, 18  # version 2
PRESTATE, PRESTATE_DROP, TAKEOVER_APPEND = 19, 20, 21  # version 2, target side
PROVE, PROOF = 22, 23  # version 3
MAX_STATE = 1 << 40  # the largest whole state kept for one connection
SNAPSHOT, APPEND = 1, 2  # STATE kinds
VERSION = 3  # the highest we speak; an older agent is greeted again with 2, then 1
ERR_MALFORMED, ERR_UNKNOWN_TYPE, ERR_TOO_LARGE, ERR_UNKNOWN_REQUEST = 1, 2, 3, 5
ERR_CANNOT_PROVE = 11  # PROVE to an agent that holds no key
NONCE_BYTES = 32  # PROVE's nonce
HELLO_TIMEOUT = 5.0  # seconds an agent has to answer each message of the greeting
PROOF_CONTEXT = b"ferry-handoff-proof-v3\x00"  # what the agent signs begins with this
AGENT_NAME = "ferry-node-agent"  # the common name of every agent's certificate
MAX_CHAIN = 8  # the most certificates a PROOF carries
MAX_FRAME = 1 << 20  # type byte + payload; the 4-byte length is not counted
MAX_NAME = 255  # the longest name HELLO may carry, in UTF-8 bytes


class AgentError(ConnectionError):
    """The agent answered with ERROR."""

    def __init__(self, message, code):
        super().__init__(f"{message} (error {code})")
        self.code = code


class _OlderAgent(ConnectionError):
    """The agent refused our HELLO's version with an ERROR: it predates that version."""


class ProofRefused(ConnectionError):
    """The agent did not prove that it is the node's Ferry agent (version 3). check names what
    failed: "version", "cannot-prove", "unreadable", "chain", "name", "namespace", "signature"."""

    def __init__(self, check, message):
        super().__init__(message)
        self.check = check


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


def _cryptography():
    """The parts of the cryptography package that check a proof: imported only for agent_ca,
    so that everything else stays standard library."""
    try:
        from cryptography import exceptions, x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    except ImportError as e:
        raise ImportError(
            f"checking the agent's proof (agent_ca) needs the cryptography package ({e}): "
            f"install python3-cryptography (or pip install cryptography)") from None
    return types.SimpleNamespace(x509=x509, hashes=hashes, ec=ec, padding=padding, rsa=rsa,
                                 InvalidSignature=exceptions.InvalidSignature,
                                 UnsupportedAlgorithm=exceptions.UnsupportedAlgorithm)


_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)


def _valid_from_to(cert):
    """A certificate's validity in aware UTC: cryptography 42 and later have the *_utc
    properties (and warn on the naive ones); 38, Debian 12's, has only the naive UTC ones."""
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return (cert.not_valid_before.replace(tzinfo=timezone.utc),
            cert.not_valid_after.replace(tzinfo=timezone.utc))


class _Trust:
    """The cluster CA from agent_ca, and the check of an agent's PROOF against it. Written for
    cryptography 38 (Debian 12) as well as today's, so no verify_directly_issued_by and no
    load_pem_x509_certificates: each signature is checked with the issuer's key by hand."""

    def __init__(self, ca_file):
        self.c = _cryptography()
        self.ca_file = ca_file
        with open(ca_file, "rb") as f:  # OSError, with the path, if it cannot be read
            pem = f.read()
        try:
            self.cas = [self.c.x509.load_pem_x509_certificate(block)
                        for block in _PEM_CERTIFICATE.findall(pem)]
        except ValueError as e:
            raise ValueError(
                f"agent_ca {ca_file} holds a certificate that cannot be read: {e}") from None
        if not self.cas:
            raise ValueError(f"agent_ca {ca_file} holds no PEM certificate: give the cluster "
                             f"CA's ca.crt, the CA that issues the Ferry agents' certificates")

    def check(self, proof, nonce, path):
        """Returns if the proof holds; otherwise raises ProofRefused naming the check, in the
        order of docs/handoff-protocol.md: chain, name, namespace, signature."""
        netns, signature, chain = self._read(proof, path)
        leaf = chain[0]
        fault = self._chain_fault(chain, datetime.now(timezone.utc))
        if fault is not None:
            raise ProofRefused("chain", (
                f"the agent at {path} did not prove it is the Ferry agent: its certificate chain "
                f"does not lead to the CA in {self.ca_file} ({fault}); give agent_ca the CA that "
                f"issues the Ferry agents' certificates, and the agent a current certificate"))
        names = [a.value for a in
                 leaf.subject.get_attributes_for_oid(self.c.x509.NameOID.COMMON_NAME)]
        if names != [AGENT_NAME]:
            raise ProofRefused("name", (
                f"the agent at {path} did not prove it is the Ferry agent: its certificate's "
                f"common name is {' '.join(names) or 'missing'}, not {AGENT_NAME}; it is another "
                f"component's certificate: make sure {path} is the Ferry agent's socket"))
        ours = os.stat("/proc/self/ns/net").st_ino
        if netns != ours:
            raise ProofRefused("namespace", (
                f"the agent at {path} did not prove it is the Ferry agent: its proof is for "
                f"network namespace {netns}, and this process is in {ours}, so something in "
                f"another pod relays the session; mount the node's own handoff socket"))
        fault = self._signature_fault(leaf, signature,
                                      PROOF_CONTEXT + nonce + struct.pack(">Q", netns))
        if fault is not None:
            raise ProofRefused("signature", (
                f"the agent at {path} did not prove it is the Ferry agent: {fault}; make sure "
                f"{path} is the Ferry agent's socket"))

    def _read(self, p, path):
        """PROOF's payload: (namespace inode, signature, certificates, the agent's first)."""
        try:
            netns, n = struct.unpack_from(">QH", p)
            off = 10 + n
            signature, count = p[10:off], p[off]  # IndexError if the payload ends early
            if not 1 <= count <= MAX_CHAIN:
                raise ValueError(f"{count} certificates, not 1 to {MAX_CHAIN}")
            off += 1
            chain = []
            for _ in range(count):
                (n,) = struct.unpack_from(">H", p, off)
                if off + 2 + n > len(p):
                    raise ValueError("it ends inside a certificate")
                chain.append(self.c.x509.load_der_x509_certificate(p[off + 2:off + 2 + n]))
                off += 2 + n
        except (struct.error, IndexError, ValueError) as e:
            raise ProofRefused("unreadable", (
                f"the agent at {path} sent a PROOF that cannot be read ({e}); "
                f"make sure {path} is the Ferry agent's socket")) from None
        return netns, signature, chain

    def _chain_fault(self, chain, now):
        """Why chain[0] does not lead to one of our CAs, through CA certificates of the chain,
        each valid now; None if it does. Our CAs are trusted as given: their own dates and
        constraints are not checked, as in RFC 5280's path validation (and Java's PKIX)."""
        cert, on_path = chain[0], [chain[0]]
        for below in range(len(chain)):  # below: CA certificates between cert and the leaf
            valid_from, valid_to = _valid_from_to(cert)
            if not valid_from <= now <= valid_to:
                return (f"{_named(cert)} is valid from {valid_from:%Y-%m-%d %H:%M} to "
                        f"{valid_to:%Y-%m-%d %H:%M} UTC, not now")
            if any(ca.subject == cert.issuer and self._signed_by(cert, ca) for ca in self.cas):
                return None
            # Never a certificate already on the path: a CA that names itself as ours (a
            # self-signed one, say) would otherwise be its own issuer, round and round.
            issuer = next((i for i in chain[1:] if all(i is not p for p in on_path)
                           and i.subject == cert.issuer and self._may_issue(i, below)
                           and self._signed_by(cert, i)), None)
            if issuer is None and cert.issuer == cert.subject:
                return f"{_named(cert)} is a CA of its own, not that one"
            if issuer is None:
                return (f"{_named(cert)}, issued by {cert.issuer.rfc4514_string()}, is signed "
                        f"neither by that CA nor by a CA certificate the agent sent")
            cert = issuer
            on_path.append(cert)
        return f"no path through the {len(chain)} certificates the agent sent"

    def _may_issue(self, cert, below):
        """Whether cert, sent by the agent, may have issued the one beneath it: a CA certificate
        whose path length allows `below` CAs under it. Without this, any leaf the cluster CA
        issued (the operator's, say) could sign a certificate named ferry-node-agent."""
        x509 = self.c.x509
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except (x509.ExtensionNotFound, ValueError):
            return False
        if not constraints.ca or (constraints.path_length is not None
                                  and constraints.path_length < below):
            return False
        try:
            return cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
        except x509.ExtensionNotFound:
            return True  # no key usage: any use is allowed

    def _signed_by(self, cert, issuer):
        """Whether issuer's key made cert's signature."""
        c = self.c
        try:
            key, tbs = issuer.public_key(), cert.tbs_certificate_bytes
            if isinstance(key, c.ec.EllipticCurvePublicKey):
                key.verify(cert.signature, tbs, c.ec.ECDSA(cert.signature_hash_algorithm))
            elif isinstance(key, c.rsa.RSAPublicKey):
                key.verify(cert.signature, tbs, c.padding.PKCS1v15(),
                           cert.signature_hash_algorithm)
            else:
                key.verify(cert.signature, tbs)  # Ed25519, Ed448: the hash is the algorithm's
            return True
        except (c.InvalidSignature, c.UnsupportedAlgorithm, TypeError, ValueError):
            return False

    def _signature_fault(self, leaf, signature, signed):
        """Why signature is not the leaf's key's over signed; None if it is. An EC key signs
        SHA256withECDSA, an RSA key SHA256withRSA (PKCS #1 v1.5), as the Java agent does."""
        c = self.c
        try:
            key = leaf.public_key()
            if isinstance(key, c.ec.EllipticCurvePublicKey):
                key.verify(signature, signed, c.ec.ECDSA(c.hashes.SHA256()))
            elif isinstance(key, c.rsa.RSAPublicKey):
                key.verify(signature, signed, c.padding.PKCS1v15(), c.hashes.SHA256())
            else:
                return f"its certificate's key is {type(key).__name__}, which signs no proof"
            return None
        except (c.InvalidSignature, c.UnsupportedAlgorithm, ValueError):
            return ("its signature does not verify with its certificate's key over this "
                    "session's nonce and namespace (a replayed or forged proof)")


def _named(cert):
    return cert.subject.rfc4514_string() or "a certificate without a subject"


def connect(path, name, ports, freeze, takeover, precopy=None, agent_ca=None):
    """Greets the agent at path and registers ports; raises ConnectionError if refused. With
    agent_ca, the agent must first prove who it is (ProofRefused, a ConnectionError, if not)."""
    return Session(path, name, ports, freeze, takeover, precopy, agent_ca)


class Session:
    def __init__(self, path, name, ports, freeze, takeover, precopy=None, agent_ca=None):
        if len(name.encode()) > MAX_NAME:
            raise ValueError(
                f"name is {len(name.encode())} bytes of UTF-8; the agent takes at most "
                f"{MAX_NAME}: give connect() a shorter one")
        # Before connecting: a missing package or a bad CA file is ours to fix, not the agent's.
        trust = _Trust(agent_ca) if agent_ca is not None else None
        self._freeze, self._takeover, self._precopy = freeze, takeover, precopy
        self._offers = {}  # pre-copy request id -> _Offer
        self._offer_of = {}  # connection -> _Offer
        self._write_lock = threading.RLock()  # frames from several threads must not interleave
        self._given = {}  # request id -> (fd, family, on_released, on_returned)
        self._arriving = {}  # request id -> _Arrival
        self._ahead = {}  # connection -> _Ahead, the state handed ahead of its takeover
        self._ahead_by_id = {}  # PRESTATE request id -> _Ahead
        self._unwanted = {}  # request id -> BLOB bytes still to drop (declined on arrival)
        self._ports = set(ports)
        self._closed = False
        self._closing = threading.Event()  # wakes a reopening session's pause
        self._path, self._name, self._trust = path, name, trust
        self._sock = None
        self._open()
        threading.Thread(target=self._read_loop, name="ferry-agent", daemon=True).start()

    def _open(self):
        """Greets the agent and registers every port, on a new socket. Other threads' frames
        wait for the greeting (the write lock is held), so none lands inside it."""
        with self._write_lock:
            for hello in range(VERSION, 0, -1):
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                # An agent that accepts and never answers (hung, or not Ferry) must not hold us.
                self._sock.settimeout(HELLO_TIMEOUT)
                try:
                    self._sock.connect(self._path)
                    self._handshake(self._path, self._name, sorted(self._ports), hello,
                                    self._trust)
                    self._sock.settimeout(None)
                    return
                except _OlderAgent:
                    self._sock.close()  # an older agent refused HELLO 3 (or 2): greet it with less
                except socket.timeout:
                    self._sock.close()
                    raise ConnectionError(f"the agent at {self._path} did not answer within "
                                          f"{HELLO_TIMEOUT} s") from None
                except BaseException:
                    self._sock.close()
                    raise

    def _reopen(self):
        """The agent went away (a restart, an upgrade): opens the session again, every port
        registered again, so that a restarted agent can still hand this server the connections
        it moves (after a commit, the ones it was moving when it stopped). Tries again after
        0.1 s, doubling up to 2 s, until it succeeds or close() is called."""
        pause = 0.1
        while not self._closed:
            try:
                self._open()
                if self._closed:  # close() came while we greeted
                    self._sock.close()
                    return False
                _log(f"session with the agent at {self._path} open again")
                return True
            except ProofRefused as e:
                _log(f"not opening the session again: {e}")
            except (OSError, AgentError):
                pass  # not back yet
            self._closing.wait(pause)
            pause = min(pause * 2, 2.0)
        return False

    def close(self):
        """Ends the session: the ports are unregistered, connections stay where they are."""
        self._closed = True
        self._closing.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader, which cleans up
        except OSError:
            pass  # already ended

    def _handshake(self, path, name, ports, hello, trust):
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
        if trust is not None:
            self._prove(path, trust)  # before REGISTER: an impostor must never learn a port
        self._send(REGISTER, struct.pack(f">H{len(ports)}H", len(ports), *ports))
        p = self._expect(REGISTERED)
        registered = struct.unpack_from(f">{struct.unpack_from('>H', p)[0]}H", p, 2)
        if set(ports) - set(registered):
            raise ConnectionError(f"asked for ports {ports}, the agent registered {registered}")

    def _prove(self, path, trust):
        """PROVE and its PROOF: the agent signs our fresh nonce, so the proof is of this session,
        and names the network namespace it files us under, so it is of this pod."""
        if self.version < 3:
            raise ProofRefused("version", (
                f"the agent at {path} speaks version {self.version}, which cannot prove it is "
                f"the Ferry agent; upgrade the agent or drop agent_ca"))
        nonce = os.urandom(NONCE_BYTES)
        self._send(PROVE, nonce)
        try:
            proof = self._expect(PROOF)
        except AgentError as e:
            if e.code != ERR_CANNOT_PROVE:
                raise
            raise ProofRefused("cannot-prove", (
                f"the agent at {path} holds no key to prove who it is ({e}); start it with "
                f"its TLS certificate and key, or drop agent_ca")) from None
        trust.check(proof, nonce, path)

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
        while True:
            self._read_session()
            if self._closed or not self._reopen():
                return

    def _read_session(self):
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
            _log(f"session with the agent ended ({why}); connections stay where they are, and "
                 f"the session is opened again as soon as the agent is back")
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
