// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.cluster;

import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** What the tests' API server was asked, for tests that count the operator's calls. */
public final class ApiRequests {
  private ApiRequests() {}

  /**
   * The requests {@code api} received since the last call, as "METHOD PATH". Each is recorded
   * before it is answered: those of a call that returned are all here.
   */
  public static List<String> since(KubernetesMockServer api) throws InterruptedException {
    List<String> calls = new ArrayList<>();
    RecordedRequest r;
    while ((r = api.takeRequest(10, TimeUnit.MILLISECONDS)) != null) {
      calls.add(r.getMethod() + " " + r.getPath());
    }
    return calls;
  }
}
