// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.v1alpha1.PodRef;
import java.time.Duration;
import java.util.List;

/** A validated MigrationRequest: who, where, which agents, which address. */
public record Plan(
    String id,
    PodRef source,
    String sourceNode,
    String sourceAgent,
    PodRef target,
    String targetNode,
    String targetAgent,
    List<Integer> ports,
    String address,
    Duration deadline,
    Duration holdLimit) {}
