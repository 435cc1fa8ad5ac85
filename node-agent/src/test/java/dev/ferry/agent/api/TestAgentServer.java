// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import dev.ferry.agent.service.AgentMetrics;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Arrays;

/**
 * A test's agent API on loopback, guarded as the agent guards its own: its mutual TLS, then {@link
 * CallerCheck}, then the test's own interceptors, then {@code api}.
 */
public final class TestAgentServer {
  private TestAgentServer() {}

  /** Started on a free port of 127.0.0.1; the caller shuts it down. */
  public static Server start(
      MutualTls tls, AgentMetrics metrics, BindableService api, ServerInterceptor... inner)
      throws IOException {
    // intercept() runs the last interceptor first: CallerCheck goes last.
    ServerInterceptor[] all = Arrays.copyOf(inner, inner.length + 1);
    all[inner.length] = new CallerCheck(metrics::refused);
    return NettyServerBuilder.forAddress(
            new InetSocketAddress("127.0.0.1", 0), tls.serverCredentials())
        .addService(ServerInterceptors.intercept(api, all))
        .build()
        .start();
  }
}
