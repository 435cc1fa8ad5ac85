// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import dev.ferry.protocol.AgentProof;
import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A server's session with its node's Ferry agent (docs/handoff-protocol.md). In a few lines:
 *
 * <pre>{@code
 * FerryAgent ferry = FerryAgent.connect(FerryAgent.DEFAULT_SOCKET, "token-streamer");
 * ferry.register(8080, new MigrationHandler() {
 *   public Handover freeze(Connection c) {
 *     Stream s = streams.get(c);
 *     s.pause();                                   // finish the write in progress
 *     return Handover.give(OwnSockets.find(c), s.state(), s);
 *   }
 *   public Takeover takeover(Connection c, byte[] state) {
 *     Stream s = Stream.restore(state);            // check it first
 *     return Takeover.accept(socket -> s.continueOn(socket));
 *   }
 * });
 * }</pre>
 *
 * <p>Closing the session (or the process ending) unregisters the ports; connections keep working,
 * they just cannot move.
 */
public final class FerryAgent implements AutoCloseable {
  public static final Path DEFAULT_SOCKET = Path.of("/run/ferry/handoff.sock");

  private static final System.Logger LOG = System.getLogger(FerryAgent.class.getName());
  private static final long REPLY_TIMEOUT_MS = 10_000;
  private static final int HELLO_TIMEOUT_MS = 5_000;

  private final Path socket;
  private final String name;
  // The CA the agent's proof must lead to (protocol version 3); null: no proof is asked.
  private final List<X509Certificate> agentCa;
  // Replaced when the agent restarts and the session is opened again.
  private volatile FrameChannel channel;
  private final Map<Integer, MigrationHandler> handlers = new ConcurrentHashMap<>();
  private final Map<Long, Given> given = new ConcurrentHashMap<>();
  private final Map<Long, Arriving> arriving = new ConcurrentHashMap<>();
  private final Map<Long, Offer> offers = new ConcurrentHashMap<>();
  private final Map<Connection, Offer> offerOf = new ConcurrentHashMap<>();
  // State the agent handed ahead of a takeover (PRESTATE), by connection and by request id.
  private final Map<Connection, Prestate> prestateOf = new ConcurrentHashMap<>();
  private final Map<Long, Prestate> prestates = new ConcurrentHashMap<>();
  // Takeovers declined on arrival: how many of their BLOB bytes are still to be dropped.
  private final Map<Long, Long> unwanted = new ConcurrentHashMap<>();
  // The protocol version the agent agreed to in WELCOME: 1 (no pre-copy), 2 or 3 (proof).
  private volatile int version;
  private final ExecutorService workers;

  /**
   * Sends the answers of freezes made on the server's own threads ({@link
   * MigrationHandler#freezeLater}), one after another: they share the session's socket anyway.
   */
  private final ExecutorService answers;

  private final Thread reader;
  private volatile CompletableFuture<ByteBuffer> reply;
  private volatile boolean closed;

  /** A socket handed to the agent, its fate not yet known. */
  private record Given(int fd, Handover.AfterHandover then) {}

  /**
   * A connection the agent is handing us: its socket, then its state, then its go-ahead. With a
   * prestate, {@code state} is only the tail that follows it.
   */
  private static final class Arriving {
    final Connection connection;
    final TcpSocket socket;
    final byte[] state;
    final Prestate prestate; // or null
    int received;
    Takeover.Accept accepted;

    Arriving(Connection connection, TcpSocket socket, byte[] state, Prestate prestate) {
      this.connection = connection;
      this.socket = socket;
      this.state = state;
      this.prestate = prestate;
    }

    /** The whole state: what was handed ahead, then the tail; the prestate's parts let go. */
    byte[] whole() {
      return prestate == null ? state : prestate.assemble(state);
    }
  }

  /**
   * State the agent handed ahead of a connection's takeover (PRESTATE). Either the SDK keeps it:
   * the last snapshot and the appends after it, each part in an array of exactly its length, filled
   * by its BLOB frames, put together into one array only when TAKEOVER_APPEND has brought the tail;
   * or the server takes it in as it arrives ({@link IncomingState}) and the SDK only counts.
   */
  private static final class Prestate {
    final long id;
    final Connection connection;
    final IncomingState intake; // or null: the parts are kept here
    final java.util.List<byte[]> parts = new java.util.ArrayList<>();
    long total;
    long partLength; // of the last part
    long filled; // bytes of the last part received so far
    private final java.util.concurrent.atomic.AtomicBoolean ended =
        new java.util.concurrent.atomic.AtomicBoolean();

    Prestate(long id, Connection connection, IncomingState intake) {
      this.id = id;
      this.connection = connection;
      this.intake = intake;
    }

    boolean complete() {
      return filled == partLength;
    }

    /**
     * Begins a part of {@code length} bytes (the intake has been told); returns why it cannot be
     * kept, or null.
     */
    String part(long length) {
      if (intake == null) {
        if (total + length > MAX_STATE) {
          return "a state of " + (total + length) + " bytes is more than one array holds";
        }
        try {
          parts.add(new byte[(int) length]);
        } catch (OutOfMemoryError e) {
          return "no memory for " + length + " more bytes of state";
        }
      }
      total += length;
      partLength = length;
      filled = 0;
      return null;
    }

    /**
     * Takes the next bytes of the last part, or passes them to the intake; false if they run past
     * its length.
     */
    boolean blob(ByteBuffer p) throws Exception {
      int n = p.remaining();
      if (n > partLength - filled) {
        return false;
      }
      if (n == 0) {
        return true;
      }
      if (intake == null) {
        p.get(parts.get(parts.size() - 1), (int) filled, n);
        filled += n;
      } else {
        byte[] chunk = new byte[n];
        p.get(chunk);
        filled += n;
        intake.bytes(chunk);
      }
      return true;
    }

    /** True once, for whoever ends the intake first: its takeover, or its being dropped. */
    boolean end() {
      return ended.compareAndSet(false, true);
    }

    /** One array of exactly prestate + tail; each part is let go of once copied. */
    synchronized byte[] assemble(byte[] tail) {
      byte[] out = new byte[Math.toIntExact(total + tail.length)];
      int at = 0;
      for (int i = 0; i < parts.size(); i++) {
        byte[] part = parts.set(i, null);
        System.arraycopy(part, 0, out, at, part.length);
        at += part.length;
      }
      System.arraycopy(tail, 0, out, at, tail.length);
      parts.clear();
      return out;
    }
  }

  /** The largest state the SDK puts together in one array. */
  private static final long MAX_STATE = Integer.MAX_VALUE - 8;

  private FerryAgent(Opened opened, Path socket, String name, List<X509Certificate> agentCa) {
    this.agentCa = agentCa;
    this.channel = opened.channel();
    this.version = opened.version();
    this.socket = socket;
    this.name = name;
    ThreadPoolExecutor pool =
        new ThreadPoolExecutor(
            1,
            Integer.MAX_VALUE,
            60,
            TimeUnit.SECONDS,
            new SynchronousQueue<>(),
            r -> {
              Thread t = new Thread(r, "ferry-handoff-" + name);
              t.setDaemon(true);
              return t;
            });
    // One thread waits from the start: the first freeze does not wait for a thread to be made.
    pool.prestartCoreThread();
    // Nor for what a search of this process's sockets loads the first time (OwnSockets.find).
    pool.execute(OwnSockets::rehearse);
    // Nor for what handing a descriptor over the session runs the first time.
    pool.execute(HandoverRehearsal::run);
    this.workers = pool;
    this.answers =
        java.util.concurrent.Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "ferry-answers-" + name);
              t.setDaemon(true);
              return t;
            });
    // Its thread is made on the first task: made now, not by the first freeze's answer.
    answers.execute(() -> {});
    this.reader = new Thread(this::readLoop, "ferry-agent-" + name);
    reader.setDaemon(true);
  }

  /**
   * Opens a session with the agent listening at {@code socket}.
   *
   * @param name how the agent names this server in its logs and status
   * @throws IOException when no agent listens there, or it speaks another protocol version
   */
  public static FerryAgent connect(Path socket, String name) throws IOException {
    return connect(socket, name, (List<X509Certificate>) null);
  }

  /**
   * As {@link #connect(Path, String)}, and only once the agent has proved, with the key of its TLS
   * certificate, that it is a Ferry agent whose certificate {@code agentCa} (a PEM file: the
   * cluster CA that issues the agents' certificates) issued, answering for this process's own
   * network namespace (protocol version 3; docs/handoff-protocol.md, "Proof"). Whatever listens at
   * {@code socket} otherwise is never told a port, nor given a connection. Sessions opened again
   * after an agent restart are checked the same way.
   *
   * @throws AgentProof.Refused naming the check the agent's answer failed
   * @throws IOException as {@link #connect(Path, String)}, or when the agent predates version 3
   */
  public static FerryAgent connect(Path socket, String name, Path agentCa) throws IOException {
    return connect(socket, name, AgentProof.readCas(agentCa));
  }

  private static FerryAgent connect(Path socket, String name, List<X509Certificate> agentCa)
      throws IOException {
    int length = name.getBytes(StandardCharsets.UTF_8).length;
    if (length > Frame.MAX_NAME) {
      throw new IllegalArgumentException(
          "name is "
              + length
              + " bytes of UTF-8; the agent takes at most "
              + Frame.MAX_NAME
              + ": give FerryAgent.connect a shorter one");
    }
    FerryAgent agent = new FerryAgent(open(socket, name, agentCa), socket, name, agentCa);
    agent.reader.start();
    return agent;
  }

  /** A session just opened, and the version agreed for it. */
  private record Opened(FrameChannel channel, int version) {}

  /**
   * Opens a session at the highest version both ends speak: HELLO 3 first; an agent that predates
   * it answers with an ERROR, and is greeted again with the version below. With {@code agentCa},
   * the agent must prove itself before the session is used.
   */
  private static Opened open(Path socket, String name, List<X509Certificate> agentCa)
      throws IOException {
    for (int hello = Frame.VERSION; ; hello--) {
      try {
        Opened opened = open(socket, name, hello);
        if (agentCa != null) {
          requireProof(opened, socket, agentCa);
        }
        return opened;
      } catch (OlderAgent e) {
        if (hello == 1) {
          throw e;
        }
      }
    }
  }

  /**
   * Asks the agent to prove who it is (PROVE) and checks its PROOF, before any port is registered.
   * The session is closed if the check fails.
   */
  private static void requireProof(Opened opened, Path socket, List<X509Certificate> agentCa)
      throws IOException {
    FrameChannel ch = opened.channel();
    try {
      if (opened.version() < 3) {
        throw new AgentProof.Refused(
            "the agent at "
                + socket
                + " speaks protocol version "
                + opened.version()
                + ", which cannot prove that it is the Ferry agent: upgrade the agent, or connect"
                + " without a CA");
      }
      byte[] nonce = new byte[AgentProof.NONCE_BYTES];
      RANDOM.nextBytes(nonce);
      ch.write(Frame.PROVE, nonce);
      if (!ch.socket().awaitReadable(HELLO_TIMEOUT_MS)) {
        throw new AgentProof.Refused(
            "the agent at " + socket + " did not answer PROVE within " + HELLO_TIMEOUT_MS + " ms");
      }
      Frame proof = ch.read();
      if (proof == null || proof.type() != Frame.PROOF) {
        throw new AgentProof.Refused(
            "the agent at " + socket + " answered PROVE with " + describe(proof) + ", not PROOF");
      }
      long ownNetns = ((Number) Files.getAttribute(OWN_NETNS, "unix:ino")).longValue();
      AgentProof.verify(proof.payload(), nonce, ownNetns, agentCa, Instant.now());
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  private static final Path OWN_NETNS = Path.of("/proc/self/ns/net");
  private static final SecureRandom RANDOM = new SecureRandom();

  /** The agent refused our HELLO's version. */
  private static final class OlderAgent extends IOException {
    OlderAgent(String message) {
      super(message);
    }
  }

  private static Opened open(Path socket, String name, int hello) throws IOException {
    UnixSocket unix;
    try {
      unix = UnixSocket.connect(socket);
    } catch (SyscallException e) {
      throw new IOException(
          "no Ferry agent at "
              + socket
              + " ("
              + e.getMessage()
              + "); is the agent's handoff socket mounted into this pod?",
          e);
    }
    FrameChannel channel = new FrameChannel(unix);
    byte[] text = name.getBytes(StandardCharsets.UTF_8);
    channel.write(
        Frame.HELLO,
        ByteBuffer.allocate(2 + text.length).putShort((short) hello).put(text).array());
    // An agent that accepts and never answers (hung, or not Ferry) must not hold this server, or
    // its reconnecting thread, forever.
    if (!unix.awaitReadable(HELLO_TIMEOUT_MS)) {
      channel.close();
      throw new IOException(
          "the agent at " + socket + " did not answer HELLO within " + HELLO_TIMEOUT_MS + " ms");
    }
    Frame welcome = channel.read();
    if (welcome == null || welcome.type() != Frame.WELCOME) {
      channel.close();
      String why =
          "the agent at " + socket + " answered HELLO with " + describe(welcome) + ", not WELCOME";
      throw hello > 1 && welcome != null && welcome.type() == Frame.ERROR
          ? new OlderAgent(why)
          : new IOException(why);
    }
    int agreed = ByteBuffer.wrap(welcome.payload()).getShort() & 0xffff;
    if (agreed < 1 || agreed > hello) {
      channel.close();
      throw new IOException(
          "the agent at " + socket + " answered HELLO " + hello + " with version " + agreed);
    }
    return new Opened(channel, agreed);
  }

  /** The protocol version agreed with the agent: 2, or 1 with an agent that predates pre-copy. */
  public int protocolVersion() {
    return version;
  }

  /**
   * Registers {@code port}: the agent may now move this server's connections on it.
   *
   * @throws IOException when another server on this node registered the port first
   */
  public synchronized void register(int port, MigrationHandler handler) throws IOException {
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port must be 1..65535, got " + port);
    }
    handlers.put(port, handler);
    CompletableFuture<ByteBuffer> answer = new CompletableFuture<>();
    reply = answer;
    channel.write(
        Frame.REGISTER, ByteBuffer.allocate(4).putShort((short) 1).putShort((short) port).array());
    try {
      answer.get(REPLY_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      handlers.remove(port);
      throw new IOException("registering port " + port + ": " + e.getCause().getMessage(), e);
    } catch (TimeoutException e) {
      handlers.remove(port);
      throw new IOException("the agent did not answer REGISTER " + port + " within 10 s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while registering port " + port, e);
    }
  }

  /**
   * Reads the agent's requests. When the agent goes away (a restart, an upgrade) the session is
   * opened again and every port registered again, so that a restarted agent can still hand back the
   * connections it saved.
   */
  private void readLoop() {
    while (!closed) {
      readSession();
      endSession();
      if (!closed) {
        reopen();
      }
    }
  }

  private void readSession() {
    try {
      Frame f;
      while ((f = channel.read()) != null) {
        try {
          handle(f);
        } catch (ProtocolException e) {
          LOG.log(Level.WARNING, "the agent sent something unexpected: " + e.getMessage());
          channel.error(e.code(), e.getMessage());
        }
      }
    } catch (IOException e) {
      if (!closed) {
        LOG.log(Level.WARNING, "handoff session with the Ferry agent ended: " + e.getMessage());
      }
    }
  }

  private void reopen() {
    long pause = 100;
    while (!closed) {
      try {
        Opened opened = open(socket, name, agentCa);
        FrameChannel fresh = opened.channel();
        for (int port : handlers.keySet()) {
          fresh.write(
              Frame.REGISTER,
              ByteBuffer.allocate(4).putShort((short) 1).putShort((short) port).array());
          Frame answer = fresh.read();
          if (answer == null || answer.type() != Frame.REGISTERED) {
            fresh.close();
            throw new IOException("registering port " + port + " again: " + describe(answer));
          }
        }
        channel = fresh;
        version = opened.version();
        LOG.log(Level.INFO, "handoff session with the Ferry agent open again at " + socket);
        return;
      } catch (AgentProof.Refused e) {
        LOG.log(Level.WARNING, "not opening the handoff session again: " + e.getMessage());
      } catch (IOException e) {
        LOG.log(Level.DEBUG, "the Ferry agent is not back yet: " + e.getMessage());
      }
      try {
        Thread.sleep(pause);
      } catch (InterruptedException e) {
        return;
      }
      pause = Math.min(pause * 2, 2000);
    }
  }

  private void handle(Frame f) throws ProtocolException {
    ByteBuffer p = ByteBuffer.wrap(f.payload());
    // Only a takeover carries a descriptor (the restored socket); any other is closed unused.
    if (f.fd() >= 0 && f.type() != Frame.TAKEOVER && f.type() != Frame.TAKEOVER_APPEND) {
      Descriptors.close(f.fd());
    }
    switch (f.type()) {
      case Frame.REGISTERED -> complete(p);
      case Frame.ERROR -> {
        int code = p.getShort() & 0xffff;
        String text = StandardCharsets.UTF_8.decode(p).toString();
        CompletableFuture<ByteBuffer> waiting = reply;
        if (waiting != null && !waiting.isDone()) {
          waiting.completeExceptionally(new IOException(text + " (error " + code + ")"));
        } else {
          LOG.log(Level.WARNING, "the Ferry agent reports error " + code + ": " + text);
        }
      }
      case Frame.FREEZE -> {
        long id = p.getLong();
        Connection c = Connection.readFrom(p);
        // The FREEZE ends any pre-copy of c: its answer closes the offer (see answerFreeze).
        Offer offer = offerOf.remove(c);
        if (offer != null) {
          offers.remove(offer.id, offer);
        }
        freeze(id, c, offer);
      }
      case Frame.PRECOPY -> {
        long id = p.getLong();
        Connection c = Connection.readFrom(p);
        Offer offer = new Offer(id, c);
        offers.put(id, offer);
        Offer before = offerOf.put(c, offer);
        if (before != null) {
          offers.remove(before.id, before);
          before.close();
        }
        workers.execute(() -> askForPrecopy(offer));
      }
      case Frame.PRECOPY_STOP -> {
        Offer offer = offers.remove(p.getLong());
        if (offer != null) {
          offerOf.remove(offer.connection, offer);
          offer.close();
        }
      }
      case Frame.RELEASED -> {
        long id = p.getLong();
        Given g = given.remove(id);
        if (g != null) {
          workers.execute(() -> released(g));
        }
        Arriving withdrawn = arriving.remove(id);
        if (withdrawn != null) {
          // A takeover the agent gave up before resuming it (the migration was rolled back): the
          // socket never goes live, and closing it, still in repair mode, tells the client nothing.
          withdrawn.socket.close();
        }
      }
      case Frame.RETURNED -> {
        Given g = given.remove(p.getLong());
        String why = StandardCharsets.UTF_8.decode(p).toString();
        if (g != null) {
          workers.execute(() -> g.then().kept(why));
        }
      }
      case Frame.TAKEOVER -> arrive(p, f.fd(), false);
      case Frame.TAKEOVER_APPEND -> arrive(p, f.fd(), true);
      case Frame.PRESTATE -> prestate(p);
      case Frame.PRESTATE_DROP -> {
        long id = p.getLong();
        Connection c = Connection.readFrom(p);
        Prestate held = prestateOf.get(c);
        if (held != null && held.id == id) {
          end(held, "the agent dropped the state " + id + " of " + c + " handed ahead");
        }
      }
      case Frame.BLOB -> {
        long id = p.getLong();
        Prestate ahead = prestates.get(id);
        if (ahead != null) {
          boolean fits;
          try {
            fits = ahead.blob(p);
          } catch (Exception | OutOfMemoryError e) {
            String why = "the server cannot take in the state of " + ahead.connection + ": " + e;
            end(ahead, why);
            declineQuietly(id, why);
            // The rest of the part is no one's: its BLOB frames are dropped without a word.
            if (ahead.partLength > ahead.filled) {
              unwanted.merge(id, ahead.partLength - ahead.filled, Long::sum);
            }
            return;
          }
          if (!fits) {
            end(ahead, "BLOB " + id + " runs past the length its PRESTATE announced");
            declineQuietly(id, "BLOB " + id + " runs past the length its PRESTATE announced");
            throw new ProtocolException(
                Frame.ERR_TOO_LARGE, "BLOB " + id + " runs past the length its PRESTATE announced");
          }
          return;
        }
        Long dropping = unwanted.get(id);
        if (dropping != null) {
          long left = dropping - p.remaining();
          if (left > 0) {
            unwanted.put(id, left);
          } else {
            unwanted.remove(id);
          }
          return;
        }
        Arriving a = arriving.get(id);
        if (a == null || p.remaining() > a.state.length - a.received) {
          throw new ProtocolException(
              Frame.ERR_UNKNOWN_REQUEST, "BLOB " + id + " was not expected");
        }
        int n = p.remaining();
        p.get(a.state, a.received, n);
        a.received += n;
        if (a.received == a.state.length) {
          workers.execute(() -> answerTakeover(id, a));
        }
      }
      case Frame.RESUMED -> {
        long id = p.getLong();
        Arriving a = arriving.remove(id);
        if (a == null || a.accepted == null) {
          throw new ProtocolException(
              Frame.ERR_UNKNOWN_REQUEST, "RESUMED " + id + " was not expected");
        }
        workers.execute(() -> a.accepted.live().accept(new MovedSocket(a.connection, a.socket)));
      }
      default ->
          throw new ProtocolException(Frame.ERR_UNKNOWN_TYPE, "unknown message type " + f.type());
    }
  }

  private void complete(ByteBuffer registered) {
    CompletableFuture<ByteBuffer> waiting = reply;
    if (waiting != null) {
      waiting.complete(registered);
    }
  }

  private void askForPrecopy(Offer offer) {
    MigrationHandler handler = handlers.get(offer.connection.local().getPort());
    try {
      if (handler == null) {
        offer.decline("port " + offer.connection.local().getPort() + " is not registered here");
      } else {
        handler.precopy(offer.connection, offer);
      }
    } catch (Exception e) {
      offer.decline("the server failed to offer the state of " + offer.connection + ": " + e);
    }
  }

  /**
   * A connection's state offered ahead of its freeze: each part is a STATE and its BLOB frames,
   * written under this object's lock so that parts, and the freeze's answer, never interleave.
   */
  private final class Offer implements StateOffer {
    final long id;
    final Connection connection;
    private boolean open = true;

    Offer(long id, Connection connection) {
      this.id = id;
      this.connection = connection;
    }

    @Override
    public boolean snapshot(byte[] state) {
      return part(Frame.STATE_SNAPSHOT, state);
    }

    @Override
    public boolean append(byte[] change) {
      return part(Frame.STATE_APPEND, change);
    }

    private synchronized boolean part(int kind, byte[] bytes) {
      if (!open) {
        return false;
      }
      try {
        channel.write(
            Frame.STATE,
            ByteBuffer.allocate(17).putLong(id).put((byte) kind).putLong(bytes.length).array());
        channel.writeBlobs(id, bytes);
        return true;
      } catch (SyscallException e) {
        // The session is gone: so is every offer made in it, and the freeze will be whole.
        open = false;
        LOG.log(
            Level.WARNING, "offering the state of " + connection + " failed: " + e.getMessage());
        return false;
      }
    }

    @Override
    public synchronized boolean isOpen() {
      return open;
    }

    @Override
    public synchronized void decline(String reason) {
      if (!open) {
        return;
      }
      open = false;
      offers.remove(id, this);
      offerOf.remove(connection, this);
      try {
        FerryAgent.this.decline(id, reason);
      } catch (SyscallException e) {
        LOG.log(Level.WARNING, "declining the pre-copy of " + connection + ": " + e.getMessage());
      }
    }

    synchronized void close() {
      open = false;
    }
  }

  /**
   * Asks the server to freeze {@code c}: without lending it a thread when it makes its answer on
   * one of its own ({@link MigrationHandler#freezeLater}), else on an SDK thread.
   */
  private void freeze(long id, Connection c, Offer offer) {
    MigrationHandler handler = handlers.get(c.local().getPort());
    java.util.concurrent.CompletionStage<Handover> later;
    try {
      later = handler == null ? null : handler.freezeLater(c);
    } catch (Exception e) {
      later = CompletableFuture.completedFuture(failedToFreeze(c, e));
    }
    if (later == null) {
      workers.execute(() -> answerFreeze(id, c, offer));
      return;
    }
    later.whenComplete(
        (answer, e) ->
            answers.execute(() -> answer(id, c, offer, e == null ? answer : failedToFreeze(c, e))));
  }

  private static Handover failedToFreeze(Connection c, Throwable e) {
    return Handover.decline("the server failed to freeze " + c + ": " + e);
  }

  private void answerFreeze(long id, Connection c, Offer offer) {
    Handover answer;
    try {
      MigrationHandler handler = handlers.get(c.local().getPort());
      answer =
          handler == null
              ? Handover.decline("port " + c.local().getPort() + " is not registered here")
              : handler.freeze(c);
    } catch (Exception e) {
      answer = failedToFreeze(c, e);
    }
    answer(id, c, offer, answer);
  }

  /** Sends {@code answer}; the end of any pre-copy of {@code c} with it. */
  private void answer(long id, Connection c, Offer offer, Handover answer) {
    if (offer == null) {
      send(id, c, answer);
      return;
    }
    // Not held while the handler runs: it may wait for a writer that is offering a part. Taken
    // once it returns, so that no part can slip in between its answer and the end of the offer.
    synchronized (offer) {
      offer.close();
      send(id, c, answer);
    }
  }

  private void send(long id, Connection c, Handover answer) {
    try {
      if (answer instanceof Handover.Give give) {
        given.put(id, new Given(give.fd(), give.then()));
        channel.write(
            Frame.FROZEN,
            ByteBuffer.allocate(16).putLong(id).putLong(give.state().length).array(),
            give.fd());
        channel.writeBlobs(id, give.state());
      } else if (answer instanceof Handover.Decline decline) {
        decline(id, decline.reason());
      }
    } catch (SyscallException e) {
      LOG.log(Level.WARNING, "answering the freeze of " + c + " failed: " + e.getMessage());
    }
  }

  private void released(Given g) {
    try {
      Descriptors.detach(g.fd());
    } catch (SyscallException e) {
      LOG.log(Level.ERROR, "could not detach the handed-over socket: " + e.getMessage());
    }
    g.then().released();
  }

  /**
   * PRESTATE: the agent hands part of a connection's state ahead of its takeover. A snapshot
   * replaces what is held for the connection; an append must follow the same prestate, whole. At a
   * snapshot the server may take the parts in itself ({@link MigrationHandler#arriving}); else the
   * SDK keeps them. What cannot be kept is declined (and forgotten): the agent then sends the whole
   * state at TAKEOVER.
   */
  private void prestate(ByteBuffer p) throws ProtocolException {
    long id = p.getLong();
    int kind = p.get() & 0xff;
    long length = p.getLong();
    Connection c = Connection.readFrom(p);
    Prestate held = prestateOf.get(c);
    MigrationHandler handler = handlers.get(c.local().getPort());
    String refused = null;
    if (kind != Frame.STATE_SNAPSHOT && kind != Frame.STATE_APPEND) {
      refused = "PRESTATE " + id + " of unknown kind " + kind;
    } else if (kind == Frame.STATE_APPEND && (held == null || held.id != id || !held.complete())) {
      refused = "no whole prestate " + id + " of " + c + " is held here to append to";
    } else if (handler == null) {
      refused = "port " + c.local().getPort() + " is not registered here";
    } else if (length < 0) {
      refused = "PRESTATE " + id + " of " + c + " announces " + length + " bytes";
    }
    if (refused == null) {
      try {
        if (kind == Frame.STATE_SNAPSHOT) {
          IncomingState intake = held == null ? null : held.intake;
          if (held != null) {
            forget(held); // replaced: its intake, if any, goes on with the new snapshot
          }
          if (intake == null) {
            intake = handler.arriving(c);
          }
          held = new Prestate(id, c, intake);
          if (intake != null) {
            intake.snapshot(length);
          }
        } else if (held.intake != null) {
          held.intake.append(length);
        }
        refused = held.part(length);
      } catch (Exception | OutOfMemoryError e) {
        refused = "the server cannot take in the state of " + c + " handed ahead: " + e;
      }
    }
    if (refused != null) {
      if (held != null) {
        end(held, refused);
      }
      declineQuietly(id, refused);
      if (length > 0) {
        unwanted.merge(id, length, Long::sum); // its BLOB frames are dropped without a word
      }
      return;
    }
    prestates.put(id, held);
    prestateOf.put(c, held);
  }

  private void forget(Prestate held) {
    prestates.remove(held.id, held);
    prestateOf.remove(held.connection, held);
  }

  /** Forgets what is held; a server taking it in hears that it is void, on this thread. */
  private void end(Prestate held, String why) {
    forget(held);
    dropped(held, why);
  }

  private static void dropped(Prestate held, String why) {
    if (held.intake != null && held.end()) {
      try {
        held.intake.dropped(why);
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, "the server failed to drop the state of " + held.connection, e);
      }
    }
  }

  private void declineQuietly(long id, String reason) {
    try {
      decline(id, reason);
    } catch (SyscallException e) {
      LOG.log(Level.WARNING, "declining request " + id + ": " + e.getMessage());
    }
  }

  /**
   * TAKEOVER (the whole state follows) or TAKEOVER_APPEND (the tail of the prestate held for the
   * connection follows). Either ends what is held for the connection; a TAKEOVER_APPEND without the
   * very prestate it names, whole, is declined: the state is never guessed.
   */
  private void arrive(ByteBuffer p, int fd, boolean appends) throws ProtocolException {
    long id = p.getLong();
    long aheadId = appends ? p.getLong() : 0;
    long length = p.getLong();
    Connection c = Connection.readFrom(p);
    Prestate held = prestateOf.get(c);
    if (held != null) {
      forget(held);
    }
    if (fd < 0 || length < 0 || length > MAX_STATE) {
      Descriptors.close(fd);
      if (held != null) {
        dropped(
            held, "TAKEOVER " + id + " of " + c + " came without a socket or with a bad length");
      }
      throw new ProtocolException(
          Frame.ERR_MALFORMED, "TAKEOVER " + id + " without a socket or with a bad length");
    }
    if (appends
        && (held == null
            || held.id != aheadId
            || !held.complete()
            || (held.intake == null && held.total + length > MAX_STATE))) {
      Descriptors.close(fd); // still in repair mode: closing it tells the client nothing
      String why =
          held == null || held.id != aheadId
              ? "no state " + aheadId + " of " + c + " was handed ahead here"
              : "the state " + aheadId + " of " + c + " handed ahead here is incomplete or too big";
      if (held != null) {
        dropped(held, why);
      }
      declineQuietly(id, why);
      // Its BLOB frames are no one's: remembered so that they are dropped without an error.
      if (length > 0) {
        unwanted.put(id, length);
      }
      return;
    }
    if (!appends && held != null) {
      dropped(held, "TAKEOVER " + id + " of " + c + " brings the whole state");
    }
    Arriving a =
        new Arriving(c, TcpSocket.adopt(fd), new byte[(int) length], appends ? held : null);
    arriving.put(id, a);
    if (length == 0) {
      workers.execute(() -> answerTakeover(id, a));
    }
  }

  private void answerTakeover(long id, Arriving a) {
    Takeover answer;
    try {
      MigrationHandler handler = handlers.get(a.connection.local().getPort());
      IncomingState intake = a.prestate == null ? null : a.prestate.intake;
      if (handler == null) {
        String why = "port " + a.connection.local().getPort() + " is not registered here";
        if (intake != null) {
          dropped(a.prestate, why);
        }
        answer = Takeover.decline(why);
      } else if (intake == null) {
        answer = handler.takeover(a.connection, a.whole());
      } else if (!a.prestate.end()) {
        answer = Takeover.decline("the state of " + a.connection + " taken in ahead was dropped");
      } else {
        answer = intake.takeover(a.state); // the tail only: the server holds the rest
        if (answer == null) {
          answer = Takeover.decline("the server gave no answer to the takeover of " + a.connection);
        }
      }
    } catch (Exception e) {
      answer = Takeover.decline("the server failed to take over " + a.connection + ": " + e);
    } catch (OutOfMemoryError e) {
      answer = Takeover.decline("no memory to put the state of " + a.connection + " together");
    }
    try {
      if (answer instanceof Takeover.Accept accept) {
        a.accepted = accept;
        channel.write(Frame.TAKEN, ByteBuffer.allocate(8).putLong(id).array());
      } else if (answer instanceof Takeover.Decline decline) {
        arriving.remove(id);
        a.socket.close(); // still in repair mode: closing it tells the client nothing
        decline(id, decline.reason());
      }
    } catch (SyscallException e) {
      LOG.log(
          Level.WARNING,
          "answering the takeover of " + a.connection + " failed: " + e.getMessage());
    }
  }

  private void decline(long id, String reason) throws SyscallException {
    byte[] text = reason.getBytes(StandardCharsets.UTF_8);
    channel.write(
        Frame.DECLINED,
        ByteBuffer.allocate(8 + Math.min(text.length, 4096))
            .putLong(id)
            .put(text, 0, Math.min(text.length, 4096))
            .array());
  }

  /** The agent went away: every handover in doubt stays the server's, every arrival is dropped. */
  private void endSession() {
    given.values().forEach(g -> workers.execute(() -> g.then().kept("the agent's session ended")));
    given.clear();
    arriving.values().forEach(a -> a.socket.close());
    // A server taking state in hears that it is void; an intake already asked to take over, not.
    arriving.values().stream()
        .filter(a -> a.prestate != null)
        .forEach(a -> dropped(a.prestate, "the agent's session ended"));
    arriving.clear();
    prestateOf.values().forEach(held -> dropped(held, "the agent's session ended"));
    prestates.clear();
    prestateOf.clear();
    unwanted.clear();
    offers.values().forEach(Offer::close);
    offers.clear();
    offerOf.clear();
    CompletableFuture<ByteBuffer> waiting = reply;
    if (waiting != null) {
      waiting.completeExceptionally(new IOException("the agent closed the session"));
    }
    channel.close();
  }

  private static String describe(Frame f) {
    if (f == null) {
      return "nothing (it closed the session)";
    }
    if (f.type() == Frame.ERROR && f.payload().length >= 2) {
      return "ERROR " + new String(f.payload(), 2, f.payload().length - 2, StandardCharsets.UTF_8);
    }
    return "message type " + f.type();
  }

  @Override
  public void close() {
    closed = true;
    channel.socket().shutdown();
    try {
      reader.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    workers.shutdown();
    answers.shutdown();
  }
}
