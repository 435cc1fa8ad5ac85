// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.nio.charset.StandardCharsets;

/**
 * The CRUD store behind the chart's RBAC ({@link RbacCalls}), and another client's write let in
 * just before the next write of the same kind, to the same path: as if another client wrote between
 * a read and the write that follows it. Fabric8's CRUD mode then refuses a write that carries a
 * resourceVersion no longer the object's, as an API server does.
 */
public final class AnotherWriter extends RbacCalls.Enforcing {
  private record Write(HttpMethod method, String body) {}

  private volatile Write next;

  public AnotherWriter() {
    super(RbacCalls.listed());
  }

  /** Before the next PATCH, this patch (its content type that of the PATCH it comes before). */
  public void patchesFirst(String patch) {
    next = new Write(HttpMethod.PATCH, patch);
  }

  /** Before the next PUT, this object. */
  public void putsFirst(String object) {
    next = new Write(HttpMethod.PUT, object);
  }

  @Override
  public MockResponse handlePatch(RecordedRequest request) {
    writeFirst(HttpMethod.PATCH, request);
    return super.handlePatch(request);
  }

  @Override
  public MockResponse handleUpdate(RecordedRequest request) {
    writeFirst(HttpMethod.PUT, request);
    return super.handleUpdate(request);
  }

  private void writeFirst(HttpMethod method, RecordedRequest request) {
    Write w = next;
    if (w == null || w.method() != method) {
      return;
    }
    next = null;
    RecordedRequest other =
        new RecordedRequest(
            request.getHttpVersion(),
            method,
            request.getPath(),
            request.getHeaders(),
            new Buffer(w.body().getBytes(StandardCharsets.UTF_8)));
    if (method == HttpMethod.PATCH) {
      super.handlePatch(other);
    } else {
      super.handleUpdate(other);
    }
  }
}
