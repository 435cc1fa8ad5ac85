// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

/** Finds the agent of a node by the address of its API (HOST:PORT, as a {@link Plan} has it). */
@FunctionalInterface
public interface Agents {
  Agent agent(String hostPort);
}
