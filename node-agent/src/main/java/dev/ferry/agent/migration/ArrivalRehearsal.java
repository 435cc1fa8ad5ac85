// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.api.AgentApi;
import dev.ferry.agent.repair.InvalidSocketStateException;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalMessage;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.TcpSocketState;
import dev.ferry.protocol.Connection;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;

/**
 * The target's end of a rehearsed move (agent.proto, Rehearse): the messages of an Arrive stream,
 * answered as a target where every connection stages and resumes would answer them (ready, STAGED,
 * RESUMED), each state decoded as a target decodes it. It touches nothing else: no socket is
 * restored, no address moved, no application asked, nothing recorded, so any agent may call it.
 *
 * <p>Why it exists: an agent moves connections rarely, and its first move ran the agents' messaging
 * code (TLS, HTTP/2, protobuf, both ends of the stream) for the first time while its clients were
 * held: in {@code make bench} (one stream) the two round trips between the agents took 33 and 27 ms
 * in a node's first move against 5 and 7 ms in later ones. An agent rehearses the conversation with
 * its own API when it starts ({@code PeerRehearsal}), before any client is held.
 */
public final class ArrivalRehearsal implements StreamObserver<ArrivalMessage> {
  /** A rehearsal needs a few connections; the bound keeps a caller from filling the heap. */
  public static final int MAX_CONNECTIONS = 1_000;

  private final String node;
  private final StreamObserver<ArrivalReply> out;
  private ArrivalHeader header;
  private final List<ConnectionStatus> staged = new ArrayList<>();
  private boolean done;

  public ArrivalRehearsal(String node, StreamObserver<ArrivalReply> out) {
    this.node = node;
    this.out = out;
  }

  @Override
  public void onNext(ArrivalMessage m) {
    if (done) {
      return;
    }
    try {
      take(m);
    } catch (BadRequest | InvalidSocketStateException e) {
      done = true;
      out.onError(AgentApi.statusOf(e).asRuntimeException());
    }
  }

  private void take(ArrivalMessage m) throws InvalidSocketStateException {
    if (header == null && !m.hasHeader()) {
      throw new BadRequest("a rehearsal begins with its header, got " + m.getPartCase());
    }
    switch (m.getPartCase()) {
      case HEADER -> {
        if (header != null) {
          throw new BadRequest("a rehearsal has one header");
        }
        header = m.getHeader();
        if (header.getAnswerReady()) {
          out.onNext(ArrivalReply.newBuilder().setReady(true).build());
        }
      }
      case STATES -> {
        for (var tc : m.getStates().getConnectionsList()) {
          stage(tc.getSocket(), tc.getAppStateLength());
        }
      }
      case CONNECTION ->
          stage(m.getConnection().getSocket(), m.getConnection().getAppStateLength());
      case END -> {
        ArrivalStream.requireAllCame(m.getEnd(), staged.size());
        out.onNext(ArrivalReply.newBuilder().setStaged(status(ConnectionPhase.STAGED)).build());
      }
      case COMMIT ->
          out.onNext(
              ArrivalReply.newBuilder()
                  .setResumed(status(ConnectionPhase.RESUMED).toBuilder().setCommitted(true))
                  .setCommitted(true)
                  .setResumedUnixMicros(System.currentTimeMillis() * 1000)
                  .build());
      case ABORT -> {
        done = true;
        out.onCompleted();
      }
      default -> {
        // The application's bytes, kept client bytes, a pre-copy: a target stores them; this
        // one has nothing to store them for.
      }
    }
  }

  private void stage(TcpSocketState socket, long appStateBytes) throws InvalidSocketStateException {
    if (staged.size() >= MAX_CONNECTIONS) {
      throw new BadRequest("a rehearsal carries at most " + MAX_CONNECTIONS + " connections");
    }
    SocketState s = SocketStateCodec.fromMessage(socket);
    staged.add(
        ConnectionStatus.newBuilder()
            .setId(Wire.id(new Connection(s.local(), s.remote())))
            .setPhase(ConnectionPhase.STAGED)
            .setAppStateBytes(appStateBytes)
            .build());
  }

  private MigrationStatus status(ConnectionPhase phase) {
    MigrationStatus.Builder s =
        MigrationStatus.newBuilder().setMigrationId(header.getMigrationId()).setNode(node);
    for (ConnectionStatus c : staged) {
      s.addConnections(c.toBuilder().setPhase(phase));
    }
    return s.build();
  }

  @Override
  public void onError(Throwable t) {
    done = true; // the caller went away: there is nothing to drop
  }

  @Override
  public void onCompleted() {
    if (!done) {
      done = true;
      out.onCompleted();
    }
  }
}
