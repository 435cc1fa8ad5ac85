// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.protocol.Connection;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A JDK socket handed over the way the SDK does it, on loopback: found by its addresses, passed on,
 * detached, closed by the application, and still alive in the hands that received it.
 */
class JdkSocketHandoverTest {

  @Test
  void findsTheDescriptorOfAJdkSocketByItsAddresses() throws Exception {
    try (Pair p = Pair.open()) {
      Connection c = p.serverSide();
      int fd = OwnSockets.find(c);
      TcpSocket view = TcpSocket.adopt(fd); // not closed: the descriptor is the JDK's
      assertThat(new Connection(view.localAddress(), view.remoteAddress())).isEqualTo(c);

      Connection nobody =
          new Connection(c.local(), new InetSocketAddress(c.remote().getAddress(), 1));
      assertThatThrownBy(() -> OwnSockets.find(nobody))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("no TCP socket for");
    }
  }

  @Test
  void findsEachOfManyConnectionsAndNoneTwice() throws Exception {
    List<Pair> pairs = new ArrayList<>();
    try {
      for (int i = 0; i < 100; i++) {
        pairs.add(Pair.open());
      }
      Set<Integer> fds = new HashSet<>();
      for (Pair p : pairs) {
        int fd = OwnSockets.find(p.serverSide());
        TcpSocket view = TcpSocket.adopt(fd);
        assertThat(new Connection(view.localAddress(), view.remoteAddress()))
            .isEqualTo(p.serverSide());
        fds.add(fd);
      }
      assertThat(fds).hasSize(pairs.size());
    } finally {
      for (Pair p : pairs) {
        p.close();
      }
    }
  }

  @Test
  void aDescriptorNumberReusedByAnotherSocketIsNotTakenForTheConnectionThatHadIt()
      throws Exception {
    Pair first = Pair.open();
    Connection gone = first.serverSide();
    int itsFd = OwnSockets.find(gone); // noted for the next call
    first.close();
    // Linux gives the lowest free number: the next sockets take the closed ones' numbers.
    try (Pair second = Pair.open()) {
      assertThatThrownBy(() -> OwnSockets.find(gone))
          .as("descriptor %d was %s's", itsFd, gone)
          .isInstanceOf(IOException.class)
          .hasMessageContaining("no TCP socket for");
      int fd = OwnSockets.find(second.serverSide());
      TcpSocket view = TcpSocket.adopt(fd);
      assertThat(new Connection(view.localAddress(), view.remoteAddress()))
          .isEqualTo(second.serverSide());
    }
  }

  @Test
  void aDetachedJdkSocketClosesWithoutAFinAndLivesOnInTheReceiversHands() throws Exception {
    try (Pair p = Pair.open()) {
      int fd = OwnSockets.find(p.serverSide());
      int received = passToSelf(fd); // what the agent holds after SCM_RIGHTS

      Descriptors.detach(fd);
      p.server.close(); // the JDK shuts output down first: the placeholder takes that

      try (TcpSocket agents = TcpSocket.adopt(received)) {
        agents.writeFully("still here".getBytes(StandardCharsets.US_ASCII));
        assertThat(readExactly(p.client.getInputStream(), 10)).isEqualTo("still here");
        p.client.setSoTimeout(200);
        assertThatThrownBy(() -> p.client.getInputStream().read())
            .as("no FIN: the client's read times out instead of seeing the end")
            .isInstanceOf(java.net.SocketTimeoutException.class);
      }
    }
  }

  @Test
  void withoutDetachTheJdkCloseWouldEndTheStreamForTheClient() throws Exception {
    // The reason detach exists: the JDK's close() sends FIN even while another process holds
    // the socket. If this ever stops failing, the JDK changed and detach could go.
    try (Pair p = Pair.open()) {
      int received = passToSelf(OwnSockets.find(p.serverSide()));
      p.server.close();
      try (TcpSocket ignored = TcpSocket.adopt(received)) {
        p.client.setSoTimeout(2000);
        assertThat(p.client.getInputStream().read()).as("end of stream").isEqualTo(-1);
      }
    }
  }

  private static int passToSelf(int fd) throws Exception {
    UnixSocket[] pair = UnixSocket.pair();
    try {
      pair[0].send(new byte[] {1}, fd);
      int[] fds = pair[1].receive(1, 1).fds();
      assertThat(fds).hasSize(1);
      return fds[0];
    } finally {
      pair[0].close();
      pair[1].close();
    }
  }

  private static String readExactly(InputStream in, int n) throws IOException {
    byte[] buf = in.readNBytes(n);
    return new String(buf, StandardCharsets.US_ASCII);
  }

  /** A loopback connection between two JDK sockets. */
  private record Pair(Socket client, Socket server) implements AutoCloseable {
    static Pair open() throws IOException {
      InetAddress lo = InetAddress.getLoopbackAddress();
      try (ServerSocket listener = new ServerSocket(0, 1, lo)) {
        Socket client = new Socket(lo, listener.getLocalPort());
        return new Pair(client, listener.accept());
      }
    }

    Connection serverSide() {
      return new Connection(
          (InetSocketAddress) server.getLocalSocketAddress(),
          (InetSocketAddress) server.getRemoteSocketAddress());
    }

    @Override
    public void close() throws IOException {
      client.close();
      server.close();
    }
  }
}
