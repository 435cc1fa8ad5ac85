// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Categories;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * An address Ferry moved into a pod that does not own it by its own status: the record that lets
 * that pod move the address on again.
 *
 * <p>Cluster-scoped and written only by the operator, because it decides which addresses a pod may
 * take from the network: a record a tenant could write (an annotation on their own pod) would let
 * them claim another workload's address, and on AWS {@code AssignPrivateIpAddresses} with
 * reassignment would take it. One object per address, named by {@link #nameFor}, so that an address
 * has at most one holder.
 */
@Group("ferry.dev")
@Version("v1alpha1")
@Plural("movedaddresses")
@ShortNames("ferryma")
@Categories("ferry")
@AdditionalPrinterColumn(name = "Address", jsonPath = ".spec.address")
@AdditionalPrinterColumn(name = "Namespace", jsonPath = ".spec.pod.namespace")
@AdditionalPrinterColumn(
    name = "Pod",
    jsonPath = ".spec.pod.name",
    getDescription = "The pod that holds the address now.")
@AdditionalPrinterColumn(name = "Request", jsonPath = ".spec.migrationRequest")
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class MovedAddress extends CustomResource<MovedAddressSpec, Void> {

  /**
   * The object's name for an address: IPv4 as written, IPv6 in its full form with '-' for ':'
   * (names allow neither ':' nor a leading '-'), so that every spelling of one address names one
   * object.
   */
  public static String nameFor(String address) {
    String ip = address.contains("/") ? address.substring(0, address.indexOf('/')) : address;
    if (!ip.matches("[0-9a-fA-F:.]+")) {
      throw new IllegalArgumentException(address + " is not an IP address");
    }
    try {
      return InetAddress.getByName(ip).getHostAddress().replace(':', '-').toLowerCase();
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException(address + " is not an IP address", e);
    }
  }

  public static MovedAddress of(MovedAddressSpec spec) {
    MovedAddress m = new MovedAddress();
    m.setMetadata(new ObjectMetaBuilder().withName(nameFor(spec.getAddress())).build());
    m.setSpec(spec);
    return m;
  }
}
