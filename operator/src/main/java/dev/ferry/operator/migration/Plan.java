// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.v1alpha1.PodRef;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Duration;
import java.util.List;

/**
 * A validated MigrationRequest: who, where, which agents, which address.
 *
 * @param targetAddresses the target pod's own addresses (not those Ferry moved there), as the plan
 *     read them: where the moved address lands is recorded from them, without reading the pod again
 * @param sourcePod the source pod as the plan read it, null if it did not: the eviction guard
 *     patches it as read, a patch the API server refuses once the pod changed (its resourceVersion)
 */
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
    Duration holdLimit,
    List<String> targetAddresses,
    Pod sourcePod) {}
