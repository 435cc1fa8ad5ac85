// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.operator.migration.Plan;
import java.util.List;

/**
 * Moves a pod's address between nodes: the address and the node's route to the pod through the
 * agents, and whatever the network beyond needs through the {@link Fabric}.
 */
public final class AddressMove {
  private final Plan plan;
  private final AgentClient source;
  private final AgentClient target;
  private final Fabric fabric;

  public AddressMove(Plan plan, AgentClient source, AgentClient target, Fabric fabric) {
    this.plan = plan;
    this.source = source;
    this.target = target;
    this.fabric = fabric;
  }

  /**
   * The address on the target pod only, not routed to it: the restored sockets bind to it, and no
   * client segment reaches them before they exist.
   */
  public void prepareTarget() {
    call(target, plan.target(), AddressRequest.Op.ADD, false);
  }

  /** Undoes {@link #prepareTarget}. */
  public void unprepareTarget() {
    call(target, plan.target(), AddressRequest.Op.REMOVE, false);
  }

  /** The address leaves the source node and arrives on the target's, routed to its pod. */
  public void switchToTarget() throws Exception {
    call(source, plan.source(), AddressRequest.Op.REMOVE, true);
    call(target, plan.target(), AddressRequest.Op.ADD, true);
    fabric.claim(bare(plan.address()), plan.targetNode());
  }

  /** After the sockets resume on the target: neighbours learn where the address is now. */
  public void announceOnTarget() {
    if (fabric.announces()) {
      call(target, plan.target(), AddressRequest.Op.ANNOUNCE, false);
    }
  }

  /**
   * The whole move undone: the address back on the source pod, routed, claimed, announced. The
   * target's part is best effort, noted in {@code problems}: its agent may be what failed.
   */
  public void switchBack(List<String> problems) throws Exception {
    try {
      call(target, plan.target(), AddressRequest.Op.REMOVE, true);
    } catch (RuntimeException e) {
      problems.add("taking the address off the target failed: " + e.getMessage());
    }
    call(source, plan.source(), AddressRequest.Op.ADD, true);
    try {
      fabric.claim(bare(plan.address()), plan.sourceNode());
    } catch (RuntimeException e) {
      // The connections still go back to the source: the network is told again on a retry.
      problems.add(
          "giving the address back to " + plan.sourceNode() + " failed: " + e.getMessage());
    }
    if (fabric.announces()) {
      call(source, plan.source(), AddressRequest.Op.ANNOUNCE, false);
    }
  }

  private void call(AgentClient agent, PodRef pod, AddressRequest.Op op, boolean hostRoute) {
    AddressRequest r =
        AddressRequest.newBuilder()
            .setOp(op)
            .setAddress(plan.address())
            .setPod(pod)
            .setHostRoute(hostRoute)
            .setMigrationId(plan.id())
            .build();
    agent.call("MoveAddress " + op, s -> s.moveAddress(r));
  }

  /** The address without its prefix length: what EC2 calls it. */
  private static String bare(String cidr) {
    int slash = cidr.indexOf('/');
    return slash < 0 ? cidr : cidr.substring(0, slash);
  }
}
