// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** Moves a pod's live TCP connections to a pod on another node. */
@Group("ferry.dev")
@Version("v1alpha1")
@ShortNames("mr")
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase")
@AdditionalPrinterColumn(name = "Source", jsonPath = ".spec.source.name")
@AdditionalPrinterColumn(name = "Target", jsonPath = ".status.targetPod")
@AdditionalPrinterColumn(
    name = "Migrated",
    jsonPath = ".status.connections.migrated",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Total",
    jsonPath = ".status.connections.total",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Pause-ms",
    jsonPath = ".status.pauseMillis",
    type = AdditionalPrinterColumn.Type.NUMBER)
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class MigrationRequest extends CustomResource<MigrationRequestSpec, MigrationRequestStatus>
    implements Namespaced {

  @Override
  protected MigrationRequestStatus initStatus() {
    return new MigrationRequestStatus();
  }
}
