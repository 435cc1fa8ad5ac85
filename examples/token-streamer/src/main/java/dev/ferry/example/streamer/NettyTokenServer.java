// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import static dev.ferry.example.streamer.TokenStreamer.say;

import dev.ferry.protocol.Connection;
import dev.ferry.sdk.FerryAgent;
import dev.ferry.sdk.netty.FerryNetty;
import dev.ferry.sdk.netty.LiveChannels;
import dev.ferry.sdk.netty.MovableChannels;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * The demo server on Netty's epoll transport: the requests, events and handover state of {@link
 * TokenStreamer}, byte for byte, with each stream a timer on an event loop instead of a thread.
 */
final class NettyTokenServer implements MovableChannels {
  private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);
  private static final AttributeKey<Stream> STREAM =
      AttributeKey.valueOf(NettyTokenServer.class, "stream");

  private final TokenStreamer.Options options;

  NettyTokenServer(TokenStreamer.Options options) {
    this.options = options;
  }

  void serve() throws IOException, InterruptedException {
    EventLoopGroup boss = new EpollEventLoopGroup(1);
    EventLoopGroup workers = new EpollEventLoopGroup();
    try {
      // Registered before the bind: the tracker has to be in the pipeline of the first stream.
      LiveChannels live = null;
      if (options.agent() != null) {
        FerryAgent agent = options.connect();
        live = FerryNetty.register(agent, options.listen().getPort(), workers, this);
      }
      LiveChannels tracker = live;
      Channel server =
          new ServerBootstrap()
              .group(boss, workers)
              .channel(EpollServerSocketChannel.class)
              .option(ChannelOption.SO_REUSEADDR, true)
              .option(ChannelOption.SO_BACKLOG, 128)
              .childOption(ChannelOption.TCP_NODELAY, true)
              .childHandler(
                  new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                      if (tracker != null) {
                        ch.pipeline().addLast(tracker);
                      }
                      ch.pipeline().addLast(new RequestReader());
                    }
                  })
              .bind(options.listen())
              .sync()
              .channel();
      say(
          "listening on "
              + options.listen().getAddress().getHostAddress()
              + ":"
              + options.listen().getPort()
              + " (Netty epoll)"
              + (options.agent() == null ? "" : ", movable through " + options.agent()));
      server.closeFuture().sync();
    } finally {
      boss.shutdownGracefully();
      workers.shutdownGracefully();
    }
  }

  @Override
  public byte[] freeze(Channel ch) {
    Stream stream = ch.attr(STREAM).get();
    if (stream == null) {
      throw new IllegalStateException(
          "no stream on " + LiveChannels.connection(ch) + " (not begun)");
    }
    return stream.freeze();
  }

  @Override
  public ChannelHandler takeover(Connection c, byte[] blob) {
    StreamState state;
    try {
      state = StreamState.decode(blob);
    } catch (IllegalArgumentException e) {
      say("declining " + c + ": " + e.getMessage());
      throw e;
    }
    say("taking over " + c + " at " + state + ", checksum verified");
    StreamState here = options.takenOver(state);
    return new ChannelInitializer<Channel>() {
      @Override
      protected void initChannel(Channel ch) {
        ch.config().setOption(ChannelOption.TCP_NODELAY, true);
        ch.pipeline().addLast(new Stream(c, here));
      }
    };
  }

  @Override
  public void released(Channel ch) {
    ch.attr(STREAM).get().released();
  }

  @Override
  public void kept(Channel ch, String why) {
    ch.attr(STREAM).get().kept(why);
  }

  /** Reads the request head, answers it, and gives way to the stream. */
  private final class RequestReader extends ChannelInboundHandlerAdapter {
    private final ByteArrayOutputStream head = new ByteArrayOutputStream();
    private boolean answered;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf buf = (ByteBuf) msg;
      try {
        if (!answered) {
          head.writeBytes(ByteBufUtil.getBytes(buf));
          answer(ctx);
        }
      } finally {
        ReferenceCountUtil.release(buf);
      }
    }

    private void answer(ChannelHandlerContext ctx) {
      StreamRequest request;
      try {
        // The head may come in pieces: an unfinished one reads as a stream that ends early.
        request = StreamRequest.read(new ByteArrayInputStream(head.toByteArray()));
      } catch (StreamRequest.Rejected e) {
        answered = true;
        ctx.writeAndFlush(Unpooled.wrappedBuffer(TokenStreamer.rejection(e.status, e.getMessage())))
            .addListener(ChannelFutureListener.CLOSE);
        return;
      } catch (IOException impossible) {
        throw new UncheckedIOException(impossible);
      }
      if (request == null) {
        return;
      }
      answered = true;
      StreamState state =
          StreamState.start(request.prompt(), request.tokens(), options.rate(), options.kvBytes());
      ctx.write(Unpooled.wrappedBuffer(TokenStreamer.RESPONSE_HEAD));
      ctx.pipeline()
          .replace(this, "stream", new Stream(LiveChannels.connection(ctx.channel()), state));
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }

  /**
   * One stream: an event per tick, the next tick once the event is in the kernel, as the blocking
   * server's write-then-sleep. Everything runs on the channel's event loop, so a freeze always
   * falls between two events.
   */
  private final class Stream extends ChannelInboundHandlerAdapter {
    private final Connection c;
    private final StreamState state;
    private final long interval;
    private Channel ch;
    private ScheduledFuture<?> tick;
    private boolean started;
    private boolean writing;
    private boolean frozen;
    private boolean gone;

    Stream(Connection c, StreamState state) {
      this.c = c;
      this.state = state;
      this.interval = TimeUnit.SECONDS.toNanos(1) / state.rate;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      ch = ctx.channel();
      ch.attr(STREAM).set(this);
      // Put in place of the request reader, the channel is long active: no channelActive comes.
      if (ch.isActive()) {
        start();
      }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      start();
      ctx.fireChannelActive();
    }

    private void start() {
      if (!started) {
        started = true;
        next();
      }
    }

    private void next() {
      tick = null;
      writing = true;
      if (state.finished()) {
        ch.writeAndFlush(Unpooled.wrappedBuffer(DONE))
            .addListener(
                written -> {
                  if (written.isSuccess()) {
                    say("stream " + c + " done");
                  }
                  gone = true;
                  ch.close();
                });
        return;
      }
      ch.writeAndFlush(Unpooled.wrappedBuffer(state.nextEvent()))
          .addListener(
              written -> {
                writing = false;
                if (!written.isSuccess()) {
                  end(written.cause().getMessage());
                } else if (!frozen) {
                  tick = ch.eventLoop().schedule(this::next, interval, TimeUnit.NANOSECONDS);
                }
              });
    }

    /** The state to hand over, or null once the last token is out: [DONE] is this server's. */
    byte[] freeze() {
      if (state.finished()) {
        return null;
      }
      frozen = true;
      if (tick != null) {
        tick.cancel(false);
        tick = null;
      }
      // Nothing said here: whatever the freeze does holds the client. released() says where the
      // stream left, once it has.
      return state.encode();
    }

    void released() {
      gone = true;
      say("stream " + c + " moved away at " + state);
    }

    void kept(String why) {
      frozen = false;
      say("keeping " + c + " at " + state + ": " + why);
      // A write still in flight schedules the next tick itself when it lands.
      if (!writing && tick == null) {
        tick = ch.eventLoop().schedule(this::next, interval, TimeUnit.NANOSECONDS);
      }
    }

    private void end(String why) {
      if (!gone) {
        gone = true;
        say("stream " + c + " ended: " + why);
      }
      if (tick != null) {
        tick.cancel(false);
      }
      ch.close();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      // A stream takes no input; reading on is how the loop hears that the client went away.
      ReferenceCountUtil.release(msg);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      end("the client closed the connection");
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      end(cause.getMessage());
    }
  }
}
