// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.AddressResponse;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.PodRef;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The CLI's commands, one call (or one sequence of calls) on the agents each. */
final class AgentCommands {
  private AgentCommands() {}

  private static final String POD = "the pod; " + Pods.HELP;

  /** A pod, and the agent of its node. */
  static final class PodOnNode {
    @Option(
        names = "--agent",
        required = true,
        paramLabel = "HOST:PORT",
        converter = AgentCommand.AgentAddress.class,
        description = "the agent of the pod's node")
    String agent;

    @Option(
        names = "--pod",
        required = true,
        paramLabel = "POD",
        converter = AgentCommand.Pod.class,
        description = POD)
    PodRef pod;
  }

  @Command(name = "connections", description = "Lists a pod's established connections.")
  static final class Connections extends AgentCommand {
    @Mixin PodOnNode at;

    @Option(
        names = "--port",
        paramLabel = "N",
        split = ",",
        converter = Port.class,
        description = "only connections to these local ports (repeat, or N,M)")
    List<Integer> ports = new ArrayList<>();

    Connections(Session session) {
      super(session);
    }

    @Override
    public Integer call() {
      ListConnectionsRequest request =
          ListConnectionsRequest.newBuilder().setPod(at.pod).addAllPorts(ports).build();
      try (AgentClient a = agent(at.agent)) {
        List<ListedConnection> listed =
            a.call("ListConnections", s -> s.listConnections(request)).getConnectionsList();
        out().println(listed.size() + " established connection(s)");
        listed.forEach(c -> out().println(StatusTable.listed(c)));
        return 0;
      }
    }
  }

  @Command(
      name = "migrate",
      description = {
        "Moves a pod's connections on the given ports to a pod on another node.",
        "%nThe source agent runs the whole move with the target agent (the operator's Move, the"
            + " same call), and this prints how it ended."
      },
      footer = {
        "%n--from-node and --to-node name the nodes in the plan the command signs: agents whose"
            + " certificates name their nodes take states only from the plan's source node's"
            + " agent."
      })
  static final class Migrate extends AgentCommand {
    @Option(names = "--id", required = true, paramLabel = "ID", description = "the migration's id")
    String id;

    @Option(
        names = "--from",
        required = true,
        paramLabel = "HOST:PORT",
        converter = AgentAddress.class,
        description = "the source node's agent")
    String from;

    @Option(
        names = "--from-pod",
        required = true,
        paramLabel = "POD",
        converter = Pod.class,
        description = "the source pod; " + Pods.HELP)
    PodRef fromPod;

    @Option(
        names = "--to",
        required = true,
        paramLabel = "HOST:PORT",
        converter = AgentAddress.class,
        description = "the target node's agent")
    String to;

    @Option(
        names = "--to-pod",
        required = true,
        paramLabel = "POD",
        converter = Pod.class,
        description = "the target pod, named as the source")
    PodRef toPod;

    @Option(
        names = "--port",
        required = true,
        paramLabel = "N",
        split = ",",
        converter = Port.class,
        description = "the ports the server listens on (repeat, or N,M)")
    List<Integer> ports;

    @Option(
        names = "--address",
        paramLabel = "CIDR",
        description = "on a LAN: the service address the agents move, with its routes")
    String address;

    @Option(
        names = "--from-host-interface",
        paramLabel = "IF",
        defaultValue = "",
        description = "the source pod's host-side veth, for the address's host route")
    String fromHostInterface;

    @Option(
        names = "--to-host-interface",
        paramLabel = "IF",
        defaultValue = "",
        description = "the target pod's host-side veth")
    String toHostInterface;

    @Option(
        names = "--from-node",
        paramLabel = "NODE",
        defaultValue = "",
        description = "the source node, signed into the plan")
    String fromNode;

    @Option(
        names = "--to-node",
        paramLabel = "NODE",
        defaultValue = "",
        description = "the target node, signed into the plan")
    String toNode;

    @Option(
        names = "--hold-limit",
        paramLabel = "SECONDS",
        defaultValue = "0",
        description = "how long clients may be held, 0..3600; 0: the agent's own limit")
    int holdLimit;

    @Option(
        names = "--allow-partial",
        arity = "1",
        paramLabel = "true|false",
        defaultValue = "false",
        description = "commit the connections that staged even when others did not")
    boolean allowPartial;

    @Option(
        names = "--fault",
        paramLabel = "POINT",
        defaultValue = "",
        description = "tests only: the agent fails at this point")
    String fault;

    Migrate(Session session) {
      super(session);
    }

    @Override
    public Integer call() {
      MoveRequest.Builder request =
          MoveRequest.newBuilder()
              .setMigrationId(id)
              .setSourcePod(fromPod)
              .setTargetPod(toPod)
              .addAllPorts(ports)
              .setTargetAgent(to)
              .setHoldLimitMs(within("--hold-limit", holdLimit, 0, 3600) * 1000)
              .setAllowPartial(allowPartial)
              .setSourceNode(fromNode)
              .setTargetNode(toNode)
              .setFault(fault);
      if (address != null) {
        // On a LAN: the agents move the address and its routes, and the target announces it.
        request.setAddress(
            MoveAddressPlan.newBuilder()
                .setCidr(address)
                .setHostRoute(true)
                .setAnnounce(true)
                .setSourceHostInterface(fromHostInterface)
                .setTargetHostInterface(toHostInterface));
      }
      try (AgentClient source = agent(from)) {
        return new MigrationDriver(out()).migrate(source, request.build()) ? 0 : 1;
      } catch (AgentClient.Failed e) {
        out()
            .println(
                "could not finish or roll back: the connections are held on the source until its"
                    + " hold limit. Once the agents answer again, run: ferry-agent rollback --id "
                    + id
                    + " --agent "
                    + to
                    + " --agent "
                    + from);
        throw e;
      }
    }
  }

  /**
   * Rolls back on every agent named, target first. Repeats while an agent is unreachable or a
   * connection could not be rebuilt yet (its application may still be reconnecting after an agent
   * restart), up to {@code --wait} seconds.
   */
  @Command(
      name = "rollback",
      description = "Rolls a migration back on each agent named, target first, then source.")
  static final class Rollback extends AgentCommand {
    @Option(names = "--id", required = true, paramLabel = "ID", description = "the migration's id")
    String id;

    @Option(
        names = "--agent",
        required = true,
        paramLabel = "HOST:PORT",
        converter = AgentAddress.class,
        description = "an agent to roll back on: the target's first, then the source's")
    List<String> agents;

    @Option(
        names = "--wait",
        paramLabel = "SECONDS",
        defaultValue = "30",
        description = "how long to try again while an agent is away, 0..3600 (default: 30)")
    int waitSeconds;

    Rollback(Session session) {
      super(session);
    }

    @Override
    public Integer call() {
      long deadline =
          System.nanoTime() + Duration.ofSeconds(within("--wait", waitSeconds, 0, 3600)).toNanos();
      List<AgentClient> clients = new ArrayList<>();
      try {
        for (String a : agents) {
          clients.add(agent(a));
        }
        MigrationDriver driver = new MigrationDriver(out());
        while (true) {
          try {
            if (driver.rollBack(id, clients)) {
              return 0;
            }
            out().println("some connections are not back yet");
          } catch (AgentClient.Failed e) {
            out().println(e.getMessage());
          }
          if (System.nanoTime() > deadline) {
            out().println("gave up after --wait; the states stay saved on the agents");
            return 1;
          }
          sleep(1000);
        }
      } finally {
        clients.forEach(AgentClient::close);
      }
    }

    private static void sleep(long millis) {
      try {
        Thread.sleep(millis);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Command(name = "status", description = "Prints what an agent knows of a migration.")
  static final class Status extends AgentCommand {
    @Option(names = "--id", required = true, paramLabel = "ID", description = "the migration's id")
    String id;

    @Option(
        names = "--agent",
        required = true,
        paramLabel = "HOST:PORT",
        converter = AgentAddress.class,
        description = "the agent to ask")
    String agent;

    Status(Session session) {
      super(session);
    }

    @Override
    public Integer call() {
      MigrationRef ref = MigrationRef.newBuilder().setMigrationId(id).build();
      try (AgentClient a = agent(agent)) {
        out().print(StatusTable.of(a.call("Status", s -> s.status(ref))));
        return 0;
      }
    }
  }

  @Command(
      name = "address",
      description = "Adds, announces or removes a service address on a pod, by hand.")
  static final class Address extends AgentCommand {
    /** What {@code --op} may say; the API's enum also has an unspecified value. */
    enum Op {
      add,
      announce,
      remove
    }

    @Mixin PodOnNode at;

    @Option(
        names = "--op",
        required = true,
        paramLabel = "OP",
        description = "one of ${COMPLETION-CANDIDATES}")
    Op op;

    @Option(
        names = "--address",
        required = true,
        paramLabel = "CIDR",
        description = "e.g. 10.0.0.100/32")
    String address;

    @Option(
        names = "--host-interface",
        paramLabel = "IF",
        defaultValue = "",
        description = "the pod's host-side veth, for the host route; none if not given")
    String hostInterface;

    @Option(
        names = "--interface",
        paramLabel = "IF",
        defaultValue = "",
        description = "the pod's interface; eth0 if not given")
    String iface;

    Address(Session session) {
      super(session);
    }

    @Override
    public Integer call() {
      AddressRequest request =
          AddressRequest.newBuilder()
              .setOp(AddressRequest.Op.valueOf(op.name().toUpperCase(Locale.ROOT)))
              .setAddress(address)
              .setPod(at.pod)
              .setHostInterface(hostInterface)
              .setInterface(iface)
              .build();
      try (AgentClient a = agent(at.agent)) {
        AddressResponse r = a.call("MoveAddress", s -> s.moveAddress(request));
        out()
            .printf(
                "%s %s: %s (%.1f ms)%n",
                op, address, r.getChanged() ? "done" : "already so", r.getTookMicros() / 1e3);
        return 0;
      }
    }
  }
}
