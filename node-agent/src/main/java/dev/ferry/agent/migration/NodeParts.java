// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.address.PodAddresses;
import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.move.ConnectionMover;
import dev.ferry.agent.peer.Peers;
import dev.ferry.agent.service.AgentMetrics;
import dev.ferry.agent.store.CommitRecords;
import dev.ferry.agent.store.SavedStates;
import dev.ferry.agent.tunnel.Forwarding;
import java.util.concurrent.ExecutorService;

/** What a migration on this node works with. */
public record NodeParts(
    String nodeName,
    ConnectionMover mover,
    ConnectionHold hold,
    SavedStates saved,
    CommitRecords commits,
    PodNamespaces pods,
    PodAddresses addresses,
    Forwarding forwarding,
    Peers peers,
    ExecutorService workers,
    AgentMetrics metrics,
    FaultPoints faults,
    PlanCheck plans) {}
