// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.api.plan.MovePlans;
import dev.ferry.api.v1alpha1.MovePlan;
import dev.ferry.api.v1alpha1.SignedPlan;
import java.time.Clock;
import javax.net.ssl.X509TrustManager;

/**
 * Checks the signed plan a move carries ({@link MovePlans}) against the CA this agent trusts: on
 * the source when the Move comes, on the target when the states come from the source agent.
 */
public final class PlanCheck {
  private final X509TrustManager trust;
  private final Clock clock;

  public PlanCheck(X509TrustManager trust, Clock clock) {
    this.trust = trust;
    this.clock = clock;
  }

  /**
   * @throws MovePlans.Refused naming what is wrong
   */
  public MovePlan verify(SignedPlan signed) {
    return MovePlans.verify(signed, trust, clock.instant());
  }
}
