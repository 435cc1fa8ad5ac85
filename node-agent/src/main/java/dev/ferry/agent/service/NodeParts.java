// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.move.ConnectionMover;
import java.util.concurrent.ExecutorService;

/** What a migration on this node works with. */
record NodeParts(
    String nodeName,
    ConnectionMover mover,
    ConnectionHold hold,
    SavedStates saved,
    CommitRecords commits,
    PodNamespaces pods,
    PodAddresses addresses,
    Peers peers,
    ExecutorService workers,
    AgentMetrics metrics,
    FaultPoints faults) {}
