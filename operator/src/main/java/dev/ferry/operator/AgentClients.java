// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.client.CallerTls;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.operator.migration.Agent;
import dev.ferry.operator.migration.Agents;
import dev.ferry.operator.migration.MoveCalls;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One client per node-agent, over mutual TLS with the operator's certificate, and the registry of
 * the calls in flight on them.
 */
@ApplicationScoped
public class AgentClients implements Agents {
  private final OperatorSettings settings;
  private final Map<String, AgentClient> clients = new ConcurrentHashMap<>();
  private volatile CallerTls tls;

  public AgentClients(OperatorSettings settings) {
    this.settings = settings;
  }

  /** The client for the agent at {@code target} (HOST:PORT). */
  public AgentClient at(String target) {
    return clients.computeIfAbsent(target, t -> new AgentClient(t, tls(), settings.callTimeout()));
  }

  /** The migration steps' calls on the agent at {@code hostPort}. */
  @Override
  public Agent agent(String hostPort) {
    return new GrpcAgent(at(hostPort));
  }

  private CallerTls tls() {
    CallerTls read = tls;
    if (read != null) {
      return read;
    }
    // Once, even when the first migrations start together: each reading builds a TLS context and
    // a signer from the files, hundreds of milliseconds of cold code (7 % of the operator's CPU
    // samples in make bench-operator while five first calls raced here).
    synchronized (this) {
      if (tls == null) {
        OperatorSettings.Tls files = settings.tls();
        // Read on first use, so that a missing mount fails a migration with its path, not startup.
        tls = CallerTls.of(new TlsFiles(files.ca(), files.cert(), files.key()));
      }
      return tls;
    }
  }

  /**
   * The operator's one registry of calls in flight on agents: the reconciler's, which the Lease's
   * release cuts ({@link LeaderElection}).
   */
  @Produces
  @Singleton
  MoveCalls moveCalls() {
    return MoveCalls.withOwnThreads();
  }

  void close(@Observes ShutdownEvent ev) {
    clients.values().forEach(AgentClient::close);
  }
}
