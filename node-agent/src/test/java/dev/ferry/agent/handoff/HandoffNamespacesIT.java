// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.TcpSocket;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Registrations are per network namespace: two pods on one node both serve 8080, and a connection
 * is offered only to the application in its own pod's namespace. One application is this test's
 * process; the other a python3 process in a testbed host's namespace (another pod), speaking the
 * protocol raw: it registers 8080, declines every FREEZE it gets, and says so on its stdout.
 */
@Timeout(120)
class HandoffNamespacesIT {
  private static final String OTHER_POD_APP =
      """
      import socket, struct, sys
      s = socket.socket(socket.AF_UNIX)
      s.connect(sys.argv[1])
      def frame():
          b = b""
          while len(b) < 4:
              got = s.recv(4 - len(b))
              if not got:
                  sys.exit(0)
              b += got
          n = struct.unpack(">I", b)[0]
          b = b""
          while len(b) < n:
              b += s.recv(n - len(b))
          return b[0], b[1:]
      s.sendall(struct.pack(">IBH", 3 + 9, 1, 2) + b"other-pod")
      assert frame()[0] == 2
      s.sendall(struct.pack(">IBHH", 5, 3, 1, 8080))
      t, p = frame()
      print("registered" if t == 4 else "refused %d %r" % (t, p), flush=True)
      while True:
          t, p = frame()
          if t == 5:
              rid = p[:8]
              print("asked to freeze", flush=True)
              s.sendall(struct.pack(">IB", 1 + 8 + 9, 8) + rid + b"other-pod")
      """;

  private Path dir;
  private Path socketPath;
  private HandoffServer server;

  @BeforeAll
  static void root() {
    Testbed.requirePrivileges();
  }

  @BeforeEach
  void start() throws Exception {
    dir = Files.createTempDirectory("ferry-namespaces");
    // The other pod's process reaches the socket through the file system, as a pod that mounts
    // the agent's directory does.
    Files.setPosixFilePermissions(
        dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
    socketPath = dir.resolve("handoff.sock");
    server =
        HandoffServer.start(socketPath, Duration.ofSeconds(5), Duration.ofSeconds(30), 1 << 20);
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    Files.deleteIfExists(socketPath);
    Files.deleteIfExists(dir);
  }

  @Test
  void aSocketOfTheSameFourAddressesFromAnotherNamespaceIsNotTaken() throws Exception {
    long ours = NetNamespace.inodeOfProcess(ProcessHandle.current().pid());
    try (Testbed bed = Testbed.create()) {
      Host elsewhere = bed.host("elsewhere", "198.18.0.61/24");
      TcpSocket[] pair;
      try (NetNamespace ns = NetNamespace.named(elsewhere.netns())) {
        pair =
            ns.call(
                () -> {
                  InetAddress ip = InetAddress.getByName("198.18.0.61");
                  try (TcpSocket listener = TcpSocket.open(ip)) {
                    listener.bind(new InetSocketAddress(ip, 0));
                    listener.listen(1);
                    TcpSocket client = TcpSocket.open(ip);
                    client.connect(listener.localAddress());
                    return new TcpSocket[] {listener.accept(), client};
                  }
                });
      }
      TcpSocket forged = pair[0];
      // This pod's connection, as the agent would name it: the same four addresses.
      Connection named = new Connection(forged.localAddress(), forged.remoteAddress());
      try (TestApp app =
          new TestApp(socketPath).hello("forger", 2).register(named.local().getPort())) {
        var outcome =
            java.util.concurrent.CompletableFuture.supplyAsync(
                () -> {
                  try {
                    return server.freeze(named, ours);
                  } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                  }
                });
        long id = app.expect(Frame.FREEZE);
        app.frozen(id, forged.fd(), new byte[0]);
        Frame error = app.next();
        assertThat(error.type()).isEqualTo(Frame.ERROR);
        assertThat(ByteBuffer.wrap(error.payload()).getShort())
            .isEqualTo((short) Frame.ERR_MALFORMED);
        assertThat(
                new String(error.payload(), 2, error.payload().length - 2, StandardCharsets.UTF_8))
            .contains("network namespace");
        app.send(Frame.DECLINED, ByteBuffer.allocate(8).putLong(id).array());
        assertThat(outcome.get(30, TimeUnit.SECONDS)).isInstanceOf(HandoffOutcome.Declined.class);
      } finally {
        pair[0].close();
        pair[1].close();
      }
    }
  }

  @Test
  void twoPodsServe8080OnOneNodeAndEachIsOfferedOnlyItsOwnConnections() throws Exception {
    long ours = NetNamespace.inodeOfProcess(ProcessHandle.current().pid());
    try (Testbed bed = Testbed.create()) {
      Host otherPod = bed.host("other", "198.18.0.60/24");
      long theirs;
      try (NetNamespace ns = NetNamespace.named(otherPod.netns())) {
        theirs = ns.inode();
      }
      Process other =
          otherPod.process("python3", "-u", "-c", OTHER_POD_APP, socketPath.toString()).start();
      BufferedReader said =
          new BufferedReader(new InputStreamReader(other.getInputStream(), StandardCharsets.UTF_8));
      try (TestApp ourApp = new TestApp(socketPath).hello("this-pod", 2)) {
        assertThat(said.readLine())
            .as("the other pod registers 8080 first")
            .isEqualTo("registered");
        ourApp.register(8080); // and this pod registers it too: no ERROR 7
        assertThat(server.registrations(ours).get(8080).toString()).contains("this-pod");
        assertThat(server.registrations(theirs).get(8080).toString()).contains("other-pod");

        // A connection of this pod, on 8080 (what the kernel names it by is all that matters
        // here; it need not be accepted on 8080 for real).
        Connection ourConnection =
            new Connection(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 8080),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 40000));
        var outcome =
            java.util.concurrent.CompletableFuture.supplyAsync(
                () -> {
                  try {
                    return server.freeze(ourConnection, ours);
                  } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                  }
                });
        long id = ourApp.expect(Frame.FREEZE);
        ourApp.send(
            Frame.DECLINED,
            ByteBuffer.allocate(8 + 8).putLong(id).put("this-pod".getBytes()).array());
        assertThat(outcome.get(30, TimeUnit.SECONDS))
            .isEqualTo(new HandoffOutcome.Declined("this-pod"));

        // The other pod's connection goes to the other pod's application, and only to it.
        HandoffOutcome theirOutcome = server.freeze(ourConnection, theirs);
        assertThat(said.readLine()).isEqualTo("asked to freeze");
        assertThat(theirOutcome).isEqualTo(new HandoffOutcome.Declined("other-pod"));
        assertThat(ourApp.channel.socket().awaitReadable(200))
            .as("this pod's application never heard of the other pod's connection")
            .isFalse();

        // A takeover into a pod where nobody registered the port: nobody is asked.
        try (TcpSocket unused = TcpSocket.open(InetAddress.getLoopbackAddress())) {
          HandoffOutcome none = server.takeover(ourConnection, unused, new byte[0], theirs + ours);
          assertThat(none).isInstanceOf(HandoffOutcome.Declined.class);
        }
      } finally {
        other.destroy();
        other.waitFor(10, TimeUnit.SECONDS);
      }
    }
  }
}
