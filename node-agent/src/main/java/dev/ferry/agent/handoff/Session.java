// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import dev.ferry.sdk.wire.Connection;
import dev.ferry.sdk.wire.Frame;
import dev.ferry.sdk.wire.FrameChannel;
import dev.ferry.sdk.wire.ProtocolException;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * One application's connection to the agent: reads its frames on a thread of its own and answers
 * the requests the agent made of it.
 */
public final class Session implements Runnable {
  private static final Logger LOG = Logger.getLogger(Session.class.getName());

  private final FrameChannel channel;
  private final UnixSocket.Credentials peer;
  private final HandoffServer server;
  private final Set<Integer> ports = ConcurrentHashMap.newKeySet();
  private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
  private volatile String name = "?";
  private boolean greeted;

  /** A request the agent made and the application has not finished answering. */
  private static final class Pending {
    final boolean freeze;
    final Connection connection;
    final CompletableFuture<HandoffOutcome> answer = new CompletableFuture<>();

    /** Completes when the application starts answering (FROZEN), before its state arrives. */
    final CompletableFuture<Void> started = new CompletableFuture<>();

    TcpSocket socket;
    byte[] blob;
    int received;

    Pending(boolean freeze, Connection connection) {
      this.freeze = freeze;
      this.connection = connection;
    }
  }

  Session(FrameChannel channel, UnixSocket.Credentials peer, HandoffServer server) {
    this.channel = channel;
    this.peer = peer;
    this.server = server;
  }

  /** The application's process, from the kernel's peer credentials. */
  public UnixSocket.Credentials peer() {
    return peer;
  }

  public Set<Integer> ports() {
    return Set.copyOf(ports);
  }

  @Override
  public void run() {
    try {
      Frame frame;
      while ((frame = channel.read()) != null) {
        try {
          handle(frame);
        } catch (ProtocolException e) {
          // A request that makes no sense is refused; the session carries on. (handle() has
          // closed or kept the frame's descriptor: it is not touched here.)
          LOG.warning(() -> this + ": " + e.getMessage());
          channel.error(e.code(), e.getMessage());
        } catch (BufferUnderflowException e) {
          channel.error(Frame.ERR_MALFORMED, "message type " + frame.type() + " is too short");
        }
      }
    } catch (ProtocolException e) {
      // Framing is broken: nothing after it can be trusted. Say why and hang up.
      LOG.warning(() -> this + ": " + e.getMessage() + "; closing the session");
      channel.error(e.code(), e.getMessage());
      channel.socket().discardPendingInput();
    } catch (SyscallException e) {
      LOG.info(() -> this + ": " + e.getMessage());
    } finally {
      close();
    }
  }

  private void handle(Frame f) throws ProtocolException, SyscallException {
    ByteBuffer p = ByteBuffer.wrap(f.payload());
    if (f.fd() >= 0 && f.type() != Frame.FROZEN) {
      Descriptors.close(f.fd());
      throw new ProtocolException(
          Frame.ERR_MALFORMED, "message type " + f.type() + " carries no descriptor");
    }
    if (f.type() == Frame.ERROR) {
      // The application found fault with something we sent. Never answered: two ends that
      // answer each other's errors would do so forever.
      int code = p.getShort() & 0xffff;
      String why = StandardCharsets.UTF_8.decode(p).toString();
      LOG.warning(() -> this + " reports error " + code + ": " + why);
      return;
    }
    if (!greeted && f.type() != Frame.HELLO) {
      Descriptors.close(f.fd());
      throw new ProtocolException(Frame.ERR_OUT_OF_ORDER, "the first message must be HELLO");
    }
    switch (f.type()) {
      case Frame.HELLO -> {
        int version = p.getShort() & 0xffff;
        if (version != 1) {
          throw new ProtocolException(
              Frame.ERR_MALFORMED,
              "protocol version " + version + " is not spoken here; this agent speaks 1");
        }
        name = StandardCharsets.UTF_8.decode(p).toString();
        greeted = true;
        channel.write(
            Frame.WELCOME,
            ByteBuffer.allocate(6).putShort((short) 1).putInt(Frame.MAX_FRAME).array());
      }
      case Frame.REGISTER -> {
        int count = p.getShort() & 0xffff;
        for (int i = 0; i < count; i++) {
          int port = p.getShort() & 0xffff;
          Session owner = server.register(port, this);
          if (owner != this) {
            throw new ProtocolException(
                Frame.ERR_PORT_TAKEN, "port " + port + " is registered by " + owner);
          }
          ports.add(port);
        }
        ByteBuffer reply = ByteBuffer.allocate(2 + 2 * ports.size()).putShort((short) ports.size());
        ports.forEach(port -> reply.putShort(port.shortValue()));
        channel.write(Frame.REGISTERED, reply.array());
      }
      case Frame.FROZEN -> {
        if (p.remaining() < 16) {
          Descriptors.close(f.fd());
          throw new ProtocolException(Frame.ERR_MALFORMED, "FROZEN is too short");
        }
        frozen(p.getLong(), p.getLong(), f.fd());
      }
      case Frame.BLOB -> blob(p.getLong(), p);
      case Frame.DECLINED -> {
        Pending req = take(p.getLong());
        req.answer.complete(
            new HandoffOutcome.Declined(StandardCharsets.UTF_8.decode(p).toString()));
        req.started.complete(null);
      }
      case Frame.TAKEN -> {
        long id = p.getLong();
        Pending req = take(id);
        if (req.freeze) {
          throw new ProtocolException(
              Frame.ERR_OUT_OF_ORDER, "request " + id + " is a freeze, not a takeover");
        }
        req.answer.complete(new HandoffOutcome.Taken(this, id));
      }
      default ->
          throw new ProtocolException(Frame.ERR_UNKNOWN_TYPE, "unknown message type " + f.type());
    }
  }

  private void frozen(long id, long length, int fd) throws ProtocolException, SyscallException {
    Pending req = pending.get(id);
    if (req == null && server.expired(id)) {
      // Too late: the connection stays the application's, which still holds its descriptor.
      Descriptors.close(fd);
      returned(id, "the freeze timed out before the socket came; the connection stays yours");
      return;
    }
    if (req == null || !req.freeze || req.socket != null) {
      Descriptors.close(fd);
      throw new ProtocolException(Frame.ERR_UNKNOWN_REQUEST, "no freeze " + id + " is waiting");
    }
    if (fd < 0) {
      throw new ProtocolException(Frame.ERR_MALFORMED, "FROZEN " + id + " came without the socket");
    }
    if (!Descriptors.isTcpSocket(fd)) {
      Descriptors.close(fd);
      throw new ProtocolException(
          Frame.ERR_NOT_TCP, "FROZEN " + id + ": the descriptor is not a TCP socket");
    }
    TcpSocket socket = TcpSocket.adopt(fd);
    try {
      Connection got = new Connection(socket.localAddress(), socket.remoteAddress());
      if (!got.equals(req.connection)) {
        socket.close();
        throw new ProtocolException(
            Frame.ERR_MALFORMED, "FROZEN " + id + " sent " + got + ", not " + req.connection);
      }
    } catch (SyscallException e) {
      socket.close();
      throw new ProtocolException(Frame.ERR_NOT_TCP, "FROZEN " + id + ": " + e.getMessage());
    }
    if (length < 0 || length > server.maxStateBytes()) {
      socket.close();
      throw new ProtocolException(
          Frame.ERR_TOO_LARGE,
          "state of " + length + " bytes; this agent takes at most " + server.maxStateBytes());
    }
    req.socket = socket;
    req.blob = new byte[(int) length];
    req.started.complete(null);
    finishIfWhole(id, req);
  }

  private void blob(long id, ByteBuffer chunk) throws ProtocolException {
    Pending req = pending.get(id);
    if (req == null || req.blob == null) {
      throw new ProtocolException(
          Frame.ERR_UNKNOWN_REQUEST, "BLOB for request " + id + ", which expects none");
    }
    if (chunk.remaining() > req.blob.length - req.received) {
      throw new ProtocolException(
          Frame.ERR_TOO_LARGE, "BLOB " + id + " runs past the announced length " + req.blob.length);
    }
    int n = chunk.remaining();
    chunk.get(req.blob, req.received, n);
    req.received += n;
    finishIfWhole(id, req);
  }

  private void finishIfWhole(long id, Pending req) {
    if (req.received == req.blob.length) {
      pending.remove(id);
      req.answer.complete(new HandoffOutcome.Frozen(this, id, req.socket, req.blob));
    }
  }

  private Pending take(long id) throws ProtocolException {
    Pending req = pending.remove(id);
    if (req == null) {
      throw new ProtocolException(
          server.expired(id) ? Frame.ERR_TIMED_OUT : Frame.ERR_UNKNOWN_REQUEST,
          "no request " + id + " is waiting");
    }
    return req;
  }

  /** Asks the application for a connection; the answer completes the returned future. */
  Request requestFreeze(long id, Connection c) throws SyscallException {
    Pending req = new Pending(true, c);
    pending.put(id, req);
    ByteBuffer b = ByteBuffer.allocate(8 + c.encodedSize()).putLong(id);
    c.writeTo(b);
    channel.write(Frame.FREEZE, b.array());
    return new Request(req.started, req.answer);
  }

  /** A request in flight: when the answer began, and the answer. */
  record Request(CompletableFuture<Void> started, CompletableFuture<HandoffOutcome> answer) {}

  /** Hands a restored socket and its state to the application. */
  Request requestTakeover(long id, Connection c, TcpSocket socket, byte[] state)
      throws SyscallException {
    Pending req = new Pending(false, c);
    req.started.complete(null); // nothing streams back: the whole answer is one frame
    pending.put(id, req);
    ByteBuffer b = ByteBuffer.allocate(16 + c.encodedSize()).putLong(id).putLong(state.length);
    c.writeTo(b);
    channel.write(Frame.TAKEOVER, b.array(), socket.fd());
    for (int off = 0; off < state.length; off += Frame.MAX_CHUNK) {
      int n = Math.min(Frame.MAX_CHUNK, state.length - off);
      channel.write(Frame.BLOB, ByteBuffer.allocate(8 + n).putLong(id).put(state, off, n).array());
    }
    return new Request(req.started, req.answer);
  }

  /** Forgets a request whose answer came too late; a late answer then gets ERROR. */
  void abandon(long id) {
    Pending req = pending.remove(id);
    if (req != null && req.socket != null) {
      req.socket.close();
    }
  }

  /**
   * Tells the application that the connection it handed over (freeze {@code requestId}) is gone
   * from it: the agent has read the socket in repair mode, so its close sends nothing.
   */
  public void released(long requestId) throws SyscallException {
    channel.write(Frame.RELEASED, ByteBuffer.allocate(8).putLong(requestId).array());
  }

  /**
   * Gives a handed-over connection back untouched (the move failed before the socket was read, or
   * the answer came too late): the application carries on writing to it.
   */
  public void returned(long requestId, String why) throws SyscallException {
    byte[] text = why.getBytes(StandardCharsets.UTF_8);
    channel.write(
        Frame.RETURNED, ByteBuffer.allocate(8 + text.length).putLong(requestId).put(text).array());
  }

  /** Tells the application that the socket it took over is live. */
  public void resumed(long requestId) throws SyscallException {
    channel.write(Frame.RESUMED, ByteBuffer.allocate(8).putLong(requestId).array());
  }

  void close() {
    server.unregister(this, ports);
    pending
        .values()
        .forEach(
            req -> {
              req.answer.complete(
                  new HandoffOutcome.NotAnswered("the application closed its session"));
              req.started.complete(null);
            });
    pending.clear();
    channel.close();
  }

  void shutdown() {
    channel.socket().shutdown();
  }

  @Override
  public String toString() {
    return "session of " + name + " (pid " + peer.pid() + ")";
  }
}
