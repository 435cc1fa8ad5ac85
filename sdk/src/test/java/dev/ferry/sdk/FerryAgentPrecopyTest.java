// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.UnixSocket;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The SDK's side of protocol version 2 against an agent played frame by frame by the test. */
class FerryAgentPrecopyTest {

  @Test
  void theServerOffersItsStateAheadAndTheFreezeSendsOnlyTheRest(@TempDir Path dir)
      throws Exception {
    Path path = dir.resolve("handoff.sock");
    InetAddress lo = InetAddress.getLoopbackAddress();
    try (UnixSocket listening = UnixSocket.listen(path, 1);
        ServerSocket tcp = new ServerSocket(0, 1, lo);
        Socket client = new Socket(lo, tcp.getLocalPort());
        Socket served = tcp.accept()) {
      Connection c =
          new Connection(
              (InetSocketAddress) served.getLocalSocketAddress(),
              (InetSocketAddress) served.getRemoteSocketAddress());
      CountDownLatch offered = new CountDownLatch(1);
      StateOffer[] kept = new StateOffer[1];
      MigrationHandler handler =
          new MigrationHandler() {
            @Override
            public void precopy(Connection connection, StateOffer offer) {
              kept[0] = offer;
              // From a thread of the server's own, as a stream's writer would.
              new Thread(
                      () -> {
                        offer.snapshot(bytes("snapshot"));
                        offer.append(bytes("+1"));
                        offer.append(bytes("+2"));
                        offered.countDown();
                      })
                  .start();
            }

            @Override
            public Handover freeze(Connection connection) throws Exception {
              assertThat(kept[0].isOpen()).isTrue();
              return Handover.give(
                  OwnSockets.find(connection),
                  bytes("+3"),
                  new Handover.AfterHandover() {
                    @Override
                    public void released() {}

                    @Override
                    public void kept(String why) {}
                  });
            }

            @Override
            public Takeover takeover(Connection connection, byte[] state) {
              return Takeover.decline("not in this test");
            }
          };
      CompletableFuture<FerryAgent> connecting =
          CompletableFuture.supplyAsync(() -> connect(path, handler, tcp.getLocalPort()));
      FrameChannel agent = new FrameChannel(listening.accept());
      Frame hello = agent.read();
      assertThat(hello.type()).isEqualTo(Frame.HELLO);
      assertThat(ByteBuffer.wrap(hello.payload()).getShort())
          .as("HELLO's version: the highest the SDK speaks")
          .isEqualTo((short) Frame.VERSION);
      // An agent of version 2 agrees to 2.
      agent.write(
          Frame.WELCOME, ByteBuffer.allocate(6).putShort((short) 2).putInt(1 << 20).array());
      registered(agent);
      FerryAgent ferry = connecting.get(20, TimeUnit.SECONDS);
      assertThat(ferry.protocolVersion()).isEqualTo(2);

      ByteBuffer ask = ByteBuffer.allocate(8 + c.encodedSize()).putLong(41);
      c.writeTo(ask);
      agent.write(Frame.PRECOPY, ask.array());
      assertThat(offered.await(20, TimeUnit.SECONDS)).isTrue();
      assertThat(readPart(agent, 41)).isEqualTo("1 snapshot");
      assertThat(readPart(agent, 41)).isEqualTo("2 +1");
      assertThat(readPart(agent, 41)).isEqualTo("2 +2");

      ByteBuffer freeze = ByteBuffer.allocate(8 + c.encodedSize()).putLong(42);
      c.writeTo(freeze);
      agent.write(Frame.FREEZE, freeze.array());
      Frame frozen = agent.read();
      assertThat(frozen.type()).isEqualTo(Frame.FROZEN);
      assertThat(frozen.fd()).isNotNegative();
      Descriptors.close(frozen.fd());
      ByteBuffer p = ByteBuffer.wrap(frozen.payload());
      assertThat(p.getLong()).isEqualTo(42);
      assertThat(p.getLong()).as("only the rest").isEqualTo(2);
      assertThat(blobs(agent, 42, 2)).isEqualTo("+3");
      assertThat(kept[0].isOpen()).as("the freeze closed the offer").isFalse();
      assertThat(kept[0].append(bytes("late"))).isFalse();
      ferry.close();
      agent.close();
    }
  }

  @Test
  void aServerWithoutPrecopyDeclinesItAndAnOlderAgentIsGreetedWithVersion1(@TempDir Path dir)
      throws Exception {
    Path path = dir.resolve("handoff.sock");
    MigrationHandler v1 =
        new MigrationHandler() {
          @Override
          public Handover freeze(Connection connection) {
            return Handover.decline("no");
          }

          @Override
          public Takeover takeover(Connection connection, byte[] state) {
            return Takeover.decline("no");
          }
        };
    try (UnixSocket listening = UnixSocket.listen(path, 2)) {
      CompletableFuture<FerryAgent> connecting =
          CompletableFuture.supplyAsync(() -> connect(path, v1, 8080));
      // An agent of version 1 refused any HELLO but 1 with an ERROR: the SDK greets it again
      // with each lower version in turn.
      List<FrameChannel> refused = new ArrayList<>();
      for (int hello = Frame.VERSION; hello > 1; hello--) {
        FrameChannel first = new FrameChannel(listening.accept());
        assertThat(ByteBuffer.wrap(first.read().payload()).getShort()).isEqualTo((short) hello);
        first.error(
            Frame.ERR_MALFORMED,
            "protocol version " + hello + " is not spoken here; this agent speaks 1");
        refused.add(first);
      }
      FrameChannel agent = new FrameChannel(listening.accept());
      assertThat(ByteBuffer.wrap(agent.read().payload()).getShort()).isEqualTo((short) 1);
      agent.write(
          Frame.WELCOME, ByteBuffer.allocate(6).putShort((short) 1).putInt(1 << 20).array());
      registered(agent);
      FerryAgent ferry = connecting.get(20, TimeUnit.SECONDS);
      assertThat(ferry.protocolVersion()).isEqualTo(1);
      refused.forEach(FrameChannel::close);

      // The default precopy(): DECLINED, so that the agent expects the whole state.
      Connection c =
          new Connection(
              new InetSocketAddress(InetAddress.getLoopbackAddress(), 8080),
              new InetSocketAddress(InetAddress.getLoopbackAddress(), 40000));
      ByteBuffer ask = ByteBuffer.allocate(8 + c.encodedSize()).putLong(7);
      c.writeTo(ask);
      agent.write(Frame.PRECOPY, ask.array());
      Frame declined = agent.read();
      assertThat(declined.type()).isEqualTo(Frame.DECLINED);
      assertThat(ByteBuffer.wrap(declined.payload()).getLong()).isEqualTo(7);
      ferry.close();
      agent.close();
    }
  }

  private static FerryAgent connect(Path path, MigrationHandler handler, int port) {
    try {
      FerryAgent ferry = FerryAgent.connect(path, "precopy-test");
      ferry.register(port, handler);
      return ferry;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static void registered(FrameChannel agent) throws Exception {
    Frame register = agent.read();
    assertThat(register.type()).isEqualTo(Frame.REGISTER);
    agent.write(Frame.REGISTERED, register.payload());
  }

  /** Reads one STATE and its BLOB frames: "kind text". */
  private static String readPart(FrameChannel agent, long id) throws Exception {
    Frame state = agent.read();
    assertThat(state.type()).isEqualTo(Frame.STATE);
    ByteBuffer p = ByteBuffer.wrap(state.payload());
    assertThat(p.getLong()).isEqualTo(id);
    int kind = p.get();
    return kind + " " + blobs(agent, id, (int) p.getLong());
  }

  private static String blobs(FrameChannel agent, long id, int length) throws Exception {
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    while (got.size() < length) {
      Frame blob = agent.read();
      assertThat(blob.type()).isEqualTo(Frame.BLOB);
      assertThat(ByteBuffer.wrap(blob.payload()).getLong()).isEqualTo(id);
      got.write(blob.payload(), 8, blob.payload().length - 8);
    }
    return got.toString(StandardCharsets.UTF_8);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
