// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.tunnel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.repair.Pattern;
import dev.ferry.sys.NetNamespace;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.SourceDestinationCheck;
import dev.ferry.testbed.Testbed;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The forwarding tunnel on a LAN with EC2's source/destination check: a client's download from a
 * moved address crosses the tunnel while the "VPC" still delivers the address to the node it left,
 * and goes direct once it delivers it to the node that has it, every byte in order, no reset.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES) // bounds a hang only; nothing here is timed
class TunnelIT {
  private static final String CLIENT = "198.18.41.1";
  private static final String SOURCE = "198.18.41.2";
  private static final String TARGET = "198.18.41.3";
  private static final String SERVICE = "198.18.41.100";
  private static final int PORT = 8080;
  private static final int JUMBO = 9001;
  private static final int HALF = 4 << 20;
  private static final long SEED = 41;
  private static final long MINUTE = TimeUnit.MINUTES.toNanos(1);

  /** A client, the node the address left, the node it moved to with a pod that has it. */
  private static final class Vpc implements AutoCloseable {
    final Testbed bed = Testbed.create();
    final Host client = bed.host("client", CLIENT + "/24");
    final Host source = bed.host("source", SOURCE + "/24");
    final Host target = bed.host("target", TARGET + "/24");
    final Host pod = bed.pod(target, "svc");
    final SourceDestinationCheck check = bed.sourceDestinationCheck();

    Vpc() {
      // EC2's layout: the nodes' interfaces take jumbo frames, the client sends 1500-byte ones,
      // so a full-sized segment has room for the tunnel's 20 bytes (docs/aws.md, MTU).
      bed.mtu(source, JUMBO);
      bed.mtu(target, JUMBO);
      pod.addAddress(SERVICE + "/32");
      target.routeToPod(SERVICE, pod);
      // EC2 has assigned the address to the target, but the VPC still delivers it to the source.
      check.enforce(source, SOURCE, SERVICE);
      check.enforce(target, TARGET);
      client.setNeighbour(SERVICE, source.mac());
    }

    /** The VPC delivers the address to the target now, and the source may no longer use it. */
    void switchToTarget() {
      check.unassign(source, SERVICE);
      check.assign(target, SERVICE);
      client.setNeighbour(SERVICE, target.mac());
    }

    NetNamespace ns(Host host) throws IOException {
      return NetNamespace.named(host.netns());
    }

    @Override
    public void close() {
      bed.close();
    }
  }

  @Test
  void aDownloadCrossesTheTunnelUntilTheVpcSwitchesThenGoesDirect() throws Exception {
    try (Vpc vpc = new Vpc();
        NetNamespace sourceNs = vpc.ns(vpc.source);
        NetNamespace targetNs = vpc.ns(vpc.target);
        NetNamespace podNs = vpc.ns(vpc.pod);
        NetNamespace clientNs = vpc.ns(vpc.client)) {
      // As on an agent's node: the hold's programs first (XDP in, TC out), the tunnel's after.
      ConnectionHold holdOnSource =
          ConnectionHold.install(vpc.bed.bpfPinDir("hold-s"), List.of("eth0"), sourceNs);
      ConnectionHold holdOnTarget =
          ConnectionHold.install(vpc.bed.bpfPinDir("hold-t"), List.of("eth0"), targetNs);
      AddressTunnel onSource =
          AddressTunnel.install(vpc.bed.bpfPinDir("tun-s"), List.of("eth0"), sourceNs);
      AddressTunnel onTarget =
          AddressTunnel.install(vpc.bed.bpfPinDir("tun-t"), List.of("eth0"), targetNs);
      try {
        long deadline = System.nanoTime() + MINUTE;
        onSource.forward(ip(SERVICE), "eth0", ip(SOURCE), ip(TARGET), Optional.empty(), deadline);
        onTarget.receive(ip(SERVICE), "eth0", ip(TARGET), ip(SOURCE), deadline);

        try (ServerSocketChannel listener =
                podNs.call(
                    () -> ServerSocketChannel.open().bind(new InetSocketAddress(SERVICE, PORT)));
            SocketChannel client = clientNs.call(TunnelIT::connect);
            SocketChannel server = listener.accept()) {
          // The whole handshake and the first half cross the tunnel both ways.
          CompletableFuture<Void> sent = send(server, 0, HALF);
          readAndCheck(client, 0, HALF);
          sent.join();
          assertThat(onTarget.entry(ip(SERVICE)).orElseThrow().switched()).isFalse();

          vpc.switchToTarget();
          long forwardedBySource = onSource.entry(ip(SERVICE)).orElseThrow().forwarded();

          // A download: the client only acknowledges. The target's direct copies reach it now.
          sent = send(server, HALF, HALF);
          readAndCheck(client, HALF, HALF);
          sent.join();
          client.write(ByteBuffer.wrap("thanks".getBytes()));
          assertThat(readExactly(server, 6)).isEqualTo("thanks".getBytes());

          TunnelEntry atTarget = onTarget.entry(ip(SERVICE)).orElseThrow();
          TunnelEntry atSource = onSource.entry(ip(SERVICE)).orElseThrow();
          assertThat(atTarget.switched()).as("the target saw a direct segment").isTrue();
          assertThat(atSource.forwarded()).as("client segments the source forwarded").isPositive();
          assertThat(atSource.received()).as("replies the source sent on").isPositive();
          assertThat(atTarget.received()).as("client segments taken out").isPositive();
          assertThat(atTarget.forwarded()).as("replies the target tunnelled").isPositive();
          assertThat(atSource.forwarded())
              .as("after the switch nothing of the client's reaches the source")
              .isEqualTo(forwardedBySource);
          assertThat(atSource.tooBig() + atTarget.tooBig()).isZero();

          // Switched: the target answers directly and tunnels nothing more.
          sent = send(server, 2L * HALF, 1 << 20);
          readAndCheck(client, 2L * HALF, 1 << 20);
          sent.join();
          assertThat(onTarget.entry(ip(SERVICE)).orElseThrow().forwarded())
              .isEqualTo(atTarget.forwarded());
        }
      } finally {
        onSource.uninstall();
        onTarget.uninstall();
        holdOnSource.uninstall();
        holdOnTarget.uninstall();
      }
    }
  }

  /** The check has teeth: a design that replied directly before the switch would fail here. */
  @Test
  void theLocalVpcDropsWhatEc2Would() throws Exception {
    try (Vpc vpc = new Vpc();
        NetNamespace podNs = vpc.ns(vpc.pod);
        NetNamespace clientNs = vpc.ns(vpc.client);
        ServerSocketChannel listener =
            podNs.call(
                () -> ServerSocketChannel.open().bind(new InetSocketAddress(SERVICE, PORT)))) {
      // Sent straight to the target before the VPC delivers the address there: dropped.
      vpc.client.setNeighbour(SERVICE, vpc.target.mac());
      assertThatThrownBy(() -> clientNs.call(TunnelIT::connect)).isInstanceOf(IOException.class);
      assertThat(vpc.check.dropped()).isPositive();

      vpc.switchToTarget();
      try (SocketChannel client = clientNs.call(TunnelIT::connect)) {
        assertThat(client.isConnected()).isTrue();
      }
    }
  }

  private static SocketChannel connect() throws IOException {
    SocketChannel c = SocketChannel.open();
    try {
      c.socket().connect(new InetSocketAddress(SERVICE, PORT), 3_000);
      return c;
    } catch (IOException e) {
      c.close();
      throw e;
    }
  }

  /** Writes the pattern's bytes [offset, offset + length) in the background. */
  private static CompletableFuture<Void> send(SocketChannel server, long offset, int length) {
    return CompletableFuture.runAsync(
        () -> {
          try {
            ByteBuffer b = ByteBuffer.wrap(Pattern.bytes(SEED, offset, length));
            while (b.hasRemaining()) {
              server.write(b);
            }
          } catch (IOException e) {
            throw new IllegalStateException("the server's write failed", e);
          }
        });
  }

  private static void readAndCheck(SocketChannel client, long offset, int length)
      throws IOException {
    byte[] got = readExactly(client, length);
    int mismatch = Arrays.mismatch(got, Pattern.bytes(SEED, offset, length));
    assertThat(mismatch).as("first wrong byte after %d (-1: none)", offset).isEqualTo(-1);
  }

  private static byte[] readExactly(SocketChannel channel, int length) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(length);
    while (b.hasRemaining()) {
      if (channel.read(b) < 0) {
        throw new IOException("the stream ended after " + b.position() + " of " + length);
      }
    }
    return b.array();
  }

  private static Inet4Address ip(String address) throws IOException {
    return (Inet4Address) InetAddress.getByName(address);
  }
}
