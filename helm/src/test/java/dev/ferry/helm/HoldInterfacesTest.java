// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * agent.holdInterfaces reaches the agent as FERRY_AGENT_HOLD_INTERFACES, comma-separated; left
 * empty it is not set, and the agent holds on its uplink alone. With the AWS mover the agents
 * forward on those interfaces too.
 */
class HoldInterfacesTest {
  @Test
  void theAwsValuesHoldOnThePrimaryInterfaceAndTheServiceAddressesEni() {
    assertThat(env(ValueSet.AWS, "FERRY_AGENT_HOLD_INTERFACES")).isEqualTo("ens5,ens6");
    assertThat(env(ValueSet.AWS, "FERRY_AGENT_UPLINK")).isEqualTo("ens5");
  }

  @Test
  void byDefaultTheAgentHoldsOnItsUplinkAlone() {
    assertThat(env(ValueSet.DEFAULT, "FERRY_AGENT_HOLD_INTERFACES")).isNull();
    assertThat(env(ValueSet.DEFAULT, "FERRY_AGENT_UPLINK")).isEqualTo("eth0");
  }

  @Test
  void onAwsTheAgentsForwardAMovedAddressUntilTheVpcDeliversIt() {
    assertThat(env(ValueSet.AWS, "FERRY_AGENT_FORWARDING_ENABLED")).isEqualTo("true");
    assertThat(env(ValueSet.L2, "FERRY_AGENT_FORWARDING_ENABLED")).isEqualTo("false");
    assertThat(env(ValueSet.DEFAULT, "FERRY_AGENT_FORWARDING_ENABLED")).isEqualTo("false");
  }

  private static String env(ValueSet set, String name) {
    List<EnvVar> env =
        HelmChart.render(set)
            .one(DaemonSet.class, "ferry-node-agent")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0)
            .getEnv();
    return Manifests.env(env, name);
  }
}
