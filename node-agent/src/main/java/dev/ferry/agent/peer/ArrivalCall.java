// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.peer;

import com.google.protobuf.ByteString;
import dev.ferry.agent.migration.Wire;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.move.HeldClientBytes;
import dev.ferry.agent.repair.ClientAck;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.api.v1alpha1.AppStateChunk;
import dev.ferry.api.v1alpha1.ArrivalDecision;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalMessage;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.ClientAcknowledgment;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.KeptBatch;
import dev.ferry.api.v1alpha1.KeptClientBytes;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.api.v1alpha1.PrecopyChunk;
import dev.ferry.api.v1alpha1.StatesBatch;
import dev.ferry.api.v1alpha1.StatesEnd;
import dev.ferry.api.v1alpha1.TransferredConnection;
import dev.ferry.protocol.Connection;
import io.grpc.ManagedChannel;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The source's end of one move's stream to the target agent (the Arrive call): the states, then the
 * decision. Sends only as fast as the target takes (a slow peer slows the sender, and a 1 GiB state
 * is never in memory twice), and waits for each of the target's replies in turn.
 */
public final class ArrivalCall implements AutoCloseable {
  /** States up to this size travel inline, many to a message. */
  private static final int INLINE = 64 << 10;

  /**
   * The call's own deadline at the gRPC level, which the target sees too: a backstop for a target
   * cut off from its source (it drops what it staged at the deadline). The bounds that apply are
   * this class's: silence before the hold, the hold limit from the freeze on. A pre-copy of a large
   * state takes what it takes (a GiB took over a minute on a busy machine), so this one is long.
   */
  private static final Duration BACKSTOP = Duration.ofMinutes(10);

  /**
   * The longest a prepared move may wait (MoveRequest.prepare_only) before it moves or ends: the
   * stream lives its backstop, and the move that follows must fit in what is left.
   */
  public static final Duration PREPARED_MOST = BACKSTOP.minusMinutes(1);

  private final String target;
  private final long limitNanos;

  /** When the clients' hold ends: unbounded until {@link #holdStarts()}. */
  private volatile long holdEndsNanos = Long.MAX_VALUE;

  private final LinkedBlockingQueue<Object> replies = new LinkedBlockingQueue<>();
  private ClientCallStreamObserver<ArrivalMessage> requests;
  private boolean closed;

  /** Hears the target say a connection's pre-copied snapshot is whole there. */
  private volatile java.util.function.Consumer<ConnectionId> precopyHeld;

  /**
   * The target answered the header with ready: it commits a COMMIT sent right behind the states
   * only if every connection staged (ArrivalDecision.if_all_staged).
   */
  private volatile boolean commitsIfAllStaged;

  /** When the first header left, and when the target's ready came (0 until each has). */
  private volatile long headerSentNanos;

  private volatile long readyNanos;

  /** Counted down when the target says ready, or the stream breaks. */
  private final java.util.concurrent.CountDownLatch readyOrBroken =
      new java.util.concurrent.CountDownLatch(1);

  /** Why the stream broke, once it has: every later send or wait fails with it at once. */
  private volatile Throwable broken;

  /** Hears, once, that the stream broke; on a thread of its own. */
  private volatile java.util.function.Consumer<String> onBroken;

  public ArrivalCall(String target, ManagedChannel channel, Duration limit) {
    this(target, channel, limit, false);
  }

  /**
   * A rehearsed move's stream (agent.proto, Rehearse): the same messages and answers as a move's,
   * and nothing moves.
   */
  static ArrivalCall rehearsal(String target, ManagedChannel channel, Duration limit) {
    return new ArrivalCall(target, channel, limit, true);
  }

  private ArrivalCall(String target, ManagedChannel channel, Duration limit, boolean rehearsal) {
    this.target = target;
    this.limitNanos = limit.toNanos();
    NodeAgentGrpc.NodeAgentStub stub =
        NodeAgentGrpc.newStub(channel)
            .withDeadlineAfter(limit.plus(BACKSTOP).toMillis(), TimeUnit.MILLISECONDS);
    ClientResponseObserver<ArrivalMessage, ArrivalReply> observer =
        new ClientResponseObserver<ArrivalMessage, ArrivalReply>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<ArrivalMessage> r) {
            requests = r;
            r.setOnReadyHandler(ArrivalCall.this::wake);
          }

          @Override
          public void onNext(ArrivalReply reply) {
            if (reply.hasReady()) {
              if (readyNanos == 0) {
                readyNanos = System.nanoTime();
              }
              commitsIfAllStaged = true;
              readyOrBroken.countDown();
              return;
            }
            if (reply.hasPrecopyHeld()) {
              java.util.function.Consumer<ConnectionId> l = precopyHeld;
              if (l != null) {
                l.accept(reply.getPrecopyHeld());
              }
              return;
            }
            replies.add(reply);
          }

          @Override
          public void onError(Throwable t) {
            broken = t;
            readyOrBroken.countDown();
            replies.add(t);
            wake();
            tellBroken();
          }

          @Override
          public void onCompleted() {
            broken = new IllegalStateException("the target ended the stream");
            readyOrBroken.countDown();
            replies.add(broken);
            wake();
            tellBroken();
          }
        };
    if (rehearsal) {
      stub.rehearse(observer);
    } else {
      stub.arrive(observer);
    }
  }

  public String target() {
    return target;
  }

  /**
   * The clients are held from now: every wait on the target ends by the hold limit after this.
   * Before it (the header, the pre-copy) each wait is bounded by the limit of silence alone, so
   * that a large state the target keeps taking is never cut off.
   */
  public void holdStarts() {
    holdEndsNanos = System.nanoTime() + limitNanos;
  }

  /** Whether the clients have been held for the whole limit: every wait on the target is over. */
  public boolean holdEnded() {
    return System.nanoTime() >= holdEndsNanos;
  }

  /** Until when one wait on the target may last, from now. */
  private long waitUntil() {
    return Math.min(holdEndsNanos, System.nanoTime() + limitNanos);
  }

  /**
   * Runs {@code listener} once the stream breaks (at once if it has), with the reason, on a thread
   * of its own: the gRPC thread that learns it must not wait for a move's lock.
   */
  public void onBroken(java.util.function.Consumer<String> listener) {
    onBroken = listener;
    if (broken != null) {
      tellBroken();
    }
  }

  private void tellBroken() {
    java.util.function.Consumer<String> l = onBroken;
    Throwable why = broken;
    if (l == null || why == null) {
      return;
    }
    onBroken = null;
    Thread t = new Thread(() -> l.accept(failed(why).getMessage()), "arrival-broken-" + target);
    t.setDaemon(true);
    t.start();
  }

  /**
   * Fails with the target's words if it has ended the stream already (it refused the header: a plan
   * it does not take, say), so that the source does not freeze for a move that cannot land.
   */
  public void requireOpen() {
    if (broken != null) {
      throw failed(broken);
    }
  }

  /** What the move is: the target prepares (the address on its pod) while the source freezes. */
  public void sendHeader(ArrivalHeader header) throws InterruptedException {
    if (headerSentNanos == 0) {
      headerSentNanos = System.nanoTime();
    }
    send(ArrivalMessage.newBuilder().setHeader(header).build());
  }

  /** Who hears that a pre-copied snapshot is whole on the target. */
  public void onPrecopyHeld(java.util.function.Consumer<ConnectionId> listener) {
    precopyHeld = listener;
  }

  /** Forwards the beginning of a part of the state offered ahead of the freeze. */
  public void sendPrecopyPart(Connection c, boolean snapshot, long length)
      throws InterruptedException {
    send(
        ArrivalMessage.newBuilder()
            .setPrecopy(
                PrecopyChunk.newBuilder()
                    .setId(Wire.id(c))
                    .setSnapshot(snapshot)
                    .setAppend(!snapshot)
                    .setLength(length))
            .build());
  }

  /** Forwards the next bytes of the part begun last. */
  public void sendPrecopy(Connection c, byte[] data) throws InterruptedException {
    send(
        ArrivalMessage.newBuilder()
            .setPrecopy(
                PrecopyChunk.newBuilder().setId(Wire.id(c)).setData(ByteString.copyFrom(data)))
            .build());
  }

  /**
   * Whether the target has said that it commits a COMMIT sent right behind the states only if every
   * connection staged: then {@link #commitIfAllStaged} may follow {@link #sendStatesAhead} without
   * waiting for STAGED. False until its answer to the header has come (or from a target that
   * predates it): the move then waits for STAGED before COMMIT, as before.
   */
  public boolean commitsIfAllStaged() {
    return commitsIfAllStaged;
  }

  /**
   * Waits, at most {@code most}, for the target's answer to the header: ready, or the stream's end.
   * Before the freeze, so that the answer is not raced by the states (a target's first arrival
   * answered 100–170 ms after its header here, its code cold, and the states went sooner).
   *
   * @return whether the target said ready; false from an older target, after {@code most}
   */
  public boolean awaitReady(Duration most) throws InterruptedException {
    readyOrBroken.await(most.toNanos(), TimeUnit.NANOSECONDS);
    return commitsIfAllStaged;
  }

  /**
   * From the header's send to the target's ready, in microseconds: the target's own time with the
   * header and a round trip, whatever the source did meanwhile; -1 before it has answered.
   */
  public long headerAnsweredMicros() {
    long sent = headerSentNanos;
    long ready = readyNanos;
    return sent == 0 || ready == 0 ? -1 : (ready - sent) / 1000;
  }

  /** Sends every state, then waits for the target's STAGED answer. */
  public ArrivalReply sendStates(List<Departure.Departed> states) throws InterruptedException {
    sendStatesAhead(states);
    return reply();
  }

  /** Sends every state and END; the target's STAGED answer comes to {@link #awaitReply}. */
  public void sendStatesAhead(List<Departure.Departed> states) throws InterruptedException {
    StatesBatch.Builder batch = StatesBatch.newBuilder();
    int batched = 0;
    for (Departure.Departed d : states) {
      byte[] app = d.applicationState();
      TransferredConnection.Builder tc =
          TransferredConnection.newBuilder()
              .setSocket(SocketStateCodec.toMessage(d.socket()))
              .setAppStateLength(app.length)
              .setAppendsToPrecopy(d.appendsToPrecopy());
      if (app.length <= INLINE) {
        // Small: inline, many to a message.
        batch.addConnections(tc.setAppState(ByteString.copyFrom(app)));
        batched += app.length + 128;
        if (batched >= Peers.CHUNK) {
          send(ArrivalMessage.newBuilder().setStates(batch).build());
          batch = StatesBatch.newBuilder();
          batched = 0;
        }
        continue;
      }
      send(ArrivalMessage.newBuilder().setConnection(tc).build());
      for (int off = 0; off < app.length; off += Peers.CHUNK) {
        int n = Math.min(Peers.CHUNK, app.length - off);
        send(
            ArrivalMessage.newBuilder()
                .setAppState(AppStateChunk.newBuilder().setData(ByteString.copyFrom(app, off, n)))
                .build());
      }
    }
    if (batch.getConnectionsCount() > 0) {
      send(ArrivalMessage.newBuilder().setStates(batch).build());
    }
    send(
        ArrivalMessage.newBuilder()
            .setEnd(StatesEnd.newBuilder().setConnections(states.size()))
            .build());
  }

  /**
   * Sends what the held clients sent after the export point, before {@link #commit}: in pieces of
   * at most {@link Peers#CHUNK} bytes, each with its own sequence number, several to a message.
   */
  public void sendKept(List<HeldClientBytes.Kept> kept) throws InterruptedException {
    KeptBatch.Builder batch = KeptBatch.newBuilder();
    int batched = 0;
    for (HeldClientBytes.Kept k : kept) {
      for (int off = 0; off < k.data().length; off += Peers.CHUNK) {
        int n = Math.min(Peers.CHUNK, k.data().length - off);
        if (batched + n > Peers.CHUNK) {
          send(ArrivalMessage.newBuilder().setKept(batch).build());
          batch = KeptBatch.newBuilder();
          batched = 0;
        }
        batch.addBytes(
            KeptClientBytes.newBuilder()
                .setId(Wire.id(k.connection()))
                .setSeq(k.seq() + off)
                .setData(ByteString.copyFrom(k.data(), off, n)));
        batched += n;
      }
    }
    if (batch.getBytesCount() > 0) {
      send(ArrivalMessage.newBuilder().setKept(batch).build());
    }
  }

  /**
   * Tells the target to commit and resume; waits for its RESUMED answer.
   *
   * @param millisSinceExport the time since the first of the move's exports, now
   */
  public ArrivalReply commit(long millisSinceExport) throws InterruptedException {
    return commit(millisSinceExport, Map.of());
  }

  /**
   * The most clients' acknowledgments one COMMIT carries: at most about 70 bytes each (IPv6), so
   * COMMIT stays near {@link Peers#CHUNK} and far under the stream's 4 MiB message limit, which a
   * hint must never break. The rest wait for their clients' answers to the resume, as before.
   */
  static final int MAX_CLIENT_ACKS = Peers.CHUNK / 64;

  /**
   * {@link #commit(long)}, with what each held client acknowledged after its socket was read.
   *
   * @param clientAcks by connection; those without one are left out, and those past {@link
   *     #MAX_CLIENT_ACKS}
   */
  public ArrivalReply commit(long millisSinceExport, Map<Connection, ClientAck> clientAcks)
      throws InterruptedException {
    send(
        ArrivalMessage.newBuilder()
            .setCommit(commitDecision(millisSinceExport, clientAcks))
            .build());
    return reply();
  }

  /**
   * COMMIT right behind the states, before STAGED has come: the target commits only if every
   * connection staged, and answers STAGED, then RESUMED (or committed = false); both come to {@link
   * #awaitReply}, in that order. Only to a target that {@link #commitsIfAllStaged}.
   */
  public void commitIfAllStaged(long millisSinceExport, Map<Connection, ClientAck> clientAcks)
      throws InterruptedException {
    if (!commitsIfAllStaged) {
      throw new IllegalStateException(
          "the target " + target + " did not say it commits only what staged");
    }
    send(
        ArrivalMessage.newBuilder()
            .setCommit(
                commitDecision(millisSinceExport, clientAcks).toBuilder().setIfAllStaged(true))
            .build());
  }

  /** The target's next answer (STAGED, then RESUMED), within the move's time. */
  public ArrivalReply awaitReply() throws InterruptedException {
    return reply();
  }

  static ArrivalDecision commitDecision(
      long millisSinceExport, Map<Connection, ClientAck> clientAcks) {
    ArrivalDecision.Builder decision =
        ArrivalDecision.newBuilder().setMillisSinceExport(millisSinceExport);
    clientAcks.entrySet().stream()
        .limit(MAX_CLIENT_ACKS)
        .forEach(
            e ->
                decision.addClientAcks(
                    ClientAcknowledgment.newBuilder()
                        .setId(Wire.id(e.getKey()))
                        .setAck(e.getValue().ack())
                        .setWindow(e.getValue().window())
                        .setTsval(e.getValue().tsval())));
    return decision.build();
  }

  /** Tells the target to drop what it staged; best effort (a broken stream drops it too). */
  public void abort() {
    try {
      send(ArrivalMessage.newBuilder().setAbort(ArrivalDecision.getDefaultInstance()).build());
      reply();
    } catch (RuntimeException e) {
      // The stream is gone: the target drops an uncommitted migration on its own then.
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private synchronized void wake() {
    notifyAll();
  }

  private synchronized void send(ArrivalMessage m) throws InterruptedException {
    long until = waitUntil();
    while (!requests.isReady()) {
      if (broken != null) {
        throw failed(broken);
      }
      long left = until - System.nanoTime();
      if (left <= 0) {
        throw timedOut("the target took nothing within the move's time");
      }
      wait(Math.max(1, Math.min(100, left / 1_000_000)));
    }
    requests.onNext(m);
  }

  private ArrivalReply reply() throws InterruptedException {
    if (replies.isEmpty() && broken != null) {
      throw failed(broken);
    }
    long left = waitUntil() - System.nanoTime();
    Object r = replies.poll(Math.max(0, left), TimeUnit.NANOSECONDS);
    if (r instanceof ArrivalReply reply) {
      return reply;
    }
    throw r == null ? timedOut("no answer within the move's time") : failed(r);
  }

  /** Ends the call (the target drops what it staged, uncommitted) and says why. */
  private Peers.PeerFailed timedOut(String why) {
    IllegalStateException e = new IllegalStateException(why);
    try {
      requests.cancel(why, null);
    } catch (RuntimeException ignored) {
      // already ended
    }
    return new Peers.PeerFailed(target, e);
  }

  private Peers.PeerFailed failed(Object cause) {
    return new Peers.PeerFailed(
        target,
        cause instanceof Throwable t ? t : new IllegalStateException(String.valueOf(cause)));
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      try {
        requests.onCompleted();
      } catch (RuntimeException e) {
        // already cancelled or failed
      }
    }
  }
}
