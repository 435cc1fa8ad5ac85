// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import dev.ferry.protocol.AgentProof;
import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * One application's connection to the agent: reads its frames on a thread of its own and answers
 * the requests the agent made of it. Requests are written by the threads that make them; their
 * answers complete a {@link HandoffServer.Batch}.
 */
public final class Session implements Runnable {
  private static final Logger LOG = Logger.getLogger(Session.class.getName());

  private final FrameChannel channel;
  private final UnixSocket.Credentials peer;
  private final long netns;
  private final HandoffServer server;
  private final Set<Integer> ports = ConcurrentHashMap.newKeySet();
  private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
  private final Map<Long, Precopy> precopies = new ConcurrentHashMap<>();
  private final Map<Connection, Precopy> precopyOf = new ConcurrentHashMap<>();

  /** State handed ahead to this application (target side), by request id and by connection. */
  private final Map<Long, Prestate> prestates = new ConcurrentHashMap<>();

  private final Map<Connection, Prestate> prestateOf = new ConcurrentHashMap<>();

  /** The ids of every prestate handed to this session: a DECLINED of one is never an error. */
  private final Set<Long> prestateIds = ConcurrentHashMap.newKeySet();

  /**
   * Requests the agent gave up on (timed out, stopped): frames that still come for them are
   * answered (a late FROZEN gets RETURNED) or dropped without a word each. Kept for the session's
   * life: request ids are never reused, and a few bytes per abandoned request is cheap.
   */
  private final Set<Long> abandoned = ConcurrentHashMap.newKeySet();

  /** The ids of every pre-copy asked of this session: a late DECLINED of one is not an error. */
  private final Set<Long> precopyIds = ConcurrentHashMap.newKeySet();

  private volatile String name = "?";
  private volatile int version; // 0 until HELLO
  private volatile long lastHeard = System.nanoTime();
  private volatile boolean broken; // a write failed: the application cannot be reached

  /** A freeze or takeover the agent asked for and the application has not finished answering. */
  static final class Pending {
    final Session session;
    final long id;
    final boolean freeze;
    final Connection connection;
    final HandoffServer.Batch batch;
    final int index;
    final Precopy precopy; // the pre-copy this freeze ends, or null
    volatile long sentAt = System.nanoTime();

    /** The application began answering (FROZEN came): its state is streaming in. */
    volatile boolean started;

    volatile boolean finished;
    boolean appends; // the state it hands over follows the pre-copy's
    TcpSocket socket;
    StateBuffer blob; // filled as its BLOB frames arrive, never allocated at the announced size

    Pending(
        Session session,
        long id,
        boolean freeze,
        Connection connection,
        HandoffServer.Batch batch,
        int index,
        Precopy precopy) {
      this.session = session;
      this.id = id;
      this.freeze = freeze;
      this.connection = connection;
      this.batch = batch;
      this.index = index;
      this.precopy = precopy;
    }

    String what() {
      return (freeze ? "freeze " : "takeover ") + id + " of " + connection;
    }

    /**
     * Finishes this request with {@code outcome}, unless something finished it first (its answer,
     * its expiry, its session's end). The outcome goes into the caller's batch before the mark: the
     * caller stops waiting once it sees every request of the batch marked ({@link HandoffServer}'s
     * awaitAll), and reads their outcomes then. Marked first, a TAKEN answered while the caller was
     * still sending could be seen finished with no outcome yet (make bench: a takeover read as
     * null, and a move rolled back on its NullPointerException).
     *
     * @return false if it was finished already
     */
    synchronized boolean finish(HandoffOutcome outcome) {
      if (finished) {
        return false;
      }
      batch.complete(index, outcome);
      finished = true;
      return true;
    }
  }

  /** A pre-copy in progress: the state the application offers for one connection. */
  private static final class Precopy {
    final long id;
    final Connection connection;
    final PrecopyListener listener;
    boolean active = true; // guarded by this
    boolean declined; // guarded by this
    long freezeId; // guarded by this: the freeze that will end it, once asked
    long partRemaining; // guarded by this: bytes of the last STATE still to come

    Precopy(long id, Connection connection, PrecopyListener listener) {
      this.id = id;
      this.connection = connection;
      this.listener = listener;
    }
  }

  /** HELLO named a version not spoken here: say so and hang up. */
  private static final class Hangup extends Exception {
    Hangup(String message) {
      super(message);
    }
  }

  Session(FrameChannel channel, UnixSocket.Credentials peer, long netns, HandoffServer server) {
    this.channel = channel;
    this.peer = peer;
    this.netns = netns;
    this.server = server;
  }

  /** The application's network namespace (inode) when it connected; -1 if it could not be read. */
  long netns() {
    return netns;
  }

  /** The application's process, from the kernel's peer credentials. */
  public UnixSocket.Credentials peer() {
    return peer;
  }

  public Set<Integer> ports() {
    return Set.copyOf(ports);
  }

  /** The protocol version agreed in WELCOME; 0 before HELLO. */
  public int version() {
    return version;
  }

  /** When the last frame from the application arrived (System.nanoTime()). */
  long lastHeard() {
    return lastHeard;
  }

  /**
   * Whether {@code f} is part of an answer to one of the agent's freezes or takeovers: only that
   * keeps a request from timing out. State offered ahead of a freeze (STATE and its BLOBs) does
   * not: an application that streams its appends but never answers the freeze is silent on it.
   */
  private boolean answersARequest(Frame f) {
    return switch (f.type()) {
      case Frame.FROZEN, Frame.DECLINED, Frame.TAKEN -> true;
      case Frame.BLOB ->
          f.payload().length >= 8 && pending.containsKey(ByteBuffer.wrap(f.payload()).getLong());
      default -> false;
    };
  }

  @Override
  public void run() {
    try {
      Frame frame;
      while ((frame = channel.read()) != null) {
        if (answersARequest(frame)) {
          lastHeard = System.nanoTime();
        }
        try {
          handle(frame);
        } catch (ProtocolException e) {
          // A request that makes no sense is refused; the session carries on. (handle() has
          // closed or kept the frame's descriptor: it is not touched here.)
          LOG.warning(() -> this + ": " + e.getMessage());
          error(e.code(), e.getMessage());
        } catch (BufferUnderflowException e) {
          error(Frame.ERR_MALFORMED, "message type " + frame.type() + " is too short");
        }
      }
    } catch (ProtocolException e) {
      // Framing is broken: nothing after it can be trusted. Say why and hang up.
      LOG.warning(() -> this + ": " + e.getMessage() + "; closing the session");
      error(e.code(), e.getMessage());
      channel.socket().discardPendingInput();
    } catch (Hangup e) {
      LOG.warning(() -> this + ": " + e.getMessage() + "; closing the session");
      error(Frame.ERR_UNSUPPORTED_VERSION, e.getMessage());
      channel.socket().discardPendingInput();
    } catch (SyscallException e) {
      LOG.info(() -> this + ": " + e.getMessage());
    } finally {
      close();
    }
  }

  /** Sends ERROR {@code code}, and counts it. */
  private void error(int code, String message) {
    server.refused(code);
    channel.error(code, message);
  }

  private void handle(Frame f) throws ProtocolException, SyscallException, Hangup {
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
    if (version == 0 && f.type() != Frame.HELLO) {
      Descriptors.close(f.fd());
      throw new ProtocolException(Frame.ERR_OUT_OF_ORDER, "the first message must be HELLO");
    }
    switch (f.type()) {
      case Frame.HELLO -> hello(p);
      case Frame.PROVE -> prove(p);
      case Frame.REGISTER -> register(p);
      case Frame.FROZEN -> {
        if (p.remaining() < 16) {
          Descriptors.close(f.fd());
          throw new ProtocolException(Frame.ERR_MALFORMED, "FROZEN is too short");
        }
        frozen(p.getLong(), p.getLong(), f.fd());
      }
      case Frame.BLOB -> blob(p.getLong(), p);
      case Frame.STATE -> {
        if (version < 2) {
          throw new ProtocolException(Frame.ERR_UNKNOWN_TYPE, "STATE is a version 2 message");
        }
        state(p.getLong(), p.get() & 0xff, p.getLong());
      }
      case Frame.DECLINED -> declined(p.getLong(), StandardCharsets.UTF_8.decode(p).toString());
      case Frame.TAKEN -> {
        long id = p.getLong();
        Pending req = answerTo(id);
        if (req == null) {
          return;
        }
        if (req.freeze) {
          throw new ProtocolException(
              Frame.ERR_OUT_OF_ORDER, "request " + id + " is a freeze, not a takeover");
        }
        finish(req, new HandoffOutcome.Taken(this, id));
      }
      default ->
          throw new ProtocolException(Frame.ERR_UNKNOWN_TYPE, "unknown message type " + f.type());
    }
  }

  private void hello(ByteBuffer p) throws ProtocolException, SyscallException, Hangup {
    if (version != 0) {
      throw new ProtocolException(Frame.ERR_OUT_OF_ORDER, "HELLO came twice");
    }
    int offered = p.getShort() & 0xffff;
    if (offered < 1 || offered > Frame.VERSION) {
      throw new Hangup(
          "protocol version "
              + offered
              + " is not spoken here; this agent speaks 1 to "
              + Frame.VERSION);
    }
    if (p.remaining() > Frame.MAX_NAME) {
      throw new ProtocolException(
          Frame.ERR_TOO_LARGE,
          "HELLO: the application name is "
              + p.remaining()
              + " bytes; at most "
              + Frame.MAX_NAME
              + " are allowed (UTF-8). Say HELLO again with a shorter name");
    }
    name = StandardCharsets.UTF_8.decode(p).toString();
    version = Math.min(offered, Frame.VERSION);
    channel.write(
        Frame.WELCOME,
        ByteBuffer.allocate(6).putShort((short) version).putInt(Frame.MAX_FRAME).array());
  }

  /**
   * Proves to the application that it talks to this node's agent (version 3): the agent's TLS key
   * signs its nonce and the namespace the session's ports are filed under ({@link AgentProof}).
   */
  private void prove(ByteBuffer p) throws ProtocolException, SyscallException {
    if (version < 3) {
      throw new ProtocolException(Frame.ERR_UNKNOWN_TYPE, "PROVE is a version 3 message");
    }
    if (p.remaining() != AgentProof.NONCE_BYTES) {
      throw new ProtocolException(
          Frame.ERR_MALFORMED,
          "PROVE carries " + p.remaining() + " bytes; its nonce is " + AgentProof.NONCE_BYTES);
    }
    byte[] nonce = new byte[AgentProof.NONCE_BYTES];
    p.get(nonce);
    AgentProof.Key key;
    try {
      key = server.proofKey();
    } catch (RuntimeException e) {
      LOG.warning(() -> "no key to prove this agent with: " + e.getMessage());
      key = null;
    }
    if (key == null) {
      throw new ProtocolException(
          Frame.ERR_CANNOT_PROVE, "this agent holds no key to prove itself with");
    }
    try {
      channel.write(Frame.PROOF, AgentProof.answer(key, nonce, netns));
    } catch (java.security.GeneralSecurityException e) {
      throw new ProtocolException(
          Frame.ERR_CANNOT_PROVE, "signing the proof failed: " + e.getMessage());
    }
  }

  private void register(ByteBuffer p) throws ProtocolException, SyscallException {
    int count = p.getShort() & 0xffff;
    List<Integer> asked = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      asked.add(p.getShort() & 0xffff);
    }
    // All or none: a REGISTER that fails leaves the session's ports as they were.
    String refused = server.registerAll(asked, this);
    if (refused != null) {
      throw new ProtocolException(Frame.ERR_PORT_TAKEN, refused + "; no port was registered");
    }
    ports.addAll(asked);
    List<Integer> now = List.copyOf(ports);
    ByteBuffer reply = ByteBuffer.allocate(2 + 2 * now.size()).putShort((short) now.size());
    now.forEach(port -> reply.putShort(port.shortValue()));
    channel.write(Frame.REGISTERED, reply.array());
  }

  private void frozen(long id, long length, int fd) throws ProtocolException, SyscallException {
    Pending req = pending.get(id);
    if (req == null && abandoned.contains(id)) {
      lateFrozen(id, length, fd);
      return;
    }
    if (req == null || !req.freeze || req.started) {
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
    // The same four addresses can exist in two namespaces: only the socket of the pod's own
    // connection (the pod this session is in, which is why it was asked) is taken.
    String elsewhere = outsideNamespace(socket);
    if (elsewhere != null) {
      socket.close();
      throw new ProtocolException(Frame.ERR_MALFORMED, "FROZEN " + id + ": " + elsewhere);
    }
    if (length < 0 || length > server.maxStateBytes()) {
      socket.close();
      throw new ProtocolException(
          Frame.ERR_TOO_LARGE,
          "state of " + length + " bytes; this agent takes at most " + server.maxStateBytes());
    }
    boolean appends = false;
    if (req.precopy != null) {
      Precopy pc = req.precopy;
      synchronized (pc) {
        if (!pc.declined && pc.partRemaining > 0) {
          socket.close();
          expire(req, this + " answered " + req.what() + " before finishing its last STATE");
          returned(id, "FROZEN came before the last STATE was whole; the connection stays yours");
          throw new ProtocolException(
              Frame.ERR_OUT_OF_ORDER,
              "FROZEN " + id + " came before the BLOB frames of the last STATE of " + pc.id);
        }
        appends = !pc.declined;
        end(pc);
      }
    }
    synchronized (req) {
      if (req.finished) { // given up on between the lookup and now
        socket.close();
        lateFrozen(id, length, -1);
        return;
      }
      req.socket = socket;
      req.blob = new StateBuffer(length);
      req.appends = appends;
      req.started = true;
    }
    finishIfWhole(req);
  }

  /** Why {@code socket} is not one of this session's pod's sockets; null if it is. */
  private String outsideNamespace(TcpSocket socket) {
    try {
      long ns = Descriptors.socketNamespace(socket.fd());
      return ns == netns
          ? null
          : "the socket lives in network namespace "
              + ns
              + ", not in this application's ("
              + netns
              + ")";
    } catch (SyscallException e) {
      return "the socket's network namespace cannot be read (" + e.getMessage() + ")";
    }
  }

  /** A freeze answered after the agent gave up on it: the connection stays the application's. */
  private void lateFrozen(long id, long length, int fd) throws SyscallException {
    Descriptors.close(fd);
    LOG.info(
        () ->
            this
                + " answered freeze "
                + id
                + " after the agent had given up on it: returned, its "
                + length
                + " bytes of state are dropped");
    returned(id, "the freeze timed out before the socket came; the connection stays yours");
  }

  private void blob(long id, ByteBuffer chunk) throws ProtocolException {
    Pending req = pending.get(id);
    if (req != null) {
      synchronized (req) {
        if (!req.finished) {
          if (req.blob == null) {
            throw new ProtocolException(
                Frame.ERR_OUT_OF_ORDER, "BLOB for " + req.what() + " before its FROZEN");
          }
          if (chunk.remaining() > req.blob.remaining()) {
            throw new ProtocolException(
                Frame.ERR_TOO_LARGE,
                "BLOB " + id + " runs past the announced length " + req.blob.length());
          }
          req.blob.put(chunk);
        }
      }
      finishIfWhole(req);
      return;
    }
    Precopy pc = precopies.get(id);
    if (pc != null) {
      synchronized (pc) {
        if (pc.active) {
          if (chunk.remaining() > pc.partRemaining) {
            throw new ProtocolException(
                Frame.ERR_TOO_LARGE, "BLOB " + id + " runs past the length its STATE announced");
          }
          byte[] data = new byte[chunk.remaining()];
          chunk.get(data);
          pc.partRemaining -= data.length;
          pc.listener.chunk(data);
        }
      }
      return;
    }
    if (!abandoned.contains(id)) {
      throw new ProtocolException(
          Frame.ERR_UNKNOWN_REQUEST, "BLOB for request " + id + ", which expects none");
    }
    // The rest of a state the agent gave up on: dropped, said once when it gave up.
  }

  private void state(long id, int kind, long length) throws ProtocolException {
    Precopy pc = precopies.get(id);
    if (pc == null) {
      if (abandoned.contains(id)) {
        return; // offered before the application saw PRECOPY_STOP: not wanted any more
      }
      throw new ProtocolException(Frame.ERR_UNKNOWN_REQUEST, "no pre-copy " + id + " is going on");
    }
    if (kind != Frame.STATE_SNAPSHOT && kind != Frame.STATE_APPEND) {
      throw new ProtocolException(Frame.ERR_MALFORMED, "STATE " + id + " of unknown kind " + kind);
    }
    if (length < 0 || length > server.maxStateBytes()) {
      throw new ProtocolException(
          Frame.ERR_TOO_LARGE,
          "STATE of " + length + " bytes; this agent takes at most " + server.maxStateBytes());
    }
    synchronized (pc) {
      if (!pc.active) {
        return;
      }
      if (pc.partRemaining > 0) {
        throw new ProtocolException(
            Frame.ERR_OUT_OF_ORDER,
            "STATE "
                + id
                + " before the BLOB frames of the previous one ("
                + pc.partRemaining
                + " bytes to go)");
      }
      pc.partRemaining = length;
      if (kind == Frame.STATE_SNAPSHOT) {
        pc.listener.snapshot(length);
      } else {
        pc.listener.append(length);
      }
    }
  }

  private void declined(long id, String reason) throws ProtocolException {
    if (prestateIds.contains(id)) {
      Prestate ps = prestates.get(id);
      if (ps != null && ps.end(this + " declined the state handed ahead: " + reason)) {
        LOG.info(() -> this + " declined " + ps + ": " + reason);
      }
      return; // a DECLINED that crosses a drop or a takeover on the wire is no error either
    }
    Precopy pc = precopies.get(id);
    if (pc != null) {
      synchronized (pc) {
        if (pc.active) {
          pc.declined = true;
          end(pc);
          pc.listener.ended(this + " declined the pre-copy: " + reason);
        }
      }
      return;
    }
    Pending req = answerTo(id);
    if (req != null) {
      finish(req, new HandoffOutcome.Declined(reason));
    }
  }

  /** The request {@code id} answers; null, quietly, for a pre-copy stopped meanwhile. */
  private Pending answerTo(long id) throws ProtocolException {
    Pending req = pending.get(id);
    if (req != null) {
      return req;
    }
    if (abandoned.contains(id)) {
      if (precopyIds.contains(id)) {
        return null;
      }
      throw new ProtocolException(
          Frame.ERR_TIMED_OUT, "request " + id + " timed out before this answer came");
    }
    throw new ProtocolException(Frame.ERR_UNKNOWN_REQUEST, "no request " + id + " is waiting");
  }

  private void finishIfWhole(Pending req) {
    TcpSocket socket;
    byte[] blob;
    boolean appends;
    synchronized (req) {
      if (req.finished || req.blob == null || !req.blob.whole()) {
        return;
      }
      socket = req.socket;
      blob = req.blob.bytes();
      appends = req.appends;
    }
    finish(req, new HandoffOutcome.Frozen(this, req.id, socket, blob, appends));
  }

  /** Completes {@code req} with {@code outcome} unless it was completed or given up on first. */
  private boolean finish(Pending req, HandoffOutcome outcome) {
    if (!req.finish(outcome)) {
      return false;
    }
    pending.remove(req.id);
    return true;
  }

  /**
   * Gives up on {@code req} (the application went silent, or the caller stopped waiting): it is
   * answered {@link HandoffOutcome.NotAnswered}, and what the application still sends for it is
   * answered RETURNED (a socket) or dropped (its state), with one log line here, not one a frame.
   */
  void expire(Pending req, String why) {
    TcpSocket socket;
    int received;
    synchronized (req) {
      if (!req.finish(new HandoffOutcome.NotAnswered(why))) {
        return;
      }
      socket = req.socket;
      received = req.blob == null ? 0 : req.blob.filled();
    }
    abandoned.add(req.id); // before the removal: a frame that misses one finds the other
    pending.remove(req.id);
    if (req.precopy != null) {
      synchronized (req.precopy) {
        if (req.precopy.active) {
          end(req.precopy);
          req.precopy.listener.ended(why);
        }
      }
    }
    if (socket != null) {
      // The application holds its descriptor until it hears how the handover ended.
      socket.close();
      LOG.warning(
          () ->
              why
                  + ": gave up after "
                  + received
                  + " of "
                  + req.blob.length()
                  + " bytes of state; the rest is dropped and the connection returned");
      try {
        returned(req.id, why + "; the connection stays yours");
      } catch (SyscallException e) {
        LOG.info(() -> this + ": telling it so failed: " + e.getMessage());
      }
    }
  }

  /** Ends a pre-copy (caller holds its lock): its late frames are dropped from now on. */
  private void end(Precopy pc) {
    pc.active = false;
    abandoned.add(pc.id);
    precopies.remove(pc.id);
    precopyOf.remove(pc.connection, pc);
  }

  /** Asks the application for a connection; its answer completes {@code batch} at {@code index}. */
  Pending requestFreeze(long id, Connection c, HandoffServer.Batch batch, int index) {
    Precopy pc = precopyOf.get(c);
    if (pc != null) {
      synchronized (pc) {
        if (pc.active && pc.freezeId == 0) {
          pc.freezeId = id;
        } else {
          pc = null;
        }
      }
    }
    Pending req = new Pending(this, id, true, c, batch, index, pc);
    pending.put(id, req);
    ByteBuffer b = ByteBuffer.allocate(8 + c.encodedSize()).putLong(id);
    c.writeTo(b);
    send(req, Frame.FREEZE, b.array(), -1, null);
    return req;
  }

  /**
   * Hands a restored socket and its state to the application: only the tail (TAKEOVER_APPEND) when
   * {@code in} appends to a prestate this application holds whole; the whole state (TAKEOVER)
   * otherwise. Either way the application forgets its prestate of the connection afterwards.
   */
  Pending requestTakeover(
      long id, HandoffServer.Incoming in, HandoffServer.Batch batch, int index) {
    Connection c = in.connection();
    Pending req = new Pending(this, id, false, c, batch, index, null);
    req.started = true; // nothing streams back: the whole answer is one frame
    Prestate ps = prestateOf.get(c);
    boolean append = in.appendsToPrestate() && ps != null && ps.held();
    if (ps != null) {
      ps.end("taken over by request " + id);
    }
    byte[] state;
    if (append || !in.appendsToPrestate()) {
      state = in.state();
    } else {
      String why = ps == null ? "no state was handed ahead to " + this : ps.endedBecause();
      try {
        state = in.whole() == null ? null : in.whole().get();
      } catch (RuntimeException e) {
        LOG.warning(() -> "putting the whole state of " + c + " together failed: " + e);
        state = null;
      }
      if (state == null) {
        req.finish(
            new HandoffOutcome.Declined(
                "the application does not hold the state handed ahead ("
                    + why
                    + "), and no whole state was given"));
        return req;
      }
      LOG.info(() -> c + ": the whole state goes with the takeover (" + why + ")");
    }
    pending.put(id, req);
    ByteBuffer b;
    if (append) {
      b = ByteBuffer.allocate(24 + c.encodedSize()).putLong(id).putLong(ps.id());
      b.putLong(state.length);
    } else {
      b = ByteBuffer.allocate(16 + c.encodedSize()).putLong(id).putLong(state.length);
    }
    c.writeTo(b);
    send(req, append ? Frame.TAKEOVER_APPEND : Frame.TAKEOVER, b.array(), in.socket().fd(), state);
    return req;
  }

  /** A new prestate of {@code c}; one handed ahead before for it is void (the app replaces it). */
  Prestate newPrestate(long id, Connection c) {
    Prestate ps = new Prestate(this, id, c);
    prestateIds.add(id);
    prestates.put(id, ps);
    Prestate before = prestateOf.put(c, ps);
    if (before != null) {
      before.end("replaced by " + ps);
    }
    return ps;
  }

  /** Writes a PRESTATE header; false (and the prestate ended) if the application is unreachable. */
  boolean sendPrestatePart(Prestate ps, int kind, long length) {
    Connection c = ps.connection();
    ByteBuffer b =
        ByteBuffer.allocate(17 + c.encodedSize()).putLong(ps.id()).put((byte) kind).putLong(length);
    c.writeTo(b);
    return writeForPrestate(ps, () -> channel.write(Frame.PRESTATE, b.array()));
  }

  boolean sendPrestateChunk(Prestate ps, byte[] data) {
    return writeForPrestate(ps, () -> channel.writeBlobs(ps.id(), data));
  }

  void sendPrestateDrop(Prestate ps) {
    Connection c = ps.connection();
    ByteBuffer b = ByteBuffer.allocate(8 + c.encodedSize()).putLong(ps.id());
    c.writeTo(b);
    if (broken) {
      return;
    }
    try {
      channel.write(Frame.PRESTATE_DROP, b.array());
    } catch (SyscallException e) {
      broken = true;
      LOG.info(() -> this + ": dropping " + ps + " failed: " + e.getMessage());
    }
  }

  private interface Write {
    void run() throws SyscallException;
  }

  private boolean writeForPrestate(Prestate ps, Write write) {
    if (broken) {
      ps.end(this + " could not be reached: an earlier write to it failed");
      return false;
    }
    try {
      write.run();
      return true;
    } catch (SyscallException e) {
      // A frame may be half written: nothing after it on this session can be trusted.
      broken = true;
      ps.end("handing the state ahead to " + this + " failed: " + e.getMessage());
      return false;
    }
  }

  /** Called once a prestate has ended: forgets it here (its id stays known, for late answers). */
  void forget(Prestate ps) {
    prestates.remove(ps.id(), ps);
    prestateOf.remove(ps.connection(), ps);
  }

  private void send(Pending req, int type, byte[] payload, int fd, byte[] blob) {
    if (broken) {
      expire(req, this + " could not be reached: an earlier write to it failed");
      return;
    }
    try {
      channel.write(type, payload, fd);
      if (blob != null) {
        channel.writeBlobs(req.id, blob);
      }
      // Silence is counted from here: the application cannot answer what it has not been sent.
      req.sentAt = System.nanoTime();
    } catch (SyscallException e) {
      broken = true;
      expire(req, "asking " + this + " failed: " + e.getMessage());
    }
  }

  /** Asks the application to offer {@code c}'s state ahead of the freeze. */
  PrecopyHandle requestPrecopy(long id, Connection c, PrecopyListener listener) {
    if (version < 2) {
      listener.ended(this + " speaks protocol version 1, which has no pre-copy");
      return () -> {};
    }
    Precopy pc = new Precopy(id, c, listener);
    Precopy before = precopyOf.put(c, pc);
    if (before != null) {
      stop(before);
    }
    precopyIds.add(id);
    precopies.put(id, pc);
    ByteBuffer b = ByteBuffer.allocate(8 + c.encodedSize()).putLong(id);
    c.writeTo(b);
    try {
      channel.write(Frame.PRECOPY, b.array());
    } catch (SyscallException e) {
      synchronized (pc) {
        if (pc.active) {
          end(pc);
          listener.ended("asking " + this + " failed: " + e.getMessage());
        }
      }
    }
    return () -> stop(pc);
  }

  private void stop(Precopy pc) {
    boolean tell;
    synchronized (pc) {
      if (!pc.active) {
        return;
      }
      tell = pc.freezeId == 0; // after a FREEZE the application ends it itself
      end(pc);
    }
    if (tell) {
      try {
        channel.write(Frame.PRECOPY_STOP, ByteBuffer.allocate(8).putLong(pc.id).array());
      } catch (SyscallException e) {
        LOG.info(() -> this + ": stopping pre-copy " + pc.id + " failed: " + e.getMessage());
      }
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
    for (Pending req : List.copyOf(pending.values())) {
      TcpSocket socket;
      synchronized (req) {
        if (!req.finish(new HandoffOutcome.NotAnswered(this + " closed its session"))) {
          continue;
        }
        socket = req.socket;
      }
      if (socket != null) {
        socket.close();
      }
    }
    pending.clear();
    for (Prestate ps : List.copyOf(prestates.values())) {
      ps.end(this + " closed its session");
    }
    for (Precopy pc : List.copyOf(precopies.values())) {
      synchronized (pc) {
        if (pc.active) {
          end(pc);
          pc.listener.ended(this + " closed its session");
        }
      }
    }
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
