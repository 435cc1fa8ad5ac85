// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.services.ec2.model.NetworkInterface;

class TargetInterfaceTest {
  @Test
  void prefersTheInterfaceTheCniLeavesAlone() {
    assertThat(
            choose(eni("eni-0", 0, 0, false), eni("eni-2", 2, 0, true), eni("eni-1", 1, 0, false)))
        .contains("eni-2");
  }

  @Test
  void otherwiseTakesTheLowestDeviceIndex() {
    assertThat(choose(eni("eni-2", 2, 0, false), eni("eni-1", 1, 0, false))).contains("eni-1");
  }

  @Test
  void aNoManageTagThatIsNotTrueDoesNotCount() {
    NetworkInterface falseTag =
        eni("eni-5", 5, 0, false).toBuilder()
            .tagSet(t -> t.key(TargetInterface.NO_MANAGE_TAG).value("false"))
            .build();
    assertThat(choose(falseTag, eni("eni-3", 3, 0, false))).contains("eni-3");
  }

  @Test
  void amongEqualDeviceIndexesTakesTheFirstNetworkCard() {
    assertThat(choose(eni("eni-b", 1, 1, true), eni("eni-a", 1, 0, true))).contains("eni-a");
  }

  @Test
  void noCandidatesNoChoice() {
    assertThat(TargetInterface.choose(List.of())).isEmpty();
  }

  private static Optional<String> choose(NetworkInterface... candidates) {
    return TargetInterface.choose(List.of(candidates)).map(NetworkInterface::networkInterfaceId);
  }

  private static NetworkInterface eni(String id, int device, int card, boolean unmanaged) {
    NetworkInterface.Builder b =
        NetworkInterface.builder()
            .networkInterfaceId(id)
            .attachment(a -> a.instanceId("i-0123abcd").deviceIndex(device).networkCardIndex(card));
    if (unmanaged) {
      b.tagSet(t -> t.key(TargetInterface.NO_MANAGE_TAG).value("true"));
    }
    return b.build();
  }
}
