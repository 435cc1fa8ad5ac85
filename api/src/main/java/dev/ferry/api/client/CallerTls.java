// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.client;

import dev.ferry.api.plan.PlanSigner;
import io.netty.handler.ssl.SslContext;

/**
 * What a caller of agents presents: its TLS context, and the signer of its Moves' plans, both from
 * the same certificate and key. One per process, shared by all its {@link AgentClient}s.
 */
public record CallerTls(SslContext context, PlanSigner signer) {

  public static CallerTls of(TlsFiles files) {
    return new CallerTls(AgentChannels.context(files), new PlanSigner(files));
  }
}
