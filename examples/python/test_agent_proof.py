"""Checks of ferry_handoff.py's agent proof (protocol version 3) against an agent played frame by
frame, with certificates made here by the cryptography package (python3-cryptography):

    cd examples/python && python3 -m unittest test_agent_proof.py
"""

import os
import queue
import socket
import struct
import sys
import tempfile
import threading
import unittest
from datetime import datetime, timedelta, timezone
from unittest import mock

import ferry_handoff as fh
from test_ferry_handoff import CONN, _conn_bytes  # one encoding of a connection for both

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import NameOID
except ImportError:
    x509 = None

OWN_NETNS = os.stat("/proc/self/ns/net").st_ino


class _Certs:
    """A cluster CA and what it issued, and a rogue CA of the same name with its own agent."""

    def __init__(self):
        self.ca_key, self.ca = self.issue("ferry-cluster-ca", ca=True)
        self.agent_key, self.agent = self.issue("ferry-node-agent", self.ca, self.ca_key)
        self.other_key, self.other = self.issue("ferry-operator", self.ca, self.ca_key)
        # The rogue CA takes the cluster CA's very name: only its signature tells them apart.
        self.rogue_ca_key, self.rogue_ca = self.issue("ferry-cluster-ca", ca=True)
        self.rogue_key, self.rogue = self.issue("ferry-node-agent", self.rogue_ca,
                                                self.rogue_ca_key)
        self.expired_key, self.expired = self.issue("ferry-node-agent", self.ca, self.ca_key,
                                                    days=(-30, -1))
        self.mid_key, self.mid = self.issue("ferry-intermediate", self.ca, self.ca_key, ca=True)
        self.via_mid_key, self.via_mid = self.issue("ferry-node-agent", self.mid, self.mid_key)
        # Signed by the operator's key: its certificate is no CA's, so this one is a forgery.
        self.forged_key, self.forged = self.issue("ferry-node-agent", self.other, self.other_key)
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _, self.rsa = self.issue("ferry-node-agent", self.ca, self.ca_key, key=self.rsa_key)

    @staticmethod
    def issue(cn, issuer=None, issuer_key=None, ca=False, days=(-1, 30), key=None):
        key = key or ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.now(timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(issuer.subject if issuer is not None else name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + timedelta(days=days[0]))
                .not_valid_after(now + timedelta(days=days[1]))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(issuer_key or key, hashes.SHA256()))
        return key, cert


def _proof(nonce, key, chain, netns=OWN_NETNS, signed_nonce=None):
    """PROOF's payload, as the spec has it: key signs the context, a nonce and netns."""
    signed = (b"ferry-handoff-proof-v3" + b"\x00" + (signed_nonce or nonce)
              + struct.pack(">Q", netns))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
    ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    return (struct.pack(">QH", netns, len(signature)) + signature + bytes([len(ders)])
            + b"".join(struct.pack(">H", len(d)) + d for d in ders))


class _Peer:
    """The agent's end of one session."""

    def __init__(self, sock):
        self.sock = sock
        sock.settimeout(10)

    def send(self, typ, payload, fd=-1):
        frame = struct.pack(">IB", 1 + len(payload), typ) + payload
        if fd >= 0:
            socket.send_fds(self.sock, [frame], [fd])
        else:
            self.sock.sendall(frame)

    def read(self):
        """(type, payload), or None if the application closed the session."""
        head = self._exactly(4)
        if head is None:
            return None
        body = self._exactly(struct.unpack(">I", head)[0])
        assert body is not None, "the session ended inside a frame"
        return body[0], body[1:]

    def _exactly(self, n):
        buf = b""
        while len(buf) < n:
            got = self.sock.recv(n - len(buf))
            if not got:
                assert not buf, "the session ended inside a frame"
                return None
            buf += got
        return buf

    def expect(self, typ):
        frame = self.read()
        assert frame is not None, f"expected message type {typ}, the session was closed"
        assert frame[0] == typ, f"expected message type {typ}, got {frame[0]}: {frame[1]!r}"
        return frame[1]

    def hello(self, version):
        """Reads HELLO, which must offer version; answers WELCOME with version."""
        self.assert_hello(version)
        self.send(fh.WELCOME, struct.pack(">HI", version, fh.MAX_FRAME))

    def assert_hello(self, version):
        offered = struct.unpack_from(">H", self.expect(fh.HELLO))[0]
        assert offered == version, f"HELLO offered {offered}, not {version}"

    def refuse_hello(self, version):
        """What an agent older than the offered version does: ERROR 9, and close."""
        self.assert_hello(version)
        self.send(fh.ERROR, struct.pack(">H", 9) + b"protocol version not spoken here")
        self.close()

    def register(self):
        self.send(fh.REGISTERED, self.expect(fh.REGISTER))

    def close(self):
        self.sock.close()


class _Agent:
    """A Unix socket in a temp dir whose sessions the test accepts and plays frame by frame,
    while connect() runs on a thread of its own."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "handoff.sock")
        self.listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listening.bind(self.path)
        self.listening.listen(4)
        self.listening.settimeout(10)
        self.taken = queue.Queue()
        self.peers, self.sessions = [], []

    def connect(self, **kwargs):
        """Starts connect(); outcome() is the session, or what it raised."""
        done = queue.Queue()

        def run():
            try:
                done.put(fh.connect(self.path, "test", [8080], freeze=lambda c: "no",
                                    takeover=self._takeover, **kwargs))
            except BaseException as e:
                done.put(e)
        threading.Thread(target=run, daemon=True).start()
        self._done = done

    def _takeover(self, conn, state):
        self.taken.put(state)
        return lambda sock: sock.close()

    def outcome(self):
        got = self._done.get(timeout=10)
        if isinstance(got, fh.Session):
            self.sessions.append(got)
        return got

    def accept(self):
        peer = _Peer(self.listening.accept()[0])
        self.peers.append(peer)
        return peer

    def close(self):
        for s in self.sessions:
            s.close()
        for p in self.peers:
            p.close()
        self.listening.close()
        self.dir.cleanup()


@unittest.skipIf(x509 is None, "needs the cryptography package: install python3-cryptography")
class ProofTest(unittest.TestCase):
    certs = None

    @classmethod
    def setUpClass(cls):
        if ProofTest.certs is None:
            ProofTest.certs = _Certs()
        cls.ca_dir = tempfile.TemporaryDirectory()
        cls.ca_file = os.path.join(cls.ca_dir.name, "ca.crt")
        with open(cls.ca_file, "wb") as f:
            f.write(cls.certs.ca.public_bytes(serialization.Encoding.PEM))

    @classmethod
    def tearDownClass(cls):
        cls.ca_dir.cleanup()

    def setUp(self):
        self.agent = _Agent()
        self.addCleanup(self.agent.close)

    def proved(self, answer):
        """A session with agent_ca up to the PROOF: answer(nonce) is the agent's reply."""
        self.agent.connect(agent_ca=self.ca_file)
        peer = self.agent.accept()
        peer.hello(3)
        nonce = peer.expect(fh.PROVE)
        self.assertEqual(len(nonce), 32)
        peer.send(fh.PROOF, answer(nonce))
        return peer, nonce

    def assertAccepted(self, peer, version=3):
        peer.register()
        session = self.agent.outcome()
        self.assertIsInstance(session, fh.Session)
        self.assertEqual(session.version, version)
        return session

    def assertRefused(self, peer, check, words):
        """The application closed the session instead of sending REGISTER, and said why."""
        frame = peer.read()
        self.assertIsNone(frame, f"expected the session closed, got message {frame}")
        e = self.agent.outcome()
        self.assertIsInstance(e, fh.ProofRefused)
        self.assertIsInstance(e, ConnectionError)
        self.assertEqual(e.check, check, str(e))
        self.assertIn(words, str(e))
        return e

    def test_a_good_proof_is_accepted_and_the_session_works(self):
        c = self.certs
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.agent_key, [c.agent]))
        self.assertAccepted(peer)
        with socket.socket() as tcp:  # a takeover goes through as in any session
            peer.send(fh.TAKEOVER, struct.pack(">QQ", 7, 5) + _conn_bytes(CONN), tcp.fileno())
        peer.send(fh.BLOB, struct.pack(">Q", 7) + b"state")
        self.assertEqual(struct.unpack(">Q", peer.expect(fh.TAKEN))[0], 7)
        self.assertEqual(self.agent.taken.get(timeout=10), b"state")

    def test_an_rsa_agent_key_and_an_intermediate_ca_are_accepted(self):
        c = self.certs
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.rsa_key, [c.rsa]))
        self.assertAccepted(peer)
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.via_mid_key, [c.via_mid, c.mid]))
        self.assertAccepted(peer)

    def test_a_leaf_from_a_rogue_ca_is_refused(self):
        c = self.certs
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.rogue_key, [c.rogue, c.rogue_ca]))
        e = self.assertRefused(peer, "chain", "does not lead to the CA in " + self.ca_file)
        self.assertIn("CN=ferry-cluster-ca is a CA of its own", str(e))
        self.assertIn("give agent_ca the CA", str(e))

    def test_a_leaf_signed_by_a_leaf_of_the_right_ca_is_refused(self):
        c = self.certs  # the operator's key must not be able to mint an agent certificate
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.forged_key, [c.forged, c.other]))
        self.assertRefused(peer, "chain", "is signed neither by that CA nor by a CA certificate")

    def test_an_expired_certificate_is_refused(self):
        c = self.certs
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.expired_key, [c.expired]))
        self.assertRefused(peer, "chain", "not now")

    def test_a_certificate_of_another_name_is_refused(self):
        c = self.certs
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.other_key, [c.other]))
        self.assertRefused(peer, "name", "common name is ferry-operator, not ferry-node-agent")

    def test_a_proof_for_another_namespace_is_refused(self):
        c = self.certs
        peer, _ = self.proved(
            lambda nonce: _proof(nonce, c.agent_key, [c.agent], netns=OWN_NETNS + 1))
        self.assertRefused(peer, "namespace", f"network namespace {OWN_NETNS + 1}")

    def test_a_signature_over_another_nonce_is_refused(self):
        c = self.certs
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.agent_key, [c.agent],
                                                   signed_nonce=bytes(32)))
        self.assertRefused(peer, "signature", "signature does not verify")

    def test_a_proof_that_cannot_be_read_is_refused(self):
        c = self.certs
        peer, _ = self.proved(lambda nonce: _proof(nonce, c.agent_key, [c.agent])[:-1])
        self.assertRefused(peer, "unreadable", "cannot be read")

    def test_an_agent_without_a_key_is_refused(self):
        self.agent.connect(agent_ca=self.ca_file)
        peer = self.agent.accept()
        peer.hello(3)
        peer.expect(fh.PROVE)
        peer.send(fh.ERROR, struct.pack(">H", 11) + b"this agent holds no key")
        self.assertRefused(peer, "cannot-prove", "holds no key to prove who it is")

    def test_an_older_agent_cannot_prove_and_works_without_agent_ca(self):
        self.agent.connect(agent_ca=self.ca_file)
        self.agent.accept().refuse_hello(3)
        peer = self.agent.accept()  # greeted again, with 2
        peer.hello(2)
        self.assertRefused(peer, "version", (
            f"the agent at {self.agent.path} speaks version 2, which cannot prove it is the "
            f"Ferry agent; upgrade the agent or drop agent_ca"))

        self.agent.connect()
        self.agent.accept().refuse_hello(3)
        peer = self.agent.accept()
        peer.hello(2)
        self.assertAccepted(peer, version=2)

    def test_an_agent_of_version_1_is_greeted_three_times(self):
        self.agent.connect()
        self.agent.accept().refuse_hello(3)
        self.agent.accept().refuse_hello(2)
        peer = self.agent.accept()
        peer.hello(1)
        self.assertAccepted(peer, version=1)

    def test_without_agent_ca_a_version_3_session_asks_for_no_proof(self):
        self.agent.connect()
        peer = self.agent.accept()
        peer.hello(3)
        self.assertAccepted(peer)  # REGISTER came straight after WELCOME, no PROVE

    def test_each_session_has_a_nonce_of_its_own(self):
        c = self.certs
        nonces = []
        for _ in range(2):
            peer, nonce = self.proved(lambda nonce: _proof(nonce, c.agent_key, [c.agent]))
            self.assertAccepted(peer)
            nonces.append(nonce)
        self.assertEqual([len(n) for n in nonces], [32, 32])
        self.assertNotEqual(nonces[0], nonces[1])

    def test_a_ca_file_without_a_certificate_is_refused_before_connecting(self):
        with tempfile.NamedTemporaryFile(suffix=".crt") as empty:
            with self.assertRaisesRegex(ValueError, "holds no PEM certificate"):
                fh.connect(self.agent.path, "test", [8080], freeze=lambda c: "no",
                           takeover=lambda c, s: "no", agent_ca=empty.name)


class WithoutCryptographyTest(unittest.TestCase):
    def test_agent_ca_without_the_package_says_what_to_install(self):
        with mock.patch.dict(sys.modules, {"cryptography": None}):  # as if not installed
            with self.assertRaisesRegex(ImportError, "install python3-cryptography"):
                fh.connect("/nonexistent/handoff.sock", "test", [8080], freeze=lambda c: "no",
                           takeover=lambda c, s: "no", agent_ca="/nonexistent/ca.crt")


if __name__ == "__main__":
    unittest.main()
