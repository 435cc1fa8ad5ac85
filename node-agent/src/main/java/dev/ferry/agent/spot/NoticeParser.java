// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Instant;
import java.time.format.DateTimeParseException;

/**
 * Turns a metadata document into a {@link SpotNotice}. Never fails: a body it cannot read becomes
 * an unreadable notice, because dropping it would hide the one signal that matters.
 */
final class NoticeParser {
  private static final ObjectMapper JSON = new ObjectMapper();

  private NoticeParser() {}

  static SpotNotice parse(NoticeKind kind, String body) {
    try {
      JsonNode root = JSON.readTree(body);
      if (root == null || !root.isObject()) {
        return SpotNotice.unreadable(kind);
      }
      return switch (kind) {
        case INTERRUPTION ->
            new SpotNotice(kind, text(root, "action"), Instant.parse(text(root, "time")), true);
        case REBALANCE -> new SpotNotice(kind, null, Instant.parse(text(root, "noticeTime")), true);
      };
    } catch (JsonProcessingException | DateTimeParseException | MissingField e) {
      return SpotNotice.unreadable(kind);
    }
  }

  private static String text(JsonNode root, String field) throws MissingField {
    JsonNode value = root.get(field);
    if (value == null || !value.isTextual() || value.asText().isBlank()) {
      throw new MissingField();
    }
    return value.asText();
  }

  private static final class MissingField extends Exception {
    MissingField() {
      super(null, null, false, false);
    }
  }
}
