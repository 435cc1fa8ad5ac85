// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.Quantity;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The memory the chart's pods give the operator's and the agents' JVMs, for the test clusters'
 * processes: the container's limit (which the JVM takes for the machine's memory) and the chart's
 * javaOpts, read from helm/ferry/values.yaml, so that tests and benchmarks run the heap a user's
 * pod gets (without it a process here sizes its heap from the whole machine, a quarter of 24 GiB).
 */
public final class ChartMemory {
  private ChartMemory() {}

  /** JDK_JAVA_OPTIONS as the chart's node-agent pod has them, with its memory limit. */
  public static String agent() {
    return javaOptions("agent");
  }

  /** JDK_JAVA_OPTIONS as the chart's operator pod has them, with its memory limit. */
  public static String operator() {
    return javaOptions("operator");
  }

  private static String javaOptions(String component) {
    JsonNode values;
    try {
      values =
          new ObjectMapper(new YAMLFactory())
              .readTree(Builds.repoFile("helm/ferry/values.yaml").toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    JsonNode c = values.path(component);
    String limit = c.path("resources").path("limits").path("memory").asText("");
    if (limit.isEmpty()) {
      throw new IllegalStateException(
          "helm/ferry/values.yaml sets no " + component + ".resources.limits.memory");
    }
    long bytes = Quantity.getAmountInBytes(new Quantity(limit)).longValueExact();
    // MaxRAM: the memory the JVM sizes itself from, as a container's limit is.
    return ("-XX:MaxRAM=" + bytes + " " + c.path("javaOpts").asText("")).trim();
  }
}
