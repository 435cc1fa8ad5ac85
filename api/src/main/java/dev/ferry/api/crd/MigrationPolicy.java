// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * Which pods of a namespace Ferry protects, and on which node signals it moves their connections on
 * its own.
 */
@Group("ferry.dev")
@Version("v1alpha1")
@ShortNames("mp")
@AdditionalPrinterColumn(
    name = "Requests",
    jsonPath = ".status.requestsCreated",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Last-Trigger", jsonPath = ".status.lastTrigger")
public class MigrationPolicy extends CustomResource<MigrationPolicySpec, MigrationPolicyStatus>
    implements Namespaced {}
