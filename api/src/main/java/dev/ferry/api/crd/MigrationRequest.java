// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Categories;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * Moves a pod's live TCP connections to a pod on another node.
 *
 * <p>The printer columns appear in the order declared here (the CRD generation keeps it).
 */
@Group("ferry.dev")
@Version("v1alpha1")
// Named, not derived: Fabric8's CustomResource derives it with its regular-expression
// pluraliser in every constructor, and the operator builds an object at every watch event,
// answer and copy (3 % of its CPU samples in make bench-operator).
@Plural("migrationrequests")
@ShortNames({"mr", "ferrymr"})
@Categories("ferry")
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase")
@AdditionalPrinterColumn(
    name = "Source",
    jsonPath = ".spec.source.name",
    getDescription = "The pod the connections move from.")
@AdditionalPrinterColumn(
    name = "Target",
    jsonPath = ".status.targetPod",
    getDescription = "The pod the connections move to, as given or as chosen.")
@AdditionalPrinterColumn(
    name = "Migrated",
    jsonPath = ".status.connections.migrated",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Total",
    jsonPath = ".status.connections.total",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Pause",
    jsonPath = ".status.pauseMillis",
    type = AdditionalPrinterColumn.Type.NUMBER,
    getDescription = "How long the clients were held, in milliseconds.")
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class MigrationRequest extends CustomResource<MigrationRequestSpec, MigrationRequestStatus>
    implements Namespaced {
  /**
   * The label naming the MigrationPolicy that made a request; such a request is deleted a while
   * after it ends (the operator's ferry.operator.policy-requests-kept).
   */
  public static final String POLICY_LABEL = "ferry.dev/policy";

  /**
   * The label naming the node whose announcement made a policy's request; such a request stays
   * while that node is in the cluster (the announcement may still be on it).
   */
  public static final String EVACUATED_NODE_LABEL = "ferry.dev/evacuated-node";

  @Override
  protected MigrationRequestStatus initStatus() {
    return new MigrationRequestStatus();
  }
}
