// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;

/** Which pod holds a moved address, and which request put it there. */
public class MovedAddressSpec {
  @Required
  @Size(max = 45)
  @JsonPropertyDescription("The address, without a prefix length.")
  private String address;

  @Required
  @JsonPropertyDescription("The pod that holds the address.")
  private HolderPod pod;

  @Size(max = 253)
  @JsonPropertyDescription("The node the holding pod runs on.")
  private String node;

  @Size(max = 317)
  @JsonPropertyDescription("The MigrationRequest that moved it there, as namespace/name.")
  private String migrationRequest;

  public MovedAddressSpec() {}

  public MovedAddressSpec(String address, HolderPod pod, String node, String migrationRequest) {
    this.address = address;
    this.pod = pod;
    this.node = node;
    this.migrationRequest = migrationRequest;
  }

  public String getAddress() {
    return address;
  }

  public void setAddress(String address) {
    this.address = address;
  }

  public HolderPod getPod() {
    return pod;
  }

  public void setPod(HolderPod pod) {
    this.pod = pod;
  }

  public String getNode() {
    return node;
  }

  public void setNode(String node) {
    this.node = node;
  }

  public String getMigrationRequest() {
    return migrationRequest;
  }

  public void setMigrationRequest(String migrationRequest) {
    this.migrationRequest = migrationRequest;
  }

  /**
   * A pod by namespace, name and uid: the uid, because a pod deleted and made again under its name
   * (a StatefulSet's) has a new address of its own and no claim on the old one's.
   */
  public static class HolderPod {
    @Required
    @Size(max = 63)
    private String namespace;

    @Required
    @Size(max = 253)
    private String name;

    @Required
    @Size(max = 36)
    private String uid;

    public HolderPod() {}

    public HolderPod(String namespace, String name, String uid) {
      this.namespace = namespace;
      this.name = name;
      this.uid = uid;
    }

    public String getNamespace() {
      return namespace;
    }

    public void setNamespace(String namespace) {
      this.namespace = namespace;
    }

    public String getName() {
      return name;
    }

    public void setName(String name) {
      this.name = name;
    }

    public String getUid() {
      return uid;
    }

    public void setUid(String uid) {
      this.uid = uid;
    }
  }
}
