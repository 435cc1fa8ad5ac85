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
 * Which pods of a namespace Ferry protects, and on which node signals it moves their connections on
 * its own.
 *
 * <p>The printer columns appear in the order declared here (the CRD generation keeps it).
 */
@Group("ferry.dev")
@Version("v1alpha1")
// Named, not derived: Fabric8's CustomResource derives it with its regular-expression
// pluraliser in every constructor, and the operator builds an object at every watch event,
// answer and copy (3 % of its CPU samples in make bench-operator).
@Plural("migrationpolicies")
// Not "mp": Cluster API's MachinePool has it.
@ShortNames("ferrymp")
@Categories("ferry")
@AdditionalPrinterColumn(
    name = "Ready",
    jsonPath = ".status.conditions[?(@.type==\"Ready\")].status",
    getDescription =
        "Whether the policy's spec is usable; the Ready condition's reason says why not.")
@AdditionalPrinterColumn(
    name = "Requests",
    jsonPath = ".status.requestsCreated",
    type = AdditionalPrinterColumn.Type.INTEGER,
    getDescription = "MigrationRequests this policy created.")
@AdditionalPrinterColumn(name = "Last-Trigger", jsonPath = ".status.lastTrigger")
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class MigrationPolicy extends CustomResource<MigrationPolicySpec, MigrationPolicyStatus>
    implements Namespaced {}
