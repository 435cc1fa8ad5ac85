// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ProviderIdTest {
  @Test
  void readsTheInstanceIdAfterTheZone() {
    assertThat(ProviderId.instanceId("aws:///us-east-1a/i-0123456789abcdef0"))
        .isEqualTo("i-0123456789abcdef0");
  }

  @Test
  void readsShortInstanceIdsAndLocalZones() {
    assertThat(ProviderId.instanceId("aws:///us-west-2-lax-1a/i-0123abcd")).isEqualTo("i-0123abcd");
  }

  @Test
  void readsAnEmptyZone() {
    assertThat(ProviderId.instanceId("aws:////i-0123456789abcdef0"))
        .isEqualTo("i-0123456789abcdef0");
  }

  @Test
  void refusesAFargateNodeNamingTheField() {
    assertThatThrownBy(
            () ->
                ProviderId.instanceId(
                    "aws:///us-east-2b/a9f5c6e7fd/fargate-ip-192-168-153-18.us-east-2.compute"
                        + ".internal"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("spec.providerID")
        .hasMessageContaining("fargate-ip-192-168-153-18")
        .hasMessageContaining("aws:///<availability-zone>/i-<hex>");
  }

  @Test
  void refusesAnotherCloud() {
    assertThatThrownBy(() -> ProviderId.instanceId("gce://project/us-central1-a/node-1"))
        .hasMessageContaining("spec.providerID 'gce://project/us-central1-a/node-1'");
  }

  @Test
  void refusesABareOrMangledInstanceId() {
    assertThatThrownBy(() -> ProviderId.instanceId("i-0123456789abcdef0"))
        .hasMessageContaining("spec.providerID");
    assertThatThrownBy(() -> ProviderId.instanceId("aws:///us-east-1a/i-0123456789ABCDEF0"))
        .hasMessageContaining("spec.providerID");
    assertThatThrownBy(() -> ProviderId.instanceId("aws:///us-east-1a/i-0123456789abcdef0/x"))
        .hasMessageContaining("spec.providerID");
  }

  @Test
  void refusesAMissingProviderId() {
    assertThatThrownBy(() -> ProviderId.instanceId(null))
        .hasMessageContaining("no spec.providerID");
    assertThatThrownBy(() -> ProviderId.instanceId(" ")).hasMessageContaining("no spec.providerID");
  }
}
