// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.hold.KeptBytes;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.RepairWindow;
import dev.ferry.sys.SyscallException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * What held clients sent after their socket stopped reading, as the hold's XDP program kept it: on
 * the source, from the freeze; on the target, while the socket is staged (where the address reaches
 * it first, the AWS path). The node has one ring of kept segments for every migration, so whoever
 * reads it files every record by connection here, and each migration takes its own. A connection no
 * longer held will never be taken: its segments go at a later read, and a bound on the bytes
 * waiting here keeps a client that floods a held connection from growing the agent.
 */
public final class HeldClientBytes {
  private static final Logger LOG = Logger.getLogger(HeldClientBytes.class.getName());
  static final long MAX_WAITING_BYTES = 256L << 20;
  static final long SWEEP_NANOS = 1_000_000_000L;

  private final ConnectionHold hold;
  private final Map<HoldKey, List<KeptSegments.Segment>> waiting = new HashMap<>();
  private long waitingBytes;
  private boolean warnedFull;
  private long lastSweep = System.nanoTime() - SWEEP_NANOS;

  /** A connection's kept bytes: they follow its exported rcv_nxt, {@code seq}. */
  public record Kept(Connection connection, int seq, byte[] data) {}

  public HeldClientBytes(ConnectionHold hold) {
    this.hold = hold;
  }

  /**
   * For each exported state, the bytes its client sent that follow the exported receive queue
   * without a gap (none for a connection whose client had sent its FIN: nothing can follow it).
   * Connections with nothing kept are left out.
   */
  public synchronized List<Kept> take(List<SocketState> states) throws SyscallException {
    drain();
    List<Kept> out = new ArrayList<>();
    for (SocketState s : states) {
      byte[] bytes = following(s, new ArrayList<>());
      if (bytes.length > 0) {
        out.add(new Kept(new Connection(s.local(), s.remote()), s.dataRecvSeq(), bytes));
      }
    }
    return out;
  }

  /**
   * Target node, at the resume: {@code keptElsewhere} (what the source's hold kept, following the
   * exported receive queue) together with what this node's hold kept of the same client while its
   * socket was staged here, as one run of bytes that follows the exported queue without a gap. The
   * client sends the same bytes at the same sequence numbers to either node, so the two overlap
   * where both kept something and one may reach further than the other.
   */
  public synchronized byte[] withKeptHere(SocketState s, byte[] keptElsewhere)
      throws SyscallException {
    drain();
    List<KeptSegments.Segment> segments = new ArrayList<>();
    if (keptElsewhere.length > 0) {
      segments.add(new KeptSegments.Segment(s.dataRecvSeq(), keptElsewhere));
    }
    return following(s, segments);
  }

  /** The bytes that follow s's exported queue from {@code segments} and those waiting for it. */
  private byte[] following(SocketState s, List<KeptSegments.Segment> segments) {
    List<KeptSegments.Segment> here = waiting.remove(new HoldKey(s.local(), s.remote()));
    if (here != null) {
      here.forEach(g -> waitingBytes -= g.data().length);
      segments.addAll(here);
    }
    if (segments.isEmpty() || s.tcpState().receivedFin) {
      return new byte[0];
    }
    return KeptSegments.after(s.dataRecvSeq(), segments, windowLeft(s));
  }

  /**
   * How many bytes past rcv_nxt the client was allowed to send: the right edge of the window the
   * exported socket had offered. The restored socket takes no more than the original would have.
   */
  public static int windowLeft(SocketState s) {
    RepairWindow w = s.window();
    return Math.max(0, w.rcvWup() + w.rcvWnd() - s.dataRecvSeq());
  }

  /**
   * Reads the ring now; forgets, at most once a {@link #SWEEP_NANOS}, what waits for a connection
   * that is no longer held. Not at every read: the look is one map lookup per connection waiting,
   * and a target resumes thousands of connections, each with a read of its own. What a sweep misses
   * is harmless: a connection's bytes at a sequence number are the same bytes whenever they are
   * taken.
   */
  private void drain() throws SyscallException {
    hold.takeKeptBytes(this::file);
    long now = System.nanoTime();
    if (now - lastSweep < SWEEP_NANOS) {
      return;
    }
    lastSweep = now;
    for (Iterator<Map.Entry<HoldKey, List<KeptSegments.Segment>>> it =
            waiting.entrySet().iterator();
        it.hasNext(); ) {
      Map.Entry<HoldKey, List<KeptSegments.Segment>> e = it.next();
      if (hold.entry(e.getKey()).isEmpty()) {
        e.getValue().forEach(g -> waitingBytes -= g.data().length);
        it.remove();
      }
    }
  }

  private void file(KeptBytes k) {
    if (waitingBytes + k.data().length > MAX_WAITING_BYTES) {
      if (!warnedFull) {
        warnedFull = true;
        LOG.warning(
            () ->
                "kept client bytes waiting reach "
                    + (MAX_WAITING_BYTES >> 20)
                    + " MiB: more are dropped, and those clients send them again");
      }
      return;
    }
    waiting
        .computeIfAbsent(k.key(), key -> new ArrayList<>())
        .add(new KeptSegments.Segment(k.seq(), k.data()));
    waitingBytes += k.data().length;
  }
}
