// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testbed.AnotherWriter;
import dev.ferry.testbed.MockApi;
import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.api.model.coordination.v1.LeaseBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The operator's Lease given up as it stops, on Fabric8's mock API server in CRUD mode (which
 * refuses an update carrying a resourceVersion that is no longer the object's, as an API server
 * does), with the operator's rights as the chart grants them ({@link RbacCalls}): only this
 * operator's own Lease is let go, and one another holder took meanwhile stays theirs.
 */
class LeaseReleaseTest {
  private static final String NS = "ferry-system";
  private static final String NAME = "ferry-operator-leader";

  /** Another replica's writes, let in just before the release's. */
  private final AnotherWriter another = new AnotherWriter();

  @RegisterExtension final MockApi api = MockApi.with(another);

  @Test
  void itsOwnLeaseIsLeftWithoutHolderForAStandbyToTakeAtOnce() {
    lease("operator-1", 7);

    assertThat(release("operator-1")).isTrue();

    Lease after = read();
    assertThat(after.getSpec().getHolderIdentity()).isNull();
    assertThat(after.getSpec().getLeaseDurationSeconds()).isEqualTo(1);
    assertThat(after.getSpec().getLeaseTransitions()).as("transitions kept").isEqualTo(7);
    assertThat(after.getSpec().getRenewTime()).isAfter(ZonedDateTime.now().minusMinutes(1));
  }

  @Test
  void aLeaseAnotherHoldsIsLeftAsItIs() {
    lease("operator-2", 3);

    assertThat(release("operator-1")).isFalse();

    Lease after = read();
    assertThat(after.getSpec().getHolderIdentity()).isEqualTo("operator-2");
    assertThat(after.getSpec().getLeaseDurationSeconds()).isEqualTo(15);
  }

  @Test
  void noLeaseAtAllIsNothingToLetGo() {
    assertThat(release("operator-1")).isFalse();
    assertThat(read()).isNull();
  }

  @Test
  void aLeaseTakenBetweenTheReadAndTheUpdateStaysTheTakers() {
    Lease ours = lease("operator-1", 2);
    ours.getSpec().setHolderIdentity("operator-2");
    another.putsFirst(Serialization.asJson(ours));

    assertThat(release("operator-1")).isFalse();

    assertThat(read().getSpec().getHolderIdentity()).isEqualTo("operator-2");
    assertThat(read().getSpec().getLeaseDurationSeconds()).isEqualTo(15);
  }

  private boolean release(String identity) {
    return new LeaseRelease(api.as("operator"), NS, NAME, identity).release();
  }

  private Lease lease(String holder, int transitions) {
    ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
    return api.admin()
        .leases()
        .inNamespace(NS)
        .resource(
            new LeaseBuilder()
                .withNewMetadata()
                .withName(NAME)
                .withNamespace(NS)
                .endMetadata()
                .withNewSpec()
                .withHolderIdentity(holder)
                .withLeaseDurationSeconds(15)
                .withAcquireTime(now)
                .withRenewTime(now)
                .withLeaseTransitions(transitions)
                .endSpec()
                .build())
        .create();
  }

  private Lease read() {
    return api.admin().leases().inNamespace(NS).withName(NAME).get();
  }
}
