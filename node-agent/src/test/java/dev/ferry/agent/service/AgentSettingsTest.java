// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import static org.assertj.core.api.Assertions.assertThat;

import io.smallrye.config.EnvConfigSource;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** FERRY_AGENT_HOLD_INTERFACES lists the hold's interfaces; unset, the hold runs on the uplink. */
class AgentSettingsTest {
  private static AgentSettings settings(Map<String, String> environment) {
    Map<String, String> required =
        Map.of(
            "ferry.agent.node-name", "node-a",
            "ferry.agent.tls.cert", "/etc/ferry/tls/agent.crt",
            "ferry.agent.tls.key", "/etc/ferry/tls/agent.key",
            "ferry.agent.tls.ca", "/etc/ferry/tls/ca.crt");
    SmallRyeConfig config =
        new SmallRyeConfigBuilder()
            .withMapping(AgentSettings.class)
            .withSources(new PropertiesConfigSource(required, "required", 100))
            .withSources(new EnvConfigSource(new HashMap<>(environment), 300))
            .build();
    return config.getConfigMapping(AgentSettings.class);
  }

  @Test
  void theHoldRunsOnTheUplinkAloneByDefault() {
    assertThat(settings(Map.of()).holdInterfacesOrUplink()).containsExactly("eth0");
    assertThat(settings(Map.of("FERRY_AGENT_UPLINK", "ens5")).holdInterfacesOrUplink())
        .containsExactly("ens5");
  }

  @Test
  void theHoldRunsOnEveryInterfaceListed() {
    AgentSettings s =
        settings(Map.of("FERRY_AGENT_UPLINK", "ens5", "FERRY_AGENT_HOLD_INTERFACES", "ens5,ens6"));
    assertThat(s.holdInterfacesOrUplink()).isEqualTo(List.of("ens5", "ens6"));
    assertThat(s.uplink()).isEqualTo("ens5");
  }
}
