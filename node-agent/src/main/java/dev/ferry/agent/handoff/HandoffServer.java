// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import dev.ferry.protocol.AgentProof;
import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.Pidfd;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * The agent's end of the handoff protocol (docs/handoff-protocol.md): applications connect to its
 * Unix socket, register the ports they serve, and hand over or take over connections when the agent
 * asks. One misbehaving application gets errors; the others are not affected.
 *
 * <p>Requests go out in batches ({@link #freezeAll}, {@link #takeoverAll}): every request is sent
 * at once, then all answers are awaited together. A request is given up on only when its
 * application has been silent for too long, never because its state is large.
 */
public final class HandoffServer implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(HandoffServer.class.getName());

  private final UnixSocket listener;
  private final Duration answerTimeout;
  private final Duration stateTimeout;
  private final long maxStateBytes;
  private final HandoffLimits limits;
  private final Consumer<String> refusals;
  private final Supplier<AgentProof.Key> proofKey;

  /**
   * Who serves each port, per network namespace: two pods on one node may both serve 8080, and a
   * connection goes only to the application in its own pod's namespace.
   */
  private final Map<Registration, Session> owners = new ConcurrentHashMap<>();

  private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
  private final AtomicLong requestIds = new AtomicLong();
  private final Thread acceptor;
  private volatile boolean closed;

  private HandoffServer(
      UnixSocket listener,
      Duration answerTimeout,
      Duration stateTimeout,
      long maxStateBytes,
      HandoffLimits limits,
      Consumer<String> refusals,
      Supplier<AgentProof.Key> proofKey) {
    this.proofKey = proofKey;
    this.listener = listener;
    this.answerTimeout = answerTimeout;
    this.stateTimeout = stateTimeout;
    this.maxStateBytes = maxStateBytes;
    this.limits = limits;
    this.refusals = refusals;
    this.acceptor = new Thread(this::acceptLoop, "handoff-accept");
    acceptor.setDaemon(true);
  }

  /**
   * Listens at {@code path}. Both limits bound silence, not work: they count from the last frame
   * the application sent (or the last request the agent sent it, if later).
   *
   * @param answerTimeout how long an application may stay silent before it starts answering a
   *     freeze, or answers a takeover
   * @param stateTimeout how long it may stay silent while its state streams in (between FROZEN and
   *     its last BLOB frame); a large state that keeps coming is never cut off
   * @param maxStateBytes the largest state blob accepted for one connection
   */
  public static HandoffServer start(
      Path path, Duration answerTimeout, Duration stateTimeout, long maxStateBytes)
      throws SyscallException {
    return start(
        path, answerTimeout, stateTimeout, maxStateBytes, HandoffLimits.DEFAULTS, reason -> {});
  }

  /**
   * As {@link #start(Path, Duration, Duration, long)}, within {@code limits}.
   *
   * @param refusals told the reason ({@link Frame#errorName}) of every ERROR sent to an application
   *     and of every session refused
   */
  public static HandoffServer start(
      Path path,
      Duration answerTimeout,
      Duration stateTimeout,
      long maxStateBytes,
      HandoffLimits limits,
      Consumer<String> refusals)
      throws SyscallException {
    return start(path, answerTimeout, stateTimeout, maxStateBytes, limits, refusals, () -> null);
  }

  /**
   * As above; {@code proofKey} gives the key the agent proves itself with when an application asks
   * (PROVE, version 3), asked at each PROVE so that a renewed certificate is used; null: none.
   */
  public static HandoffServer start(
      Path path,
      Duration answerTimeout,
      Duration stateTimeout,
      long maxStateBytes,
      HandoffLimits limits,
      Consumer<String> refusals,
      Supplier<AgentProof.Key> proofKey)
      throws SyscallException {
    HandoffServer server =
        new HandoffServer(
            UnixSocket.listen(path, 64),
            answerTimeout,
            stateTimeout,
            maxStateBytes,
            limits,
            refusals,
            proofKey);
    server.acceptor.start();
    return server;
  }

  /** The key to prove this agent with (PROVE), or null when it has none. */
  AgentProof.Key proofKey() {
    return proofKey.get();
  }

  private void acceptLoop() {
    while (!closed) {
      UnixSocket client;
      try {
        client = listener.accept();
      } catch (SyscallException e) {
        if (!closed) {
          LOG.warning("accept on the handoff socket failed: " + e.getMessage());
        }
        continue;
      }
      Session session = null;
      try {
        UnixSocket.Credentials peer = client.peerCredentials();
        long netns = namespaceOf(client, peer.pid());
        String full = admit(netns);
        if (full != null) {
          refuse(client, peer, full);
          continue;
        }
        // A session that stops reading must not block the thread that writes it a request. But a
        // busy one reads late: 10,000 freezes sent at once took an application (answering them
        // on a loaded machine) over 2 s to drain, and the answer timeout broke its session. A
        // stalled write is bounded like stalled state, by the state timeout.
        client.setSendTimeout(Math.max(1, stateTimeout.toMillis()));
        FrameChannel channel = new FrameChannel(client, limits.frameTimeout().toMillis());
        session = new Session(channel, peer, netns, this);
        sessions.add(session); // only this thread adds: admit() and add() cannot interleave
        Thread t = new Thread(session, "handoff-" + peer.pid());
        t.setDaemon(true);
        t.start();
      } catch (SyscallException | RuntimeException | OutOfMemoryError e) {
        // Out of memory for one more thread included: the agent goes on serving the sessions it
        // has, and this caller gets a closed socket.
        LOG.warning(() -> "a session on the handoff socket could not be started: " + e);
        if (session != null) {
          sessions.remove(session);
        }
        client.close();
      }
    }
  }

  /** Why a session from {@code netns} cannot be served now, or null if it can (and it counts). */
  private synchronized String admit(long netns) {
    if (sessions.size() >= limits.maxSessions()) {
      return "the agent serves "
          + sessions.size()
          + " sessions, as many as it may (ferry.agent.handoff.max-sessions); try again later";
    }
    long fromThere = sessions.stream().filter(s -> s.netns() == netns).count();
    if (fromThere >= limits.maxSessionsPerNamespace()) {
      return "this network namespace has "
          + fromThere
          + " sessions open, as many as one may"
          + " (ferry.agent.handoff.max-sessions-per-namespace); close one first";
    }
    return null;
  }

  /**
   * Tells a caller there is no room for it (ERROR 10) and closes. On the accepting thread, without
   * a thread of its own: the frame is small and the socket's buffer empty, so the write does not
   * wait.
   */
  private void refuse(UnixSocket client, UnixSocket.Credentials peer, String why) {
    LOG.warning(() -> "refused a handoff session of pid " + peer.pid() + ": " + why);
    refusals.accept(Frame.errorName(Frame.ERR_TOO_MANY_SESSIONS));
    try (FrameChannel channel = new FrameChannel(client)) {
      channel.error(Frame.ERR_TOO_MANY_SESSIONS, why);
      // Unread input (a HELLO sent at once) would make the caller's read of the ERROR fail with
      // ECONNRESET.
      client.discardPendingInput();
    }
  }

  /** The caller's network namespace (its inode), or -1 if its process is gone or hidden. */
  /**
   * The network namespace of the process that connected, read through its pid; -1 if unknown. A pid
   * names that process only while it lives: had it exited, the pid could name another process by
   * the time /proc is read. So the namespace counts only if the handle taken when it connected
   * (SO_PEERPIDFD, which is never reused) says it still lives after the read.
   */
  private static long namespaceOf(UnixSocket client, int pid) {
    try (Pidfd caller = client.peerPidfd(pid)) {
      long netns = NetNamespace.inodeOfProcess(pid);
      return caller.alive() ? netns : -1;
    } catch (SyscallException e) {
      return -1;
    }
  }

  /** Counts an ERROR sent to an application. */
  void refused(int code) {
    refusals.accept(Frame.errorName(code));
  }

  /**
   * Asks the applications serving {@code connections} in the pod's network namespace ({@code
   * podNetns}, where the connections live) for them, all at once: every FREEZE is sent before any
   * answer is awaited. Returns one outcome per connection, in the same order; any answer but {@link
   * HandoffOutcome.Frozen} leaves that connection where it is.
   *
   * <p>Returns when every connection is answered, or its application has been silent for {@code
   * answerTimeout} (before it started answering) or {@code stateTimeout} (while its state streams
   * in): those are {@link HandoffOutcome.NotAnswered}, and a late answer is returned to the
   * application. A frozen connection whose application offered its state ahead ({@link #precopy})
   * comes with only the change since ({@link HandoffOutcome.Frozen#appendsToPrecopy()}).
   *
   * @throws InterruptedException with every request not yet answered given up on
   */
  public List<HandoffOutcome> freezeAll(List<Connection> connections, long podNetns)
      throws InterruptedException {
    Batch batch = new Batch(connections.size());
    List<Session.Pending> sent = new ArrayList<>(connections.size());
    for (int i = 0; i < connections.size(); i++) {
      Connection c = connections.get(i);
      Session owner = ownerIn(podNetns, c.local().getPort());
      if (owner == null) {
        // An application that registered the port from another namespace (another pod, or a
        // squatter) is never asked: the connection, and its client's data, are not its own.
        batch.complete(i, new HandoffOutcome.NoApplication(c.local().getPort()));
      } else {
        sent.add(owner.requestFreeze(requestIds.incrementAndGet(), c, batch, i));
      }
    }
    awaitAll(batch, sent);
    return batch.outcomes();
  }

  /** {@link #freezeAll} of one connection. */
  public HandoffOutcome freeze(Connection c, long podNetns) throws InterruptedException {
    return freezeAll(List.of(c), podNetns).get(0);
  }

  /**
   * A connection restored on this node, still in repair mode, with its application's state.
   *
   * @param state the whole state; or, when {@code appendsToPrestate}, only the tail that follows
   *     what was handed ahead through {@link #prestate}
   * @param appendsToPrestate whether {@code state} is only the tail
   * @param whole when {@code appendsToPrestate}: the whole state, asked for only if the application
   *     turns out not to hold the prestate (it declined it, its session ended, a write failed); may
   *     be null, and the takeover is then {@link HandoffOutcome.Declined} in that case
   */
  public record Incoming(
      Connection connection,
      TcpSocket socket,
      byte[] state,
      boolean appendsToPrestate,
      Supplier<byte[]> whole) {

    /** A takeover with the whole state, as in version 1. */
    public Incoming(Connection connection, TcpSocket socket, byte[] state) {
      this(connection, socket, state, false, null);
    }

    /** A takeover whose {@code tail} follows the state handed ahead through {@link #prestate}. */
    public static Incoming appending(
        Connection connection, TcpSocket socket, byte[] tail, Supplier<byte[]> whole) {
      return new Incoming(connection, socket, tail, true, whole);
    }
  }

  /**
   * Hands restored sockets (still in repair mode) and their whole states to the applications
   * serving their ports, all at once, and awaits every answer as {@link #freezeAll} does. Only an
   * application inside the pod's network namespace ({@code podNetns}) is offered the pod's
   * connections. On {@link HandoffOutcome.Taken}, resume the socket, then call {@link
   * Session#resumed}.
   *
   * <p>An {@link Incoming#appending appending} connection whose application holds the state handed
   * ahead ({@link Prestate#held()}) is sent only its tail (TAKEOVER_APPEND); otherwise its whole
   * state ({@link Incoming#whole()}) as a plain TAKEOVER. After this call the application holds no
   * prestate of any of these connections, whatever the outcome.
   */
  public List<HandoffOutcome> takeoverAll(List<Incoming> incoming, long podNetns)
      throws InterruptedException {
    Batch batch = new Batch(incoming.size());
    List<Session.Pending> sent = new ArrayList<>(incoming.size());
    for (int i = 0; i < incoming.size(); i++) {
      Incoming in = incoming.get(i);
      int port = in.connection().local().getPort();
      Session owner = ownerIn(podNetns, port);
      Session elsewhere = owner == null ? ownerElsewhere(podNetns, port) : null;
      if (owner == null && elsewhere == null) {
        batch.complete(i, new HandoffOutcome.NoApplication(port));
      } else if (owner == null) {
        // The connection is the pod's: only an application inside the pod may take it and its
        // state, whoever else on the node registered the port.
        batch.complete(
            i,
            new HandoffOutcome.Declined(
                "port "
                    + port
                    + " is registered only by "
                    + elsewhere
                    + ", which is not in the pod's network namespace: only the pod's own"
                    + " application may take its connections over"));
      } else {
        sent.add(owner.requestTakeover(requestIds.incrementAndGet(), in, batch, i));
      }
    }
    awaitAll(batch, sent);
    return batch.outcomes();
  }

  /** {@link #takeoverAll} of one connection. */
  public HandoffOutcome takeover(Connection c, TcpSocket restored, byte[] state, long podNetns)
      throws InterruptedException {
    return takeoverAll(List.of(new Incoming(c, restored, state)), podNetns).get(0);
  }

  /** A port an application registered, in the network namespace it connected from. */
  record Registration(long netns, int port) {}

  private Session ownerIn(long netns, int port) {
    return owners.get(new Registration(netns, port));
  }

  /** A session that registered {@code port} outside {@code netns}, to say so; null if none. */
  private Session ownerElsewhere(long netns, int port) {
    for (Map.Entry<Registration, Session> e : owners.entrySet()) {
      if (e.getKey().port() == port && e.getKey().netns() != netns) {
        return e.getValue();
      }
    }
    return null;
  }

  /**
   * Asks the application serving {@code c} in the pod's network namespace ({@code podNetns}) to
   * offer the connection's state ahead of its freeze (protocol version 2): a snapshot, then appends
   * as the state changes, each forwarded to {@code listener} as it arrives. The freeze that follows
   * hands over only what changed since ({@link HandoffOutcome.Frozen#appendsToPrecopy()}); the
   * whole state is the last snapshot, the appends after it, and the freeze's state, in that order
   * ({@link PrecopiedState} puts them together).
   *
   * <p>An application that speaks version 1, or declines, or closes its session makes {@code
   * listener} hear {@link PrecopyListener#ended}; the freeze then hands over the whole state. A
   * second pre-copy of the same connection stops the first.
   *
   * @return how to stop it early (the migration was called off, say)
   */
  public PrecopyHandle precopy(Connection c, long podNetns, PrecopyListener listener) {
    Session owner = ownerIn(podNetns, c.local().getPort());
    if (owner == null) {
      listener.ended(
          "no application in the pod's network namespace has registered port "
              + c.local().getPort());
      return () -> {};
    }
    return owner.requestPrecopy(requestIds.incrementAndGet(), c, listener);
  }

  /**
   * Target node, before the freeze: opens a way to hand {@code c}'s state to the application that
   * will take the connection over, ahead of its takeover (protocol version 2, PRESTATE), so that
   * the takeover inside the clients' pause carries only the tail ({@link Incoming#appending}).
   *
   * <p>Returns null when that cannot be done: no application has registered the port, the one that
   * has is not inside the pod's network namespace ({@code podNetns}), or it speaks version 1. Then
   * hand the whole state at the takeover, as before. Nothing is sent until the first {@link
   * Prestate#snapshot}. A second prestate of the same connection replaces the first.
   *
   * <p>Thread-safe, does not block; the returned handle's methods write on the calling thread.
   */
  public Prestate prestate(Connection c, long podNetns) {
    Session owner = ownerIn(podNetns, c.local().getPort());
    if (owner == null || owner.version() < 2) {
      return null;
    }
    return owner.newPrestate(requestIds.incrementAndGet(), c);
  }

  /**
   * Waits until every request in {@code requests} is answered or its application has been silent
   * too long. Wakes only when an answer completes the batch or the earliest silence limit passes.
   */
  private void awaitAll(Batch batch, List<Session.Pending> requests) throws InterruptedException {
    long answerLimit = answerTimeout.toNanos();
    long stateLimit = stateTimeout.toNanos();
    try {
      while (true) {
        long now = System.nanoTime();
        long next = 0;
        boolean waiting = false;
        for (Session.Pending req : requests) {
          if (req.finished) {
            continue; // its outcome is in the batch already (Pending.finish)
          }
          long limit = req.started ? stateLimit : answerLimit;
          long quietSince = Math.max(req.session.lastHeard(), req.sentAt);
          long expiry = quietSince + limit;
          if (expiry - now <= 0) {
            req.session.expire(req, silence(req, now - quietSince));
          } else if (!waiting || expiry - next < 0) {
            next = expiry;
            waiting = true;
          }
        }
        if (!waiting) {
          return;
        }
        batch.awaitUntil(next);
      }
    } catch (InterruptedException e) {
      for (Session.Pending req : requests) {
        req.session.expire(req, "the agent stopped waiting for " + req.what());
      }
      throw e;
    }
  }

  private static String silence(Session.Pending req, long quietNanos) {
    return req.session
        + " sent nothing for "
        + TimeUnit.NANOSECONDS.toMillis(quietNanos)
        + " ms "
        + (req.started ? "while its state for " : "and did not answer ")
        + req.what()
        + (req.started ? " was coming in" : "");
  }

  /**
   * Gives {@code ports} to {@code session} in its network namespace, all or none; returns why not,
   * or null. Sessions in other namespaces (other pods) are no obstacle.
   */
  synchronized String registerAll(Collection<Integer> ports, Session session) {
    for (int port : ports) {
      Session owner = ownerIn(session.netns(), port);
      if (owner != null && owner != session) {
        return "port " + port + " is registered by " + owner + " in this network namespace";
      }
    }
    ports.forEach(port -> owners.put(new Registration(session.netns(), port), session));
    notifyAll(); // wakes awaitRegistered
    return null;
  }

  /**
   * Waits until an application inside {@code netns} has registered each of {@code ports}, or until
   * {@code deadline} (System.nanoTime()); returns the ports still not registered then, none when
   * all are. After this agent restarts, its applications open their sessions again on their own,
   * each at its own pace (the Java SDK backs off up to 2 s between attempts).
   */
  public synchronized Set<Integer> awaitRegistered(
      long netns, Collection<Integer> ports, long deadline) throws InterruptedException {
    Set<Integer> missing = new java.util.TreeSet<>();
    while (true) {
      missing.clear();
      for (int port : ports) {
        if (ownerIn(netns, port) == null) {
          missing.add(port);
        }
      }
      long left = deadline - System.nanoTime();
      if (missing.isEmpty() || left <= 0) {
        return missing;
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  synchronized void unregister(Session session, Collection<Integer> ports) {
    ports.forEach(port -> owners.remove(new Registration(session.netns(), port), session));
    sessions.remove(session);
  }

  long maxStateBytes() {
    return maxStateBytes;
  }

  /** The ports registered now in the network namespace {@code netns} (a pod's), and by whom. */
  public Map<Integer, Session> registrations(long netns) {
    Map<Integer, Session> out = new HashMap<>();
    owners.forEach(
        (r, s) -> {
          if (r.netns() == netns) {
            out.put(r.port(), s);
          }
        });
    return out;
  }

  @Override
  public void close() {
    closed = true;
    listener.shutdown();
    listener.close();
    sessions.forEach(Session::shutdown);
  }

  /** The outcomes of one batch of requests, filled in as answers come. */
  static final class Batch {
    private final HandoffOutcome[] outcomes;
    private int remaining;

    Batch(int size) {
      outcomes = new HandoffOutcome[size];
      remaining = size;
    }

    synchronized void complete(int index, HandoffOutcome outcome) {
      if (outcomes[index] == null) {
        outcomes[index] = outcome;
        if (--remaining == 0) {
          notifyAll();
        }
      }
    }

    /** Returns when every outcome is in, or at {@code deadline} (System.nanoTime()). */
    synchronized void awaitUntil(long deadline) throws InterruptedException {
      long left;
      while (remaining > 0 && (left = deadline - System.nanoTime()) > 0) {
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }

    synchronized List<HandoffOutcome> outcomes() {
      return Arrays.asList(outcomes.clone());
    }
  }
}
