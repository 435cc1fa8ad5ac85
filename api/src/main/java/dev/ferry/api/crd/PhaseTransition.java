// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** When a migration entered a phase, as KubeVirt's phaseTransitionTimestamps record it. */
public class PhaseTransition {
  @JsonPropertyDescription("The phase entered.")
  private Phase phase;

  @JsonPropertyDescription("When it was entered (RFC 3339).")
  private String time;

  public PhaseTransition() {}

  public PhaseTransition(Phase phase, String time) {
    this.phase = phase;
    this.time = time;
  }

  public Phase getPhase() {
    return phase;
  }

  public void setPhase(Phase phase) {
    this.phase = phase;
  }

  public String getTime() {
    return time;
  }

  public void setTime(String time) {
    this.time = time;
  }
}
