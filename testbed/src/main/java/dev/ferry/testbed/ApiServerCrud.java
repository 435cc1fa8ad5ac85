// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.zjsonpatch.JsonPatchException;

/**
 * Fabric8's CRUD store, answering as a real API server where Fabric8's leaves a request unanswered.
 *
 * <p>A JSON patch that does not apply to the object as stored (a {@code replace} or {@code remove}
 * of a label another client removed since the patch's author read the object, say): the API server
 * answers 422 before it looks at the resourceVersion the patch carries (k8s.io/apiserver, {@code
 * jsonPatcher.applyJSPatch}); Fabric8's mock throws on its event loop and never answers, so that
 * the client waits out its request timeout (10 s) instead.
 */
public class ApiServerCrud extends KubernetesCrudDispatcher {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Override
  public MockResponse handlePatch(RecordedRequest request) {
    try {
      return super.handlePatch(request);
    } catch (JsonPatchException e) {
      return new MockResponse().setResponseCode(422).setBody(unprocessable(e.getMessage()));
    }
  }

  /** The Status a real API server sends with a 422 for a patch it could not apply. */
  private static String unprocessable(String message) {
    ObjectNode status = JSON.createObjectNode();
    status.put("kind", "Status").put("apiVersion", "v1").putObject("metadata");
    status.put("status", "Failure").put("message", message).put("reason", "Invalid");
    status.put("code", 422);
    return status.toString();
  }
}
