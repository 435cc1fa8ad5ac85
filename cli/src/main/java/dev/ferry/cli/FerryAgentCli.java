// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import dev.ferry.api.client.AgentChannels;
import dev.ferry.api.client.AgentClient;
import dev.ferry.api.client.CallerTls;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.AddressResponse;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.NodeAgentGrpc.NodeAgentBlockingStub;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Function;

/**
 * {@code ferry-agent}: drives node-agents over their API, without Kubernetes. Exit codes: 0 done, 1
 * the agents refused or the migration was rolled back, 2 a command line to fix.
 */
public final class FerryAgentCli {
  static final String USAGE =
      """
      usage: ferry-agent COMMAND [--certs DIR] [--as NAME] [--timeout SECONDS] OPTIONS

        connections --agent HOST:PORT --pod POD [--port N]...
        migrate     --id ID --from HOST:PORT --from-pod POD --to HOST:PORT --to-pod POD --port N...
                    [--address CIDR [--from-host-interface IF --to-host-interface IF]]
                    [--from-node NODE --to-node NODE]
                    [--hold-limit SECONDS] [--allow-partial true] [--fault POINT (tests only)]
        rollback    --id ID --agent HOST:PORT [--agent HOST:PORT] [--wait SECONDS]
        status      --id ID --agent HOST:PORT
        address     --agent HOST:PORT --op add|announce|remove --address CIDR --pod POD
                    [--host-interface IF] [--interface IF]

      --from-node and --to-node name the nodes in the plan the command signs: agents whose
      certificates name their nodes take states only from the plan's source node's agent.
      --certs DIR holds ca.crt, NAME.crt and NAME.key (scripts/ferry-certs.sh writes them);
      it defaults to $FERRY_CERTS, else /etc/ferry/tls. --as NAME defaults to admin.
      """
          + Pods.HELP
          + "\n";

  private static final Set<String> COMMON = Set.of("certs", "as", "timeout");

  private final PrintStream out;
  // One TLS context for every agent a command talks to: the key is read once.
  private CallerTls tlsContext;

  FerryAgentCli(PrintStream out) {
    this.out = out;
  }

  public static void main(String[] args) {
    int code;
    try {
      code = new FerryAgentCli(System.out).run(Arrays.asList(args));
    } catch (Flags.UsageException e) {
      System.err.println("ferry-agent: " + e.getMessage());
      System.err.print(USAGE);
      code = 2;
    } catch (AgentClient.Failed | IllegalArgumentException e) {
      System.err.println("ferry-agent: " + e.getMessage());
      code = 1;
    }
    System.exit(code);
  }

  int run(List<String> args) {
    if (args.isEmpty() || args.get(0).equals("--help") || args.get(0).equals("help")) {
      out.print(USAGE);
      return args.isEmpty() ? 2 : 0;
    }
    String command = args.get(0);
    List<String> rest = args.subList(1, args.size());
    return switch (command) {
      case "connections" -> connections(flags(command, rest, "agent", "pod", "port"));
      case "migrate" ->
          migrate(
              flags(
                  command,
                  rest,
                  "id",
                  "from",
                  "from-pod",
                  "to",
                  "to-pod",
                  "port",
                  "address",
                  "from-host-interface",
                  "to-host-interface",
                  "from-node",
                  "to-node",
                  "hold-limit",
                  "allow-partial",
                  "fault"));
      case "rollback" -> rollback(flags(command, rest, "id", "agent", "wait"));
      case "status" -> {
        Flags f = flags(command, rest, "id", "agent");
        MigrationRef ref = ref(f);
        yield one(f, "Status", s -> s.status(ref));
      }
      case "address" ->
          address(
              flags(command, rest, "agent", "op", "address", "pod", "host-interface", "interface"));
      default -> throw new Flags.UsageException("unknown command '" + command + "'");
    };
  }

  private int connections(Flags f) {
    ListConnectionsRequest request =
        ListConnectionsRequest.newBuilder()
            .setPod(Pods.parse("--pod", f.required("pod")))
            .addAllPorts(f.ports("port"))
            .build();
    try (AgentClient agent = agent(f, f.required("agent"))) {
      List<ListedConnection> listed =
          agent.call("ListConnections", s -> s.listConnections(request)).getConnectionsList();
      out.println(listed.size() + " established connection(s)");
      listed.forEach(c -> out.println(StatusTable.listed(c)));
      return 0;
    }
  }

  private int migrate(Flags f) {
    List<Integer> ports = f.ports("port");
    if (ports.isEmpty()) {
      throw new Flags.UsageException(
          "migrate: --port is required (the ports the server listens on)");
    }
    String id = f.required("id");
    MoveRequest.Builder request =
        MoveRequest.newBuilder()
            .setMigrationId(id)
            .setSourcePod(Pods.parse("--from-pod", f.required("from-pod")))
            .setTargetPod(Pods.parse("--to-pod", f.required("to-pod")))
            .addAllPorts(ports)
            .setTargetAgent(AgentChannels.checkTarget(f.required("to")))
            .setHoldLimitMs((int) f.number("hold-limit", 0, 0, 3600) * 1000)
            .setAllowPartial(Boolean.parseBoolean(f.optional("allow-partial", "false")))
            .setSourceNode(f.optional("from-node", ""))
            .setTargetNode(f.optional("to-node", ""))
            .setFault(f.optional("fault", ""));
    if (f.optional("address", null) != null) {
      // On a LAN: the agents move the address and its routes, and the target announces it.
      request.setAddress(
          MoveAddressPlan.newBuilder()
              .setCidr(f.required("address"))
              .setHostRoute(true)
              .setAnnounce(true)
              .setSourceHostInterface(f.optional("from-host-interface", ""))
              .setTargetHostInterface(f.optional("to-host-interface", "")));
    }
    try (AgentClient source = agent(f, f.required("from"))) {
      return new MigrationDriver(out).migrate(source, request.build()) ? 0 : 1;
    } catch (AgentClient.Failed e) {
      out.println(
          "could not finish or roll back: the connections are held on the source until its hold"
              + " limit. Once the agents answer again, run: ferry-agent rollback --id "
              + id
              + " --agent "
              + f.required("to")
              + " --agent "
              + f.required("from"));
      throw e;
    }
  }

  /**
   * Rolls back on every agent named, target first. Repeats while an agent is unreachable or a
   * connection could not be rebuilt yet (its application may still be reconnecting after an agent
   * restart), up to {@code --wait} seconds.
   */
  private int rollback(Flags f) {
    String id = f.required("id");
    long deadline = System.nanoTime() + Duration.ofSeconds(f.number("wait", 30, 0, 3600)).toNanos();
    List<AgentClient> agents = new ArrayList<>();
    try {
      for (String a : f.all("agent")) {
        agents.add(agent(f, a));
      }
      if (agents.isEmpty()) {
        throw new Flags.UsageException("rollback: --agent is required (target first, then source)");
      }
      MigrationDriver driver = new MigrationDriver(out);
      while (true) {
        try {
          if (driver.rollBack(id, agents)) {
            return 0;
          }
          out.println("some connections are not back yet");
        } catch (AgentClient.Failed e) {
          out.println(e.getMessage());
        }
        if (System.nanoTime() > deadline) {
          out.println("gave up after --wait; the states stay saved on the agents");
          return 1;
        }
        sleep(1000);
      }
    } finally {
      agents.forEach(AgentClient::close);
    }
  }

  private int address(Flags f) {
    AddressRequest.Op op;
    try {
      op = AddressRequest.Op.valueOf(f.required("op").toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new Flags.UsageException("address: --op must be add, announce or remove");
    }
    AddressRequest request =
        AddressRequest.newBuilder()
            .setOp(op)
            .setAddress(f.required("address"))
            .setPod(Pods.parse("--pod", f.required("pod")))
            .setHostInterface(f.optional("host-interface", ""))
            .setInterface(f.optional("interface", ""))
            .build();
    try (AgentClient agent = agent(f, f.required("agent"))) {
      AddressResponse r = agent.call("MoveAddress", s -> s.moveAddress(request));
      out.printf(
          "%s %s: %s (%.1f ms)%n",
          op.name().toLowerCase(Locale.ROOT),
          request.getAddress(),
          r.getChanged() ? "done" : "already so",
          r.getTookMicros() / 1e3);
      return 0;
    }
  }

  /** A single call on one agent, printing the status it answers with. */
  private int one(Flags f, String what, Function<NodeAgentBlockingStub, MigrationStatus> call) {
    try (AgentClient agent = agent(f, f.required("agent"))) {
      out.print(StatusTable.of(agent.call(what, call)));
      return 0;
    }
  }

  private static MigrationRef ref(Flags f) {
    return MigrationRef.newBuilder().setMigrationId(f.required("id")).build();
  }

  private AgentClient agent(Flags f, String target) {
    AgentChannels.checkTarget(target);
    return new AgentClient(target, tls(f), Duration.ofSeconds(f.number("timeout", 30, 1, 3600)));
  }

  private CallerTls tls(Flags f) {
    if (tlsContext == null) {
      String dir =
          f.optional("certs", System.getenv().getOrDefault("FERRY_CERTS", "/etc/ferry/tls"));
      tlsContext = CallerTls.of(TlsFiles.inDirectory(Path.of(dir), f.optional("as", "admin")));
    }
    return tlsContext;
  }

  private static Flags flags(String command, List<String> args, String... own) {
    Set<String> allowed = new HashSet<>(COMMON);
    allowed.addAll(List.of(own));
    return Flags.parse(command, args, allowed);
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
