// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk.netty;

import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.function.BiConsumer;

/**
 * A server's first adoption of a socket, run on a loopback connection of its own when it registers,
 * so that no client waits for it. A standby server that has served no one loads Netty's socket
 * channel, its configuration, its read allocator, its buffers and its recycler the first time a
 * moved connection arrives, after the agent resumed the socket and before the server's first write:
 * about 130 classes and some 60 ms of the client's pause in the benchmark's class-load log (a
 * node's first move). Here the same adoption code takes the accepted end of a loopback connection,
 * registers it on the server's group, reads a few bytes, writes a few back from a pooled and an
 * unpooled buffer, and closes; the other end, the SDK's, checks them. Nothing leaves the process,
 * and a rehearsal that fails only leaves the first move colder.
 */
final class AdoptionRehearsal {
  private static final System.Logger LOG = System.getLogger(AdoptionRehearsal.class.getName());

  private static final byte[] PROBE = "ferry".getBytes(StandardCharsets.US_ASCII);

  /** Bounds each wait of the SDK's end: the rehearsal never holds a thread for long. */
  private static final int WAIT_MILLIS = 5_000;

  private AdoptionRehearsal() {}

  /**
   * Starts the rehearsal on a thread of its own.
   *
   * @param adopt what an arriving socket goes through: its descriptor, and the handler that serves
   *     it
   * @return done when the SDK's end has read the server's bytes and its end of stream; failed,
   *     saying why, otherwise
   */
  static CompletableFuture<Void> start(BiConsumer<Integer, ChannelHandler> adopt) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try {
                run(adopt);
                done.complete(null);
              } catch (Exception | LinkageError e) {
                LOG.log(Level.DEBUG, "the adoption rehearsal failed: " + e);
                done.completeExceptionally(e);
              }
            },
            "ferry-adoption-rehearsal");
    t.setDaemon(true);
    t.start();
    return done;
  }

  private static void run(BiConsumer<Integer, ChannelHandler> adopt) throws SyscallException {
    InetAddress lo = InetAddress.getLoopbackAddress();
    TcpSocket ours;
    TcpSocket served = null;
    try (TcpSocket listener = TcpSocket.open(lo)) {
      listener.bind(new InetSocketAddress(lo, 0));
      listener.listen(1);
      ours = TcpSocket.open(lo);
      try {
        ours.connect(listener.localAddress()); // loopback: done once the listener has queued it
        served = listener.accept();
        if (!served.remoteAddress().equals(ours.localAddress())) {
          // Another process of the pod found the port first: not ours to serve.
          throw new IllegalStateException("the rehearsal's listener accepted someone else");
        }
      } catch (SyscallException | RuntimeException e) {
        if (served != null) {
          served.close();
        }
        ours.close();
        throw e;
      }
    }
    try (TcpSocket client = ours) {
      // From here the served end is the adoption's: it closes it, as a moved socket's channel does.
      adopt.accept(served.fd(), new Echo());
      client.writeFully(PROBE);
      byte[] expected = new byte[PROBE.length * 2];
      System.arraycopy(PROBE, 0, expected, 0, PROBE.length);
      System.arraycopy(PROBE, 0, expected, PROBE.length, PROBE.length);
      byte[] got = new byte[expected.length + 1];
      int n = 0;
      while (true) {
        if (!client.awaitReadable(WAIT_MILLIS)) {
          throw new IllegalStateException(
              "the adopted channel sent " + n + " of " + expected.length + " bytes, then nothing");
        }
        int r = client.read(got, n, got.length - n);
        if (r < 0) {
          break;
        }
        n += r;
        if (n == got.length) {
          break; // more than it should send: the comparison says so
        }
      }
      if (!Arrays.equals(Arrays.copyOf(got, n), expected)) {
        throw new IllegalStateException("the adopted channel sent other bytes than it was sent");
      }
    }
  }

  /**
   * The rehearsal's server: reads the probe, writes it back twice (a pooled buffer from the
   * channel's allocator, then an unpooled one), and closes once both are in the kernel.
   */
  private static final class Echo extends ChannelInboundHandlerAdapter {
    private int read;
    private boolean answered;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof ByteBuf in) {
        read += in.readableBytes();
      }
      ReferenceCountUtil.release(msg);
      if (!answered && read >= PROBE.length) {
        answered = true;
        ctx.write(ctx.alloc().buffer(PROBE.length).writeBytes(PROBE));
        ctx.writeAndFlush(Unpooled.wrappedBuffer(PROBE)).addListener(ChannelFutureListener.CLOSE);
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }
}
