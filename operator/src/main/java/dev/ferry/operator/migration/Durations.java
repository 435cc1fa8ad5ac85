// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as Kubernetes users write them: 90s, 2m, 1m30s, 500ms. */
final class Durations {
  private static final Pattern PART = Pattern.compile("([0-9]+)(ms|s|m|h)");

  private Durations() {}

  static Duration parse(String field, String text) throws InvalidRequest {
    if (text == null || text.isEmpty()) {
      throw new InvalidRequest(field, "is empty; write a duration such as 90s or 2m");
    }
    Matcher m = PART.matcher(text);
    Duration total = Duration.ZERO;
    int at = 0;
    while (m.find() && m.start() == at) {
      long n = Long.parseLong(m.group(1));
      total =
          total.plus(
              switch (m.group(2)) {
                case "ms" -> Duration.ofMillis(n);
                case "s" -> Duration.ofSeconds(n);
                case "m" -> Duration.ofMinutes(n);
                default -> Duration.ofHours(n);
              });
      at = m.end();
    }
    if (at != text.length()) {
      throw new InvalidRequest(
          field, "'" + text + "' is not a duration; write one such as 90s, 2m or 1m30s");
    }
    if (total.isZero()) {
      throw new InvalidRequest(field, "must be longer than zero");
    }
    return total;
  }
}
