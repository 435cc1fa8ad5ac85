// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The sock_diag dump request and reply have the kernel's layouts, and a real dump of this
 * namespace's loopback sockets lists exactly the connections the test made, with their inodes and
 * queues.
 */
class SockDiagTest {
  private static final int CONNECTIONS = 3;
  private static final int ESTABLISHED = SockDiag.states(SockDiag.TCP_ESTABLISHED);
  private static final long QUEUE_WAIT = TimeUnit.SECONDS.toNanos(2);

  // --- encoding and decoding, no kernel ---

  @Test
  void dumpRequestIsHeaderThenInetDiagReqV2WithOnlyTheLocalPortInTheSocketId() {
    byte[] raw = SockDiag.dumpRequest(Native.AF_INET6, ESTABLISHED, 0x1f90, 9);
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    assertThat(raw).hasSize(16 + 56);
    assertThat(b.getInt(0)).isEqualTo(raw.length);
    assertThat(b.getShort(4)).isEqualTo((short) 20); // SOCK_DIAG_BY_FAMILY
    assertThat(b.getShort(6)).isEqualTo((short) 0x301); // NLM_F_REQUEST | NLM_F_DUMP
    assertThat(b.getInt(8)).isEqualTo(9);
    assertThat(new byte[] {raw[16], raw[17], raw[18], raw[19]})
        .containsExactly(10, 6, 0, 0); // AF_INET6, IPPROTO_TCP, no extensions, pad
    assertThat(b.getInt(20)).isEqualTo(1 << 1); // TCPF_ESTABLISHED
    assertThat(new byte[] {raw[24], raw[25]}).containsExactly(0x1f, 0x90); // idiag_sport 8080
    assertThat(slice(raw, 26, 46)).containsOnly(0);
  }

  @Test
  void statesIsOneBitPerState() {
    assertThat(SockDiag.states(SockDiag.TCP_ESTABLISHED, SockDiag.TCP_LISTEN))
        .isEqualTo(0x2 | 0x400);
    assertThatThrownBy(() -> SockDiag.states(0)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void aPartIsDecodedFiltersPortsAndSkipsOtherRequests() throws Exception {
    ByteBuffer part = buffer();
    message(part, 5, diagMsg(Native.AF_INET, 1, "198.18.0.100", 8080, "198.18.0.1", 40000, 7));
    message(part, 4, diagMsg(Native.AF_INET, 1, "198.18.0.100", 8080, "198.18.0.1", 40001, 8));
    message(part, 5, diagMsg(Native.AF_INET, 1, "198.18.0.100", 9090, "198.18.0.1", 40002, 9));
    message(
        part, 5, diagMsg(Native.AF_INET6, 1, "fd66::100", 8080, "fd66::1", 0xfffe, 0xfffffff0L));
    part.flip();

    List<SockDiag.Entry> out = new ArrayList<>();
    assertThat(SockDiag.parse(part, 5, Set.of(8080), out, "test")).isFalse();

    assertThat(out).hasSize(2);
    SockDiag.Entry v4 = out.get(0);
    assertThat(v4.local()).isEqualTo(endpoint("198.18.0.100", 8080));
    assertThat(v4.remote()).isEqualTo(endpoint("198.18.0.1", 40000));
    assertThat(v4.state()).isEqualTo(SockDiag.TCP_ESTABLISHED);
    assertThat(v4.inode()).isEqualTo(7);
    assertThat(v4.recvQueue()).isEqualTo(100);
    assertThat(v4.sendQueue()).isEqualTo(200);
    assertThat(v4.ipv6Socket()).isFalse();
    SockDiag.Entry v6 = out.get(1);
    assertThat(v6.remote()).isEqualTo(endpoint("fd66::1", 0xfffe));
    assertThat(v6.inode()).as("u32 inode read unsigned").isEqualTo(0xfffffff0L);
    assertThat(v6.ipv6Socket()).isTrue();
  }

  @Test
  void anEmptyPortSetKeepsEverySocket() throws Exception {
    ByteBuffer part = buffer();
    message(part, 1, diagMsg(Native.AF_INET, 1, "127.0.0.1", 1, "127.0.0.1", 2, 1));
    message(part, 1, diagMsg(Native.AF_INET, 1, "127.0.0.1", 2, "127.0.0.1", 1, 2));
    part.flip();
    List<SockDiag.Entry> out = new ArrayList<>();
    SockDiag.parse(part, 1, Set.of(), out, "test");
    assertThat(out).hasSize(2);
  }

  @Test
  void aV4MappedAddressComparesEqualToTheIpv4One() throws Exception {
    ByteBuffer part = buffer();
    message(
        part, 1, diagMsg(Native.AF_INET6, 1, "::ffff:127.0.0.1", 80, "::ffff:127.0.0.2", 81, 3));
    part.flip();
    List<SockDiag.Entry> out = new ArrayList<>();
    SockDiag.parse(part, 1, Set.of(), out, "test");
    assertThat(out.get(0).local().getAddress()).isInstanceOf(Inet4Address.class);
    assertThat(out.get(0).local()).isEqualTo(endpoint("127.0.0.1", 80));
    assertThat(out.get(0).remote()).isEqualTo(endpoint("127.0.0.2", 81));
    assertThat(out.get(0).ipv6Socket()).isTrue();
  }

  @Test
  void doneEndsTheDumpAndAnErrorInItThrows() throws Exception {
    ByteBuffer part = buffer();
    message(part, 1, diagMsg(Native.AF_INET, 1, "127.0.0.1", 1, "127.0.0.1", 2, 1));
    header(part, 20, RtNetlink.NLMSG_DONE, 1);
    part.putInt(0);
    part.flip();
    List<SockDiag.Entry> out = new ArrayList<>();
    assertThat(SockDiag.parse(part, 1, Set.of(), out, "test")).isTrue();
    assertThat(out).hasSize(1);

    ByteBuffer failed = buffer();
    header(failed, 20, RtNetlink.NLMSG_DONE, 1);
    failed.putInt(-Errno.ENOMEM);
    failed.flip();
    assertThatThrownBy(() -> SockDiag.parse(failed, 1, Set.of(), out, "sock_diag(x)"))
        .isInstanceOf(SyscallException.class)
        .hasMessageStartingWith("sock_diag(x) failed: ENOMEM");
  }

  @Test
  void nlmsgErrorBecomesAnExceptionWithTheErrno() {
    ByteBuffer part = buffer();
    header(part, 16 + 4 + 16, RtNetlink.NLMSG_ERROR, 3);
    part.putInt(-Errno.EPERM);
    part.put(new byte[16]); // the request's header
    part.flip();
    assertThatThrownBy(() -> SockDiag.parse(part, 3, Set.of(), new ArrayList<>(), "sock_diag(y)"))
        .isInstanceOf(SyscallException.class)
        .hasMessageStartingWith("sock_diag(y) failed: EPERM")
        .extracting(e -> ((SyscallException) e).errno())
        .isEqualTo(Errno.EPERM);
  }

  @Test
  void aTruncatedMessageIsAnError() {
    ByteBuffer part = buffer();
    header(part, 16 + 72, SockDiag.SOCK_DIAG_BY_FAMILY, 1);
    part.put(new byte[10]);
    part.flip();
    assertThatThrownBy(() -> SockDiag.parse(part, 1, Set.of(), new ArrayList<>(), "sock_diag(z)"))
        .hasMessageContaining("truncated netlink message");
  }

  // --- real sockets on loopback in this namespace ---

  @ParameterizedTest
  @ValueSource(strings = {"127.0.0.1", "::1"})
  void everyAcceptedConnectionIsListedWithItsTupleAndInode(String loopback) throws Exception {
    InetAddress ip = InetAddress.getByName(loopback);
    List<TcpSocket> open = new ArrayList<>();
    try (TcpSocket listener = listener(ip)) {
      int port = listener.localAddress().getPort();
      List<TcpSocket> accepted = new ArrayList<>();
      for (int i = 0; i < CONNECTIONS; i++) {
        TcpSocket client = TcpSocket.open(ip);
        open.add(client);
        client.connect(new InetSocketAddress(ip, port));
        TcpSocket server = listener.accept();
        open.add(server);
        accepted.add(server);
      }

      List<SockDiag.Entry> listed = established(Set.of(port));

      assertThat(listed).hasSize(CONNECTIONS);
      for (TcpSocket server : accepted) {
        InetSocketAddress client = server.remoteAddress();
        assertThat(listed)
            .as("server side of %s", client)
            .filteredOn(e -> e.remote().equals(client))
            .singleElement()
            .satisfies(
                e -> {
                  assertThat(e.local()).isEqualTo(server.localAddress());
                  assertThat(e.state()).isEqualTo(SockDiag.TCP_ESTABLISHED);
                  assertThat(e.inode()).isEqualTo(inode(server));
                  assertThat(e.ipv6Socket()).isEqualTo(loopback.contains(":"));
                });
      }
      assertThat(listed).noneMatch(e -> e.inode() == inode(listener));
    } finally {
      open.forEach(TcpSocket::close);
    }
  }

  @Test
  void aListenerIsListedOnlyWhenListenIsAsked() throws Exception {
    InetAddress ip = InetAddress.getLoopbackAddress();
    try (TcpSocket listener = listener(ip);
        TcpSocket client = TcpSocket.open(ip)) {
      int port = listener.localAddress().getPort();
      client.connect(new InetSocketAddress(ip, port));
      try (TcpSocket server = listener.accept()) {
        assertThat(established(Set.of(port)))
            .singleElement()
            .satisfies(e -> assertThat(e.inode()).isEqualTo(inode(server)));

        List<SockDiag.Entry> listening;
        try (SockDiag diag = SockDiag.open()) {
          listening = diag.tcp(SockDiag.states(SockDiag.TCP_LISTEN), Set.of(port));
        }
        assertThat(listening)
            .singleElement()
            .satisfies(
                e -> {
                  assertThat(e.inode()).isEqualTo(inode(listener));
                  assertThat(e.state()).isEqualTo(SockDiag.TCP_LISTEN);
                  assertThat(e.remote().getPort()).isZero();
                });
      }
    }
  }

  @Test
  void thePortFilterSelectsEitherSideAndAnEmptySetSelectsBoth() throws Exception {
    InetAddress ip = InetAddress.getLoopbackAddress();
    try (TcpSocket listener = listener(ip);
        TcpSocket client = TcpSocket.open(ip)) {
      int port = listener.localAddress().getPort();
      client.connect(new InetSocketAddress(ip, port));
      try (TcpSocket server = listener.accept()) {
        int clientPort = client.localAddress().getPort();

        assertThat(established(Set.of(clientPort)))
            .singleElement()
            .satisfies(
                e -> {
                  assertThat(e.inode()).isEqualTo(inode(client));
                  assertThat(e.remote()).isEqualTo(server.localAddress());
                });
        assertThat(established(Set.of(clientPort, port))).hasSize(2);
        assertThat(established(Set.of()))
            .extracting(SockDiag.Entry::inode)
            .contains(inode(client), inode(server));
      }
    }
  }

  /**
   * A Java-style dual-stack server: the AF_INET6 socket accepted from an IPv4 client is listed
   * once, from the AF_INET6 dump, with addresses equal to the IPv4 ones its own getsockname gives.
   */
  @Test
  void anIpv4ConnectionOnADualStackSocketIsListedOnceWithIpv4Addresses() throws Exception {
    InetAddress v4 = InetAddress.getByName("127.0.0.1");
    try (TcpSocket listener = listener(InetAddress.getByName("::"));
        TcpSocket client = TcpSocket.open(v4)) {
      int port = listener.localAddress().getPort();
      client.connect(new InetSocketAddress(v4, port));
      try (TcpSocket server = listener.accept()) {
        assertThat(established(Set.of(port)))
            .singleElement()
            .satisfies(
                e -> {
                  assertThat(e.ipv6Socket()).isTrue();
                  assertThat(e.local()).isEqualTo(new InetSocketAddress(v4, port));
                  assertThat(e.local()).isEqualTo(server.localAddress());
                  assertThat(e.remote()).isEqualTo(client.localAddress());
                  assertThat(e.inode()).isEqualTo(inode(server));
                });
      }
    }
  }

  /**
   * Data the peer has not read counts in its receive queue; data the peer cannot take (its window
   * is full) stays unacknowledged in the writer's send queue.
   */
  @ParameterizedTest
  @ValueSource(strings = {"127.0.0.1", "::1"})
  void queuesCountUnreadAndUnacknowledgedBytes(String loopback) throws Exception {
    InetAddress ip = InetAddress.getByName(loopback);
    try (TcpSocket listener = listener(ip);
        TcpSocket client = TcpSocket.open(ip)) {
      int port = listener.localAddress().getPort();
      client.connect(new InetSocketAddress(ip, port));
      try (TcpSocket server = listener.accept()) {
        int clientPort = client.localAddress().getPort();
        client.writeFully(new byte[1000]);
        SockDiag.Entry reader = awaitEntry(port, e -> e.recvQueue() == 1000);
        assertThat(reader.inode()).isEqualTo(inode(server));
        assertThat(reader.sendQueue()).isZero();

        // Fill the server's receive buffer and the window with it: what is left is not acked.
        client.setBlocking(false);
        byte[] chunk = new byte[64 * 1024];
        long written = 1000;
        for (int n; (n = client.write(chunk, 0, chunk.length)) > 0; ) {
          written += n;
        }
        // Bytes still on their way through loopback are in neither queue: wait for them.
        long start = System.nanoTime();
        SockDiag.Entry writer = only(clientPort);
        SockDiag.Entry full = only(port);
        while ((writer.sendQueue() == 0 || (long) full.recvQueue() + writer.sendQueue() != written)
            && System.nanoTime() - start < QUEUE_WAIT) {
          Thread.sleep(10);
          writer = only(clientPort);
          full = only(port);
        }
        System.out.printf(
            "%s: wrote %d bytes, %d unread at the server, %d unacknowledged at the client%n",
            loopback, written, full.recvQueue(), writer.sendQueue());
        assertThat(writer.sendQueue()).isPositive();
        assertThat(full.recvQueue()).isGreaterThan(1000);
        assertThat((long) full.recvQueue() + writer.sendQueue()).isEqualTo(written);
        assertThat(writer.inode()).isEqualTo(inode(client));
        assertThat((long) full.recvQueue() + writer.sendQueue()).isEqualTo(written);
      }
    }
  }

  private static List<SockDiag.Entry> established(Set<Integer> ports) throws SyscallException {
    try (SockDiag diag = SockDiag.open()) {
      return diag.tcp(ESTABLISHED, ports);
    }
  }

  private static SockDiag.Entry only(int port) throws SyscallException {
    List<SockDiag.Entry> listed = established(Set.of(port));
    assertThat(listed).as("sockets on port %d", port).hasSize(1);
    return listed.get(0);
  }

  /** The one ESTABLISHED socket on {@code port} once it satisfies {@code ready}. */
  private static SockDiag.Entry awaitEntry(int port, Predicate<SockDiag.Entry> ready)
      throws Exception {
    long start = System.nanoTime();
    while (true) {
      SockDiag.Entry e = only(port);
      if (ready.test(e) || System.nanoTime() - start > QUEUE_WAIT) {
        assertThat(e).matches(ready, "queues as expected");
        return e;
      }
      Thread.sleep(10);
    }
  }

  private static TcpSocket listener(InetAddress ip) throws SyscallException {
    TcpSocket s = TcpSocket.open(ip);
    s.bind(new InetSocketAddress(ip, 0));
    s.listen(CONNECTIONS);
    return s;
  }

  /** The inode in the socket's /proc/self/fd link, {@code socket:[12345]}. */
  private static long inode(TcpSocket s) {
    try {
      String link = Files.readSymbolicLink(Path.of("/proc/self/fd/" + s.fd())).toString();
      assertThat(link).startsWith("socket:[");
      return Long.parseLong(link.substring("socket:[".length(), link.length() - 1));
    } catch (java.io.IOException e) {
      throw new AssertionError("cannot read /proc/self/fd/" + s.fd(), e);
    }
  }

  private static ByteBuffer buffer() {
    return ByteBuffer.allocate(4096).order(ByteOrder.nativeOrder());
  }

  private static void header(ByteBuffer b, int len, int type, int seq) {
    b.putInt(len).putShort((short) type).putShort((short) 0x2).putInt(seq).putInt(0); // NLM_F_MULTI
  }

  private static void message(ByteBuffer b, int seq, byte[] body) {
    header(b, 16 + body.length, SockDiag.SOCK_DIAG_BY_FAMILY, seq);
    b.put(body);
  }

  /** struct inet_diag_msg as the kernel fills it, with rqueue 100, wqueue 200 and uid 0. */
  private static byte[] diagMsg(
      int family, int state, String src, int sport, String dst, int dport, long inode)
      throws Exception {
    ByteBuffer b = ByteBuffer.allocate(SockDiag.MSG_LEN).order(ByteOrder.nativeOrder());
    b.put((byte) family).put((byte) state).put((byte) 0).put((byte) 0);
    b.put((byte) (sport >> 8)).put((byte) sport).put((byte) (dport >> 8)).put((byte) dport);
    b.put(raw16(src)).put(raw16(dst));
    b.putInt(0).putLong(0); // idiag_if, idiag_cookie
    b.putInt(0).putInt(100).putInt(200).putInt(0).putInt((int) inode);
    return b.array();
  }

  /** idiag_src/idiag_dst: 16 bytes, an IPv4 address in the first 4, mapped ones kept as such. */
  private static byte[] raw16(String ip) throws Exception {
    byte[] out = new byte[16];
    if (ip.startsWith("::ffff:")) {
      out[10] = (byte) 0xff;
      out[11] = (byte) 0xff;
      System.arraycopy(InetAddress.getByName(ip.substring(7)).getAddress(), 0, out, 12, 4);
      return out;
    }
    byte[] a = InetAddress.getByName(ip).getAddress();
    System.arraycopy(a, 0, out, 0, a.length);
    return out;
  }

  private static InetSocketAddress endpoint(String ip, int port) throws Exception {
    return new InetSocketAddress(InetAddress.getByName(ip), port);
  }

  private static byte[] slice(byte[] raw, int from, int len) {
    byte[] out = new byte[len];
    System.arraycopy(raw, from, out, 0, len);
    return out;
  }
}
