// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk.netty;

import dev.ferry.protocol.Connection;
import dev.ferry.sdk.Handover;
import dev.ferry.sdk.MigrationHandler;
import dev.ferry.sdk.MovedSocket;
import dev.ferry.sdk.Takeover;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollSocketChannel;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Hands channels of Netty's epoll transport to the agent and adopts the ones that arrive, for a
 * server that implements {@link MovableChannels}.
 *
 * <p>A freeze runs on the channel's event loop, in order: autoRead off; {@link
 * MovableChannels#freeze}; an empty flush whose completion says every earlier write is in the
 * kernel; the channel taken off its loop, so that epoll forgets the socket while its descriptor
 * still names it; then the descriptor goes to the agent. Released, the channel is closed (its
 * descriptor by then names the SDK's placeholder); kept, it goes back on its loop and reads again.
 */
public final class NettyMigrationHandler implements MigrationHandler {
  /**
   * Under the agent's default freeze timeout (2 s), so that a late answer is a decline, not lost.
   */
  public static final Duration FREEZE_LIMIT = Duration.ofMillis(1500);

  private static final System.Logger LOG = System.getLogger(NettyMigrationHandler.class.getName());

  private final LiveChannels channels;
  private final EventLoopGroup group;
  private final MovableChannels app;
  private final long limitMillis;

  /**
   * @param channels the tracker in the server's child pipelines
   * @param group where channels that arrive are registered
   */
  public NettyMigrationHandler(LiveChannels channels, EventLoopGroup group, MovableChannels app) {
    this(channels, group, app, FREEZE_LIMIT);
  }

  /**
   * @param freezeLimit how long a freeze may take on the event loop before it is declined
   */
  public NettyMigrationHandler(
      LiveChannels channels, EventLoopGroup group, MovableChannels app, Duration freezeLimit) {
    this.channels = channels;
    this.group = group;
    this.app = app;
    this.limitMillis = freezeLimit.toMillis();
    // The freeze's timer is the JDK's one thread for CompletableFuture's timeouts, made on its
    // first use: used once here, so that a process's first freeze does not wait for it to be made
    // (a class-load log of the benchmark showed its making 5 ms inside the first freeze).
    new CompletableFuture<Void>().orTimeout(0, TimeUnit.MILLISECONDS).exceptionally(late -> null);
  }

  @Override
  public Handover freeze(Connection c) {
    return freezeLater(c).join();
  }

  /**
   * The freeze runs on the channel's event loop and answers from there: the SDK lends no thread
   * while it waits, so that a freeze of many connections does not start a thread for each.
   */
  @Override
  public CompletableFuture<Handover> freezeLater(Connection c) {
    Channel ch = channels.find(c);
    if (ch == null) {
      return CompletableFuture.completedFuture(
          Handover.decline(
              "no live Netty channel for "
                  + c
                  + " (closed, or LiveChannels is not in its pipeline)"));
    }
    if (!(ch instanceof EpollSocketChannel epoll)) {
      return CompletableFuture.completedFuture(
          Handover.decline(
              c
                  + " is carried by a "
                  + ch.getClass().getSimpleName()
                  + "; only an EpollSocketChannel shows its descriptor"));
    }
    Freeze freeze = new Freeze(c, epoll);
    try {
      ch.eventLoop().execute(freeze::begin);
    } catch (RejectedExecutionException e) {
      return CompletableFuture.completedFuture(
          Handover.decline("the event loop of " + c + " is shutting down"));
    }
    // Timed apart from the loop, which may be the one that is stuck. Whoever completes the answer
    // first decides; the loop gives the channel back if it lost. The decline's words are put
    // together only if the time runs out, not in every freeze.
    return freeze
        .answer
        .orTimeout(limitMillis, TimeUnit.MILLISECONDS)
        .exceptionally(late -> Handover.decline(lateFreeze(c, late)));
  }

  private String lateFreeze(Connection c, Throwable late) {
    Throwable cause =
        late instanceof CompletionException && late.getCause() != null ? late.getCause() : late;
    if (cause instanceof TimeoutException) {
      return "the event loop of " + c + " did not finish the freeze within " + limitMillis + " ms";
    }
    return "the freeze of " + c + " failed: " + cause;
  }

  @Override
  public Takeover takeover(Connection c, byte[] state) {
    if (!Epoll.isAvailable()) {
      return Takeover.decline(
          "Netty's epoll transport is not available here: " + Epoll.unavailabilityCause());
    }
    ChannelHandler handler;
    try {
      handler = app.takeover(c, state);
    } catch (Exception e) {
      return Takeover.decline(reason(e));
    }
    if (handler == null) {
      return Takeover.decline("the server gave no handler for " + c);
    }
    return Takeover.accept(socket -> adopt(socket, handler));
  }

  private void adopt(MovedSocket socket, ChannelHandler handler) {
    adopt(socket.release(), socket.connection().toString(), handler);
  }

  /**
   * Runs the adoption of a moved socket once on a loopback connection of the SDK's own, off the
   * caller's thread, so that a standby server's first takeover does not load Netty's channel and
   * buffer classes while its client waits ({@link AdoptionRehearsal}). {@link FerryNetty#register}
   * starts it.
   *
   * @return done when the rehearsal's bytes went there and back; failed, saying why, otherwise
   */
  CompletableFuture<Void> rehearseAdoption() {
    return AdoptionRehearsal.start(
        (fd, handler) -> adopt(fd, "the rehearsal's loopback connection", handler));
  }

  /** Wraps {@code fd} in a channel that {@code handler} serves, on the server's group. */
  private void adopt(int fd, String c, ChannelHandler handler) {
    EpollSocketChannel ch;
    try {
      // The restored socket is blocking, and EpollSocketChannel(int) takes a descriptor as it is:
      // one blocking write would stall every channel on the loop. adopt() only wraps the number.
      TcpSocket.adopt(fd).setBlocking(false);
      ch = new EpollSocketChannel(fd);
    } catch (SyscallException | RuntimeException e) {
      LOG.log(Level.ERROR, "could not adopt " + c + " into a Netty channel: " + e.getMessage());
      Descriptors.close(fd);
      return;
    }
    // The tracker first: it tracks the channel as registration adds it, before the server's
    // handler sees channelActive and writes, so a freeze can never miss a live channel.
    ch.pipeline().addLast(channels, handler);
    group
        .register(ch)
        .addListener(
            registered -> {
              if (!registered.isSuccess()) {
                LOG.log(
                    Level.ERROR,
                    "could not register " + c + ": " + registered.cause().getMessage());
              }
            });
  }

  /** One freeze: its steps run on the channel's event loop, its answer is awaited on an SDK one. */
  private final class Freeze {
    final Connection c;
    final EpollSocketChannel ch;
    final CompletableFuture<Handover> answer = new CompletableFuture<>();

    Freeze(Connection c, EpollSocketChannel ch) {
      this.c = c;
      this.ch = ch;
    }

    void begin() {
      if (answer.isDone()) {
        return; // declined for lateness before anything was touched
      }
      if (!ch.isActive()) {
        answer.complete(Handover.decline(c + " closed before it could be frozen"));
        return;
      }
      if (!ch.isRegistered()) {
        answer.complete(
            Handover.decline(c + " is handed over already; the agent has not said how it ended"));
        return;
      }
      ch.config().setAutoRead(false);
      byte[] state;
      try {
        state = app.freeze(ch);
      } catch (Exception e) {
        ch.config().setAutoRead(true);
        answer.complete(Handover.decline("the server keeps " + c + ": " + reason(e)));
        return;
      }
      if (state == null) {
        ch.config().setAutoRead(true);
        answer.complete(
            Handover.decline("the server keeps " + c + ": it has no state to hand over"));
        return;
      }
      ch.writeAndFlush(Unpooled.EMPTY_BUFFER)
          .addListener(
              flushed -> {
                if (!flushed.isSuccess()) {
                  String why = "flushing " + c + " failed: " + flushed.cause().getMessage();
                  answer.complete(Handover.decline(why));
                  giveBack(ch, why);
                } else if (answer.isDone()) {
                  giveBack(ch, "the flush took longer than " + limitMillis + " ms");
                } else {
                  ch.deregister().addListener(deregistered -> handOver(state));
                }
              });
    }

    private void handOver(byte[] state) {
      Handover give = Handover.give(ch.fd().intValue(), state, new After(ch));
      if (!answer.complete(give)) {
        giveBack(ch, "the freeze took longer than " + limitMillis + " ms");
      }
    }
  }

  /** How a handover ended; called on an SDK thread, acted on on the channel's loop. */
  private final class After implements Handover.AfterHandover {
    private final EpollSocketChannel ch;

    After(EpollSocketChannel ch) {
      this.ch = ch;
    }

    @Override
    public void released() {
      onLoop(
          () -> {
            try {
              app.released(ch);
            } finally {
              ch.close();
            }
          });
    }

    @Override
    public void kept(String why) {
      onLoop(() -> giveBack(ch, why));
    }

    private void onLoop(Runnable step) {
      try {
        ch.eventLoop().execute(step);
      } catch (RejectedExecutionException e) {
        LOG.log(Level.WARNING, "the event loop of " + ch + " is gone; closing it here");
        ch.unsafe().closeForcibly();
      }
    }
  }

  /** On the loop: the channel is the server's again, reading, back on its loop if it left. */
  private void giveBack(EpollSocketChannel ch, String why) {
    if (ch.isRegistered() || !ch.isOpen()) {
      resume(ch, why);
      return;
    }
    ch.eventLoop()
        .register(ch)
        .addListener(
            registered -> {
              if (registered.isSuccess()) {
                resume(ch, why);
              } else {
                LOG.log(
                    Level.ERROR,
                    "could not put "
                        + ch
                        + " back on its event loop: "
                        + registered.cause().getMessage());
                ch.close();
              }
            });
  }

  private static String reason(Exception e) {
    return e.getMessage() != null ? e.getMessage() : e.toString();
  }

  private void resume(EpollSocketChannel ch, String why) {
    ch.config().setAutoRead(true);
    app.kept(ch, why);
  }
}
