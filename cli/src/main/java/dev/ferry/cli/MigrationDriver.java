// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import static dev.ferry.api.v1alpha1.ConnectionPhase.FAILED;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import java.io.PrintStream;
import java.util.List;

/**
 * One migration between two agents, without Kubernetes: for debugging and for the agents' own
 * tests. The agents run the whole move between themselves (the source agent's Move, the same call
 * the operator makes); this prints how it ended. When an agent dies halfway, {@code ferry-agent
 * rollback} finishes the job once it is back, from what the agents kept.
 */
final class MigrationDriver {
  private final PrintStream out;

  MigrationDriver(PrintStream out) {
    this.out = out;
  }

  /**
   * @return true if the connections live on the target and the source let them go
   */
  boolean migrate(AgentClient source, MoveRequest request) {
    MoveOutcome o = source.call("Move", s -> s.move(request));
    if (o.hasSource()) {
      step("source", o.getSource());
    }
    if (o.hasTarget() && o.getTarget().getConnectionsCount() > 0) {
      step("target", o.getTarget());
    }
    out.printf(
        "pause %.1f ms (first freeze to last resume, as the agents saw it); %d other call(s) to the"
            + " source agent meanwhile%n",
        o.getPauseMicros() / 1e3, o.getApiCallsDuringPause());
    out.println("migration " + request.getMigrationId() + " " + verb(o) + ": " + o.getMessage());
    return o.getResult() == MoveOutcome.Result.COMPLETED;
  }

  private static String verb(MoveOutcome o) {
    return switch (o.getResult()) {
      case COMPLETED -> "completed";
      case ROLLED_BACK -> "rolled back";
      case NOTHING_TO_MOVE -> "moved nothing";
      case AWAITING_ADDRESS -> "waits for its address";
      default -> "failed";
    };
  }

  /**
   * Rolls {@code id} back on each agent, target first so that the source is the only live copy. An
   * agent that does not know the migration has nothing to undo; past the target's commit record the
   * source releases instead of rebuilding.
   */
  boolean rollBack(String id, List<AgentClient> agents) {
    MigrationRef ref = MigrationRef.newBuilder().setMigrationId(id).build();
    boolean whole = true;
    for (AgentClient agent : agents) {
      try {
        MigrationStatus s = agent.call("Rollback", a -> a.rollback(ref));
        step("rollback", s);
        whole &= s.getConnectionsList().stream().noneMatch(c -> c.getPhase() == FAILED);
      } catch (AgentClient.Failed e) {
        if (!e.notFound()) {
          throw e;
        }
        out.println("rollback: the agent at " + agent.target + " has nothing of " + id);
      }
    }
    return whole;
  }

  private void step(String name, MigrationStatus s) {
    out.print(name + ": ");
    out.print(StatusTable.of(s));
  }
}
