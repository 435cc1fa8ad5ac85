// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One request {@link FakeEc2} received: its action, its query parameters as sent ({@code
 * PrivateIpAddress.1}, {@code Filter.2.Value.1}, ...), and how it was answered.
 *
 * @param status the HTTP status of the answer
 * @param error the EC2 error code answered, or null when the request succeeded
 */
public record FakeEc2Request(String action, Map<String, String> params, int status, String error) {

  public FakeEc2Request {
    params = Map.copyOf(params);
  }

  /** The parameter's value, or null when it was not sent. */
  public String param(String name) {
    return params.get(name);
  }

  /** The values of a list parameter: {@code list("PrivateIpAddress")} reads PrivateIpAddress.N. */
  public List<String> list(String name) {
    List<String> values = new ArrayList<>();
    for (int i = 1; params.containsKey(name + "." + i); i++) {
      values.add(params.get(name + "." + i));
    }
    return values;
  }

  /** The values of the filter with this name (Filter.N.Value.M), empty when it was not sent. */
  public List<String> filter(String name) {
    for (int n = 1; params.containsKey("Filter." + n + ".Name"); n++) {
      if (params.get("Filter." + n + ".Name").equals(name)) {
        return list("Filter." + n + ".Value");
      }
    }
    return List.of();
  }

  public boolean succeeded() {
    return error == null;
  }
}
