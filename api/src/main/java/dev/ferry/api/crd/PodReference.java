// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;

/** A pod by name, in the MigrationRequest's namespace. */
public class PodReference {
  @Required
  @Pattern("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
  @Size(max = 253)
  @JsonPropertyDescription("The pod's name, in the MigrationRequest's namespace.")
  private String name;

  public PodReference() {}

  public PodReference(String name) {
    this.name = name;
  }

  public String getName() {
    return name;
  }

  public void setName(String name) {
    this.name = name;
  }
}
