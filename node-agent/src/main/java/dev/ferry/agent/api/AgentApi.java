// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import dev.ferry.agent.address.AddressMover;
import dev.ferry.agent.address.PodAddresses;
import dev.ferry.agent.address.ServiceAddress;
import dev.ferry.agent.migration.ArrivalRehearsal;
import dev.ferry.agent.migration.ArrivalStream;
import dev.ferry.agent.migration.BadRequest;
import dev.ferry.agent.migration.Inventory;
import dev.ferry.agent.migration.Migrations;
import dev.ferry.agent.migration.NodeParts;
import dev.ferry.agent.migration.ReceiveBudget;
import dev.ferry.agent.migration.TargetCannotSay;
import dev.ferry.agent.migration.Wire;
import dev.ferry.agent.migration.WrongPhase;
import dev.ferry.agent.peer.Peers;
import dev.ferry.agent.repair.InvalidSocketStateException;
import dev.ferry.api.plan.MovePlans;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.AddressResponse;
import dev.ferry.api.v1alpha1.ArrivalMessage;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.protocol.Connection;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.logging.Logger;

/** The gRPC face of the agent: checks requests, maps outcomes and failures to statuses. */
public final class AgentApi extends NodeAgentGrpc.NodeAgentImplBase {
  private static final Logger LOG = Logger.getLogger(AgentApi.class.getName());

  private final NodeParts node;
  private final Migrations migrations;
  private final PodAddresses addresses;
  private final long maxStateBytes;
  private final ReceiveBudget receiving;
  private final AgentIdentity peers;

  /**
   * @param receiving the node's bound on state held for arrivals in progress, shared by every
   *     Arrive stream
   */
  public AgentApi(
      NodeParts node,
      Migrations migrations,
      long maxStateBytes,
      ReceiveBudget receiving,
      AgentIdentity peers) {
    this.node = node;
    this.migrations = migrations;
    this.addresses = node.addresses();
    this.maxStateBytes = maxStateBytes;
    this.receiving = receiving;
    this.peers = peers;
  }

  @Override
  public void listConnections(
      ListConnectionsRequest req, StreamObserver<ListConnectionsResponse> out) {
    answer(
        out,
        () -> {
          ListConnectionsResponse.Builder b = ListConnectionsResponse.newBuilder();
          for (Connection c :
              Inventory.established(node.pods(), req.getPod(), req.getPortsList())) {
            b.addConnections(ListedConnection.newBuilder().setId(Wire.id(c)));
          }
          // The pod's own: a port registered in another pod on this node serves none of its
          // connections.
          b.addAllRegisteredPorts(
              node.mover().registeredPorts(node.pods().inode(req.getPod(), "pod")));
          return b.build();
        });
  }

  @Override
  public void move(MoveRequest req, StreamObserver<MoveOutcome> out) {
    reply(out, () -> migrations.move(req));
  }

  @Override
  public void commit(MigrationRef req, StreamObserver<MoveOutcome> out) {
    reply(out, () -> migrations.commit(req.getMigrationId()));
  }

  @Override
  public StreamObserver<ArrivalMessage> arrive(StreamObserver<ArrivalReply> out) {
    X509Certificate caller = CallerCheck.CALLER.get();
    return new ArrivalStream(
        node, migrations, out, maxStateBytes, receiving, () -> peers.nodeOf(caller));
  }

  @Override
  public StreamObserver<ArrivalMessage> rehearse(StreamObserver<ArrivalReply> out) {
    return new ArrivalRehearsal(node.nodeName(), out);
  }

  @Override
  public void rollback(MigrationRef req, StreamObserver<MigrationStatus> out) {
    X509Certificate caller = CallerCheck.CALLER.get();
    answer(out, () -> migrations.rollback(req.getMigrationId(), peers.nodeOf(caller)));
  }

  @Override
  public void status(MigrationRef req, StreamObserver<MigrationStatus> out) {
    X509Certificate caller = CallerCheck.CALLER.get();
    answer(out, () -> migrations.status(req.getMigrationId(), peers.nodeOf(caller)));
  }

  @Override
  public void moveAddress(AddressRequest req, StreamObserver<AddressResponse> out) {
    answer(
        out,
        () -> {
          ServiceAddress address = PodAddresses.parse("address", req.getAddress());
          String ifname = req.getInterface().isEmpty() ? "eth0" : req.getInterface();
          String hostIf = req.getHostInterface();
          List<AddressMover.Step> steps =
              switch (req.getOp()) {
                case ADD -> {
                  if (!req.getMigrationId().isEmpty()) {
                    migrations.addressLeaving(req.getMigrationId(), false);
                  }
                  yield addresses.add(address, req.getPod(), ifname, hostIf, req.getHostRoute());
                }
                case REMOVE -> {
                  if (!req.getMigrationId().isEmpty()) {
                    migrations.addressLeaving(req.getMigrationId(), true);
                  }
                  yield addresses.remove(address, req.getPod(), ifname, hostIf, req.getHostRoute());
                }
                case ANNOUNCE -> addresses.announce(address);
                default ->
                    throw new BadRequest("op must be ADD, ANNOUNCE or REMOVE, got " + req.getOp());
              };
          return AddressResponse.newBuilder()
              .setChanged(steps.stream().anyMatch(AddressMover.Step::changed))
              .setTookMicros(steps.stream().mapToLong(s -> s.took().toNanos() / 1000).sum())
              .build();
        });
  }

  public interface Call<T> {
    T run() throws Exception;
  }

  /** Answers a call that is not part of a move's own run, and counts it. */
  private <T> void answer(StreamObserver<T> out, Call<T> call) {
    migrations.otherCall();
    reply(out, call);
  }

  private static <T> void reply(StreamObserver<T> out, Call<T> call) {
    T result;
    try {
      result = call.run();
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      Status s = statusOf(e);
      if (s.getCode() == Status.Code.INTERNAL || s.getCode() == Status.Code.UNAVAILABLE) {
        LOG.warning(() -> s.getCode() + ": " + s.getDescription());
      }
      out.onError(s.asRuntimeException());
      return;
    }
    out.onNext(result);
    out.onCompleted();
  }

  public static Status statusOf(Exception e) {
    if (e instanceof BadRequest || e instanceof InvalidSocketStateException) {
      return Status.INVALID_ARGUMENT.withDescription(e.getMessage());
    }
    if (e instanceof WrongPhase) {
      return Status.FAILED_PRECONDITION.withDescription(e.getMessage());
    }
    if (e instanceof TargetCannotSay) {
      // Transient, and the caller's to retry: the target's agent is most often starting again.
      // FAILED_PRECONDITION told the operator the same answer would come again, and it failed a
      // request whose source and target agents had both restarted (FaultMatrixIT).
      return Status.UNAVAILABLE.withDescription(e.getMessage());
    }
    if (e instanceof Migrations.NotFound) {
      return Status.NOT_FOUND.withDescription(e.getMessage());
    }
    if (e instanceof ReceiveBudget.Exhausted) {
      return Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage());
    }
    if (e instanceof MovePlans.Refused) {
      return Status.PERMISSION_DENIED.withDescription(e.getMessage());
    }
    if (e instanceof Peers.PeerFailed) {
      return Status.UNAVAILABLE.withDescription(e.getMessage());
    }
    return Status.INTERNAL.withDescription(e.toString()).withCause(e);
  }
}
