// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import java.util.HashMap;

/** The tests' API server: Fabric8's mock in CRUD mode, which keeps what it is sent. */
public final class CrudApiServer {
  private CrudApiServer() {}

  /** A started one; {@code destroy()} it after the test. */
  public static KubernetesMockServer start() {
    KubernetesMockServer api =
        new KubernetesMockServer(
            new Context(),
            new MockWebServer(),
            new HashMap<>(),
            new KubernetesCrudDispatcher(),
            false);
    api.init();
    return api;
  }
}
