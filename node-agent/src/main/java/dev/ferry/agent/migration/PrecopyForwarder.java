// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.handoff.PrecopyHandle;
import dev.ferry.agent.handoff.PrecopyListener;
import dev.ferry.agent.peer.ArrivalCall;
import dev.ferry.agent.store.SavedStates;
import dev.ferry.protocol.Connection;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * One connection's pre-copy on the source: what its application offers ahead of the freeze goes to
 * the target agent as it comes, and to disk beside the migration's batch (a restarted agent must be
 * able to rebuild the connection whole). All of it happens before the freeze, so the pause carries
 * only what changed since.
 */
final class PrecopyForwarder implements PrecopyListener {
  private static final Logger LOG = Logger.getLogger(PrecopyForwarder.class.getName());

  private final String migrationId;
  private final Connection connection;
  private final ArrivalCall call;
  private final SavedStates.PrecopyFile file;
  private final CountDownLatch snapshotDone = new CountDownLatch(1);
  private PrecopyHandle handle;
  private long snapshotLeft = -1;
  private volatile long lastHeard = System.nanoTime();
  private volatile String failed;
  private boolean closed;

  private PrecopyForwarder(
      String migrationId, Connection connection, ArrivalCall call, SavedStates.PrecopyFile file) {
    this.migrationId = migrationId;
    this.connection = connection;
    this.call = call;
    this.file = file;
  }

  /**
   * Starts the pre-copy of each of {@code connections}. A snapshot counts as done once the target
   * says it is whole there, held by its application: the freeze then waits for nothing in flight.
   */
  static List<PrecopyForwarder> start(
      NodeParts node, String id, List<Connection> connections, long podNetns, ArrivalCall call)
      throws IOException {
    List<PrecopyForwarder> out = new java.util.ArrayList<>(connections.size());
    java.util.Map<Connection, PrecopyForwarder> byConnection = new java.util.HashMap<>();
    for (Connection c : connections) {
      PrecopyForwarder f = new PrecopyForwarder(id, c, call, node.saved().precopy(id, c));
      out.add(f);
      byConnection.put(c, f);
    }
    call.onPrecopyHeld(
        id0 -> {
          PrecopyForwarder f = byConnection.get(Wire.connection(id0, "precopy_held"));
          if (f != null) {
            f.heard();
            f.snapshotDone.countDown();
          }
        });
    for (PrecopyForwarder f : out) {
      f.handle = node.mover().precopy(f.connection, podNetns, f);
    }
    return out;
  }

  /**
   * Waits until every application has offered a whole snapshot, declined, or been silent for {@code
   * silence}: a timeout that bounds silence, never the size of a state.
   */
  static void awaitSnapshots(List<PrecopyForwarder> all, java.time.Duration silence)
      throws InterruptedException {
    for (PrecopyForwarder f : all) {
      while (!f.snapshotDone.await(50, TimeUnit.MILLISECONDS)) {
        if (System.nanoTime() - f.lastHeard > silence.toNanos()) {
          f.stop("its application offered nothing for " + silence.toMillis() + " ms");
          break;
        }
      }
    }
  }

  /** Ends the pre-copy; a freeze after it hands over the whole state. */
  void stop(String why) {
    LOG.info(() -> "migration " + migrationId + ": pre-copy of " + connection + " stopped: " + why);
    handle.stop();
    snapshotDone.countDown();
  }

  @Override
  public synchronized void snapshot(long length) {
    heard();
    if (closed) {
      return;
    }
    snapshotLeft = length;
    try {
      file.reset();
      call.sendPrecopyPart(connection, true, length);
    } catch (IOException | InterruptedException | RuntimeException e) {
      fail(e);
    }
  }

  @Override
  public synchronized void append(long length) {
    heard();
    if (failed != null || closed) {
      return;
    }
    try {
      call.sendPrecopyPart(connection, false, length);
    } catch (InterruptedException | RuntimeException e) {
      fail(e);
    }
  }

  @Override
  public synchronized void chunk(byte[] data) {
    heard();
    if (failed != null || closed) {
      return;
    }
    try {
      file.append(data);
      call.sendPrecopy(connection, data);
    } catch (IOException | InterruptedException | RuntimeException e) {
      fail(e);
      return;
    }
    if (snapshotLeft > 0) {
      snapshotLeft -= data.length;
    }
  }

  @Override
  public void ended(String why) {
    snapshotDone.countDown();
  }

  private void heard() {
    lastHeard = System.nanoTime();
  }

  private void fail(Exception e) {
    if (e instanceof InterruptedException) {
      Thread.currentThread().interrupt();
    }
    if (failed == null) {
      failed = String.valueOf(e.getMessage());
      LOG.warning(
          () -> "migration " + migrationId + ": pre-copy of " + connection + " failed: " + failed);
      // The freeze then hands over the whole state; the target drops what it had.
      handle.stop();
      snapshotDone.countDown();
    }
  }

  /** After the freeze: nothing more is forwarded (the state rides with the connection now). */
  synchronized void close() {
    closed = true;
  }
}
