// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.address.AddressMover;
import dev.ferry.agent.address.ServiceAddress;
import dev.ferry.agent.move.ConnectionTable;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.repair.InvalidSocketStateException;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.AddressResponse;
import dev.ferry.api.v1alpha1.FreezeRequest;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.NodeAgentGrpc;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.api.v1alpha1.ReceiveResponse;
import dev.ferry.api.v1alpha1.StageRequest;
import dev.ferry.api.v1alpha1.TransferChunk;
import dev.ferry.api.v1alpha1.TransferRequest;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.RtNetlink;
import dev.ferry.sys.SyscallException;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.logging.Logger;

/** The gRPC face of the agent: checks requests, maps outcomes and failures to statuses. */
final class AgentApi extends NodeAgentGrpc.NodeAgentImplBase {
  private static final Logger LOG = Logger.getLogger(AgentApi.class.getName());

  private final NodeParts node;
  private final Migrations migrations;
  private final AddressMover addresses = new AddressMover();
  private final String uplink;
  private final long maxStateBytes;

  AgentApi(NodeParts node, Migrations migrations, String uplink, long maxStateBytes) {
    this.node = node;
    this.migrations = migrations;
    this.uplink = uplink;
    this.maxStateBytes = maxStateBytes;
  }

  @Override
  public void listConnections(
      ListConnectionsRequest req, StreamObserver<ListConnectionsResponse> out) {
    answer(
        out,
        () -> {
          ListConnectionsResponse.Builder b = ListConnectionsResponse.newBuilder();
          for (Connection c : established(req.getPod(), req.getPortsList())) {
            b.addConnections(ListedConnection.newBuilder().setId(Wire.id(c)));
          }
          b.addAllRegisteredPorts(node.mover().registeredPorts());
          return b.build();
        });
  }

  @Override
  public void freeze(FreezeRequest req, StreamObserver<MigrationStatus> out) {
    answer(
        out,
        () -> {
          SourceMigration m = migrations.newSource(req.getMigrationId(), req.getPod());
          if (!req.getTargetAgent().isEmpty()) {
            node.peers().connectAhead(req.getTargetAgent());
          }
          List<Connection> found = established(req.getPod(), req.getPortsList());
          List<Connection> chosen = found;
          if (req.getConnectionsCount() > 0) {
            Set<Connection> wanted = new LinkedHashSet<>();
            for (int i = 0; i < req.getConnectionsCount(); i++) {
              wanted.add(Wire.connection(req.getConnections(i), "connections[" + i + "]"));
            }
            chosen = found.stream().filter(wanted::contains).toList();
          }
          MigrationStatus frozen = m.freeze(chosen);
          migrations.limitHold(m, Duration.ofMillis(req.getHoldLimitMs()));
          return frozen;
        });
  }

  @Override
  public void export(MigrationRef req, StreamObserver<MigrationStatus> out) {
    answer(out, () -> migrations.source(req.getMigrationId()).export());
  }

  @Override
  public void transfer(TransferRequest req, StreamObserver<MigrationStatus> out) {
    answer(out, () -> migrations.source(req.getMigrationId()).transfer(req.getTargetAgent()));
  }

  @Override
  public void release(MigrationRef req, StreamObserver<MigrationStatus> out) {
    answer(out, () -> migrations.source(req.getMigrationId()).release());
  }

  @Override
  public void stage(StageRequest req, StreamObserver<MigrationStatus> out) {
    answer(out, () -> migrations.target(req.getMigrationId()).stage(req.getPod()));
  }

  @Override
  public void resume(MigrationRef req, StreamObserver<MigrationStatus> out) {
    answer(out, () -> migrations.target(req.getMigrationId()).resume());
  }

  @Override
  public void rollback(MigrationRef req, StreamObserver<MigrationStatus> out) {
    answer(out, () -> migrations.rollback(req.getMigrationId()));
  }

  @Override
  public void status(MigrationRef req, StreamObserver<MigrationStatus> out) {
    answer(out, () -> migrations.status(req.getMigrationId()));
  }

  @Override
  public void moveAddress(AddressRequest req, StreamObserver<AddressResponse> out) {
    answer(
        out,
        () -> {
          ServiceAddress address;
          try {
            address = ServiceAddress.parse(req.getAddress());
          } catch (IllegalArgumentException e) {
            throw new BadRequest("address: " + e.getMessage() + " (want ADDRESS/PREFIX)");
          }
          String ifname = req.getInterface().isEmpty() ? "eth0" : req.getInterface();
          List<AddressMover.Step> steps = new ArrayList<>();
          try (NetNamespace host = NetNamespace.current()) {
            String hostIf = req.getHostInterface();
            if (hostIf.isEmpty()
                && req.getHostRoute()
                && req.getOp() != AddressRequest.Op.ANNOUNCE) {
              hostIf = podVeth(req.getPod(), ifname);
            }
            switch (req.getOp()) {
              case ADD -> {
                if (!req.getMigrationId().isEmpty()) {
                  migrations.addressLeaving(req.getMigrationId(), false);
                }
                try (NetNamespace pod = node.pods().open(req.getPod(), "pod")) {
                  steps.add(addresses.add(address, pod, ifname));
                }
                if (!hostIf.isEmpty()) {
                  steps.add(addresses.addRoute(address, host, hostIf));
                }
              }
              case REMOVE -> {
                if (!req.getMigrationId().isEmpty()) {
                  migrations.addressLeaving(req.getMigrationId(), true);
                }
                if (!hostIf.isEmpty()) {
                  steps.add(addresses.removeRoute(address, host, hostIf));
                }
                try (NetNamespace pod = node.pods().open(req.getPod(), "pod")) {
                  steps.add(addresses.remove(address, pod, ifname));
                }
              }
              case ANNOUNCE -> steps.add(addresses.announce(address, host, uplink));
              default ->
                  throw new BadRequest("op must be ADD, ANNOUNCE or REMOVE, got " + req.getOp());
            }
          }
          steps.forEach(s -> LOG.info(s::toString));
          return AddressResponse.newBuilder()
              .setChanged(steps.stream().anyMatch(AddressMover.Step::changed))
              .setTookMicros(steps.stream().mapToLong(s -> s.took().toNanos() / 1000).sum())
              .build();
        });
  }

  /** The node's end of the veth whose other end is the pod's {@code ifname}. */
  private String podVeth(PodRef pod, String ifname) throws SyscallException {
    int index;
    try (NetNamespace ns = node.pods().open(pod, "pod")) {
      index =
          ns.call(
              () -> {
                try (RtNetlink rt = RtNetlink.open()) {
                  return rt.peerIndex(ifname);
                }
              });
    }
    return RtNetlink.interfaceName(index);
  }

  @Override
  public StreamObserver<TransferChunk> receive(StreamObserver<ReceiveResponse> out) {
    return new Reception(out);
  }

  private List<Connection> established(PodRef pod, List<Integer> ports) throws SyscallException {
    if (ports.isEmpty()) {
      throw new BadRequest("ports: name the ports the pod serves (at least one)");
    }
    List<Connection> out = new ArrayList<>();
    try (NetNamespace ns = node.pods().open(pod, "pod")) {
      for (int port : ports) {
        if (port < 1 || port > 65535) {
          throw new BadRequest("ports: " + port + " is not a port (1..65535)");
        }
        out.addAll(ConnectionTable.established(ns, port));
      }
    }
    return out;
  }

  /** One incoming transfer: the states, each followed by its application blob in chunks. */
  private final class Reception implements StreamObserver<TransferChunk> {
    private final StreamObserver<ReceiveResponse> out;
    private final long start = System.nanoTime();
    private final List<Departure.Departed> states = new ArrayList<>();
    private String id;
    private SocketState socket;
    private byte[] app;
    private int filled;
    private long bytes;
    private boolean failed;

    Reception(StreamObserver<ReceiveResponse> out) {
      this.out = out;
    }

    @Override
    public void onNext(TransferChunk chunk) {
      if (failed) {
        return;
      }
      try {
        take(chunk);
      } catch (RuntimeException | InvalidSocketStateException e) {
        failed = true;
        out.onError(statusOf(e).asRuntimeException());
      }
    }

    private void take(TransferChunk chunk) throws InvalidSocketStateException {
      switch (chunk.getPartCase()) {
        case HEADER -> {
          id = SavedStates.checkId(chunk.getHeader().getMigrationId());
          LOG.info(
              () -> "receiving migration " + id + " from " + chunk.getHeader().getSourceNode());
        }
        case CONNECTION -> {
          requireHeader();
          finishConnection();
          long length = chunk.getConnection().getAppStateLength();
          if (length > maxStateBytes) {
            throw new BadRequest(
                "app_state_length "
                    + length
                    + " is over this agent's limit of "
                    + maxStateBytes
                    + " bytes (ferry.agent.max-state-bytes)");
          }
          socket = SocketStateCodec.fromMessage(chunk.getConnection().getSocket());
          app = new byte[(int) length];
          filled = 0;
        }
        case APP_STATE -> {
          if (socket == null) {
            throw new BadRequest("app_state came before its connection");
          }
          var data = chunk.getAppState().getData();
          if (filled + data.size() > app.length) {
            throw new BadRequest("app_state is longer than the app_state_length announced");
          }
          data.copyTo(app, filled);
          filled += data.size();
          bytes += data.size();
        }
        case END -> {
          requireHeader();
          finishConnection();
        }
        default -> throw new BadRequest("an empty transfer chunk");
      }
    }

    private void requireHeader() {
      if (id == null) {
        throw new BadRequest("a transfer must begin with its header");
      }
    }

    private void finishConnection() {
      if (socket == null) {
        return;
      }
      if (filled != app.length) {
        throw new BadRequest(
            "app_state of "
                + socket.connection()
                + " is "
                + filled
                + " bytes, "
                + app.length
                + " announced");
      }
      states.add(
          new Departure.Departed(new Connection(socket.local(), socket.remote()), socket, app));
      socket = null;
      app = null;
    }

    @Override
    public void onError(Throwable t) {
      LOG.warning(() -> "transfer of " + id + " broke off: " + t.getMessage());
    }

    @Override
    public void onCompleted() {
      if (failed) {
        return;
      }
      try {
        requireHeader();
        finishConnection();
        long micros = (System.nanoTime() - start) / 1000;
        migrations.newTarget(id).receive(states, micros);
        LOG.info(
            () ->
                "received migration "
                    + id
                    + ": "
                    + states.size()
                    + " connections, "
                    + bytes
                    + " bytes of application state in "
                    + micros / 1000
                    + " ms");
        out.onNext(
            ReceiveResponse.newBuilder().setConnections(states.size()).setBytes(bytes).build());
        out.onCompleted();
      } catch (RuntimeException e) {
        out.onError(statusOf(e).asRuntimeException());
      }
    }
  }

  interface Call<T> {
    T run() throws Exception;
  }

  private static <T> void answer(StreamObserver<T> out, Call<T> call) {
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

  static Status statusOf(Exception e) {
    if (e instanceof BadRequest || e instanceof InvalidSocketStateException) {
      return Status.INVALID_ARGUMENT.withDescription(e.getMessage());
    }
    if (e instanceof WrongPhase) {
      return Status.FAILED_PRECONDITION.withDescription(e.getMessage());
    }
    if (e instanceof Migrations.NotFound) {
      return Status.NOT_FOUND.withDescription(e.getMessage());
    }
    if (e instanceof Peers.PeerFailed) {
      return Status.UNAVAILABLE.withDescription(e.getMessage());
    }
    return Status.INTERNAL.withDescription(e.toString()).withCause(e);
  }
}
