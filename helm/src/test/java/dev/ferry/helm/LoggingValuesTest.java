// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * logging.format and logging.level reach the operator and every agent as the Quarkus configuration
 * they read: JSON lines through quarkus-logging-json, the level of Ferry's loggers.
 */
class LoggingValuesTest {

  @Test
  void byDefaultBothLogPlainLinesAtInfo() {
    for (Container c : containers(HelmChart.render(ValueSet.DEFAULT))) {
      assertThat(Manifests.env(c.getEnv(), "QUARKUS_LOG_CONSOLE_JSON_ENABLED"))
          .as(c.getName())
          .isEqualTo("false");
      assertThat(Manifests.env(c.getEnv(), "QUARKUS_LOG_CATEGORY__DEV_FERRY__LEVEL"))
          .as(c.getName())
          .isEqualTo("INFO");
    }
  }

  @Test
  void jsonAndDebugReachBothPrograms(@TempDir Path dir) throws IOException {
    Path values = dir.resolve("logging.yaml");
    Files.writeString(values, "logging:\n  format: json\n  level: DEBUG\n");

    Manifests m = Manifests.parse(HelmChart.template(HelmChart.NAMESPACE, values));

    for (Container c : containers(m)) {
      assertThat(Manifests.env(c.getEnv(), "QUARKUS_LOG_CONSOLE_JSON_ENABLED"))
          .as(c.getName())
          .isEqualTo("true");
      assertThat(Manifests.env(c.getEnv(), "QUARKUS_LOG_CATEGORY__DEV_FERRY__LEVEL"))
          .as(c.getName())
          .isEqualTo("DEBUG");
    }
  }

  private static List<Container> containers(Manifests m) {
    return List.of(
        m.one(Deployment.class, "ferry-operator")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0),
        m.one(DaemonSet.class, "ferry-node-agent")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0));
  }
}
