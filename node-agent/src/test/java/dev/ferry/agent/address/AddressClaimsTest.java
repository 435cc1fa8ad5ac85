// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * The address on a target pod, as the arrivals that rely on it come and go: a pod whose address is
 * a boolean here, added and removed only through the claims.
 */
class AddressClaimsTest {
  private static final String KEY = "198.18.9.100/24 on pod-b";

  private final AddressClaims claims = new AddressClaims();
  private boolean onPod;
  private int removals;

  private boolean add() {
    boolean changed = !onPod;
    onPod = true;
    return changed;
  }

  private boolean remove() {
    onPod = false;
    removals++;
    return true;
  }

  /** The FaultMatrixIT run that found it: attempt 2 arrives while attempt 1 is being dropped. */
  @Test
  void aRolledBackAttemptLeavesTheAddressToTheNextAttemptThatArrivedMeanwhile() throws Exception {
    claims.claim(KEY, "attempt 1", this::add);
    claims.claim(KEY, "attempt 2", this::add);
    assertThat(claims.release(KEY, "attempt 1", false, this::remove)).isFalse();
    assertThat(onPod).as("attempt 2 restores onto it next").isTrue();

    assertThat(claims.release(KEY, "attempt 2", false, this::remove)).isTrue();
    assertThat(onPod).as("the last one out, and an arrival put it there").isFalse();
  }

  @Test
  void aRollbackNeverTakesAnAddressThePodHadBefore() throws Exception {
    onPod = true; // an earlier move's connections live on it
    claims.claim(KEY, "more connections", this::add);
    assertThat(claims.release(KEY, "more connections", false, this::remove)).isFalse();
    assertThat(onPod).isTrue();
    assertThat(removals).isZero();
  }

  @Test
  void onceAnArrivalCommittedTheAddressIsThePodsWhoeverRollsBackAfter() throws Exception {
    claims.claim(KEY, "committed", this::add);
    claims.claim(KEY, "overlapping", this::add);
    claims.release(KEY, "committed", true, this::remove);
    assertThat(claims.release(KEY, "overlapping", false, this::remove)).isFalse();
    assertThat(onPod).isTrue();

    claims.claim(KEY, "later", this::add);
    assertThat(claims.release(KEY, "later", false, this::remove)).isFalse();
    assertThat(onPod).isTrue();
  }

  @Test
  void anAddressThatLeftThePodAndCameBackIsTheNewArrivalsToRemove() throws Exception {
    claims.claim(KEY, "first", this::add);
    claims.release(KEY, "first", true, this::remove);
    onPod = false; // its connections moved away, and the source took the address off the pod

    claims.claim(KEY, "second", this::add);
    assertThat(claims.release(KEY, "second", false, this::remove)).isTrue();
    assertThat(onPod).isFalse();
  }

  @Test
  void aHolderReleasesOnce() throws Exception {
    claims.claim(KEY, "one", this::add);
    assertThat(claims.release(KEY, "one", false, this::remove)).isTrue();
    assertThat(claims.release(KEY, "one", false, this::remove)).isFalse();
    assertThat(removals).isEqualTo(1);
  }
}
