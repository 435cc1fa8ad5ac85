"""Checks of ferry_handoff.py against an agent played frame by frame (stdlib only):

    python3 -m unittest examples/python/test_ferry_handoff.py
"""

import os
import queue
import socket
import struct
import tempfile
import threading
import unittest

import ferry_handoff as fh

CONN = (4, "127.0.0.1", 8080, "127.0.0.1", 40000)


def _conn_bytes(conn):
    _, lip, lport, rip, rport = conn
    return (b"\x04" + socket.inet_aton(lip) + struct.pack(">H", lport)
            + socket.inet_aton(rip) + struct.pack(">H", rport))


class _Agent:
    """The agent's end: accepts one session, greets it with version 2, registers its ports."""

    def __init__(self, taken):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "handoff.sock")
        listening = self.listen()
        done = {}
        t = threading.Thread(target=lambda: done.update(s=fh.connect(
            self.path, "test", [8080, 9090], freeze=lambda c: "no",
            takeover=lambda c, state: (taken.put(state), lambda sock: None)[1])))
        t.start()
        self.greet(listening)
        t.join(10)
        self.session = done["s"]

    def listen(self):
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(self.path)
        listening.listen(1)
        return listening

    def greet(self, listening):
        """Accepts a session, welcomes it with version 2 and registers what it asks for."""
        listening.settimeout(10)
        try:
            self.sock, _ = listening.accept()
        finally:
            listening.close()
        assert self.read()[0] == fh.HELLO
        self.send(fh.WELCOME, struct.pack(">HI", 2, fh.MAX_FRAME))
        typ, p = self.read()
        assert typ == fh.REGISTER
        self.registered = p
        self.send(fh.REGISTERED, p)

    def restart(self, down):
        """Goes away as a restarting agent does (the session ends, its socket's path is gone for
        down seconds), then listens again at the same path; returns the listening socket."""
        self.sock.close()
        os.unlink(self.path)
        threading.Event().wait(down)
        return self.listen()

    def send(self, typ, payload, fd=-1):
        frame = struct.pack(">IB", 1 + len(payload), typ) + payload
        if fd >= 0:
            socket.send_fds(self.sock, [frame], [fd])
        else:
            self.sock.sendall(frame)

    def blobs(self, rid, data):
        for off in range(0, len(data), fh.MAX_FRAME - 9):
            self.send(fh.BLOB, struct.pack(">Q", rid) + data[off:off + fh.MAX_FRAME - 9])

    def prestate(self, rid, kind, data, conn=CONN):
        self.send(fh.PRESTATE, struct.pack(">QBQ", rid, kind, len(data)) + _conn_bytes(conn))
        self.blobs(rid, data)

    def takeover(self, rid, data, ahead=None, conn=CONN):
        with socket.socket() as tcp:
            if ahead is None:
                self.send(fh.TAKEOVER, struct.pack(">QQ", rid, len(data)) + _conn_bytes(conn),
                          tcp.fileno())
            else:
                self.send(fh.TAKEOVER_APPEND,
                          struct.pack(">QQQ", rid, ahead, len(data)) + _conn_bytes(conn),
                          tcp.fileno())
        self.blobs(rid, data)

    def read(self):
        def exactly(n):
            buf = b""
            while len(buf) < n:
                got = self.sock.recv(n - len(buf))
                assert got, "the session ended"
                buf += got
            return buf
        (n,) = struct.unpack(">I", exactly(4))
        body = exactly(n)
        return body[0], body[1:]

    def expect(self, typ):
        got, p = self.read()
        assert got == typ, f"expected message type {typ}, got {got}: {p!r}"
        return struct.unpack_from(">Q", p)[0]

    def close(self):
        self.session.close()
        self.sock.close()
        self.dir.cleanup()


class PrestateTest(unittest.TestCase):
    def setUp(self):
        self.taken = queue.Queue()
        self.agent = _Agent(self.taken)

    def tearDown(self):
        self.agent.close()

    def test_snapshot_appends_and_takeover_append_reach_the_server_whole(self):
        a = self.agent
        snapshot, append, tail = os.urandom(2 * fh.MAX_FRAME + 3), b"+token", os.urandom(fh.MAX_FRAME)
        a.prestate(5, fh.SNAPSHOT, b"first")
        a.prestate(5, fh.SNAPSHOT, snapshot)  # replaces the first
        a.prestate(5, fh.APPEND, b"")
        a.prestate(5, fh.APPEND, append)
        a.takeover(6, tail, ahead=5)
        self.assertEqual(a.expect(fh.TAKEN), 6)
        self.assertEqual(self.taken.get(timeout=10), snapshot + append + tail)
        a.takeover(7, b"", ahead=5)  # forgotten after the takeover
        self.assertEqual(a.expect(fh.DECLINED), 7)

    def test_a_takeover_append_without_its_prestate_is_declined(self):
        a = self.agent
        a.takeover(10, b"tail", ahead=9)
        self.assertEqual(a.expect(fh.DECLINED), 10)
        a.prestate(11, fh.SNAPSHOT, b"snap")
        a.send(fh.PRESTATE_DROP, struct.pack(">Q", 11) + _conn_bytes(CONN))
        a.takeover(12, b"tail", ahead=11)
        self.assertEqual(a.expect(fh.DECLINED), 12)
        a.prestate(13, fh.APPEND, b"to nothing")
        self.assertEqual(a.expect(fh.DECLINED), 13)
        a.prestate(14, fh.SNAPSHOT, b"snap")
        a.takeover(15, b"whole")  # a plain TAKEOVER: the whole state, and the prestate ends
        self.assertEqual(a.expect(fh.TAKEN), 15)
        self.assertEqual(self.taken.get(timeout=10), b"whole")
        self.assertTrue(self.taken.empty())


class ReconnectTest(unittest.TestCase):
    def setUp(self):
        self.taken = queue.Queue()
        self.agent = _Agent(self.taken)

    def tearDown(self):
        self.agent.close()

    def test_a_session_the_agent_ended_opens_again_with_every_port_and_takes_connections(self):
        a = self.agent
        a.greet(a.restart(down=0.5))  # past the first tries: the path was gone meanwhile
        self.assertEqual(a.registered, struct.pack(">HHH", 2, 8080, 9090))
        a.takeover(3, b"moved while our agent restarted")
        self.assertEqual(a.expect(fh.TAKEN), 3)
        self.assertEqual(self.taken.get(timeout=10), b"moved while our agent restarted")

    def test_a_session_the_server_closed_is_not_opened_again(self):
        a = self.agent
        a.session.close()
        self.assertEqual(a.sock.recv(1), b"", "the session ended from the server's side")
        listening = a.restart(down=0)
        listening.settimeout(1.5)  # the first tries of a session opened again come within 0.3 s
        with self.assertRaises(socket.timeout):
            listening.accept()
        listening.close()


if __name__ == "__main__":
    unittest.main()
