// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready once the hold is in place, the saved states are picked up and the API listens. */
@Readiness
@ApplicationScoped
public class AgentHealth implements HealthCheck {
  @Inject AgentRuntime runtime;

  @Override
  public HealthCheckResponse call() {
    return HealthCheckResponse.named("ferry-node-agent").status(runtime.ready()).build();
  }
}
