// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads a message EventBridge put in the queue: which instances it concerns and what it announces.
 * No I/O. The events are those of docs/aws.md's rules; anything else in the queue is reported, not
 * acted on.
 */
public final class EventBridgeEvents {
  static final String SPOT_WARNING = "EC2 Spot Instance Interruption Warning";
  static final String REBALANCE = "EC2 Instance Rebalance Recommendation";
  static final String STATE_CHANGE = "EC2 Instance State-change Notification";
  static final String HEALTH = "AWS Health Event";

  /** The states NTH drains on too: the instance is leaving, or gone. */
  private static final Set<String> LEAVING_STATES =
      Set.of("stopping", "stopped", "shutting-down", "terminated");

  private static final Pattern INSTANCE = Pattern.compile("i-(?:[0-9a-f]{17}|[0-9a-f]{8})");
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What a message says. */
  public sealed interface Parsed {}

  /** Notices to act on, one per instance the event names. */
  public record Notices(List<QueueNotice> notices) implements Parsed {}

  /** A well-formed event that asks nothing of Ferry (an instance starting, another service). */
  public record Ignored(String why) implements Parsed {}

  /** The message is not an EventBridge event Ferry can read. */
  public static final class Unreadable extends Exception {
    Unreadable(String message) {
      super(message);
    }
  }

  private EventBridgeEvents() {}

  public static Parsed parse(String body) throws Unreadable {
    JsonNode event;
    try {
      event = JSON.readTree(body);
    } catch (JsonProcessingException e) {
      throw new Unreadable("not JSON: " + e.getOriginalMessage());
    }
    if (event == null || !event.isObject()) {
      throw new Unreadable("not a JSON object");
    }
    String source = text(event, "source");
    String type = text(event, "detail-type");
    JsonNode detail = event.get("detail");
    if (detail == null || !detail.isObject()) {
      throw new Unreadable("no 'detail' object in the " + type + " event");
    }
    String time = event.path("time").asText("");
    return switch (source) {
      case "aws.ec2" -> ec2(type, detail, time);
      case "aws.health" -> health(type, detail);
      default -> new Ignored("events from " + source + " are not handled (" + type + ")");
    };
  }

  private static Parsed ec2(String type, JsonNode detail, String time) throws Unreadable {
    String instance = instance(detail.path("instance-id").asText(""), type);
    return switch (type) {
      case SPOT_WARNING ->
          one(
              QueueNotice.Kind.SPOT_INTERRUPTION,
              instance,
              type + " at " + time + ": " + detail.path("instance-action").asText("terminate"));
      case REBALANCE -> one(QueueNotice.Kind.REBALANCE, instance, type + " at " + time);
      case STATE_CHANGE -> {
        String state = detail.path("state").asText("").toLowerCase(Locale.ROOT);
        if (!LEAVING_STATES.contains(state)) {
          yield new Ignored(type + " for " + instance + ": state '" + state + "' is not leaving");
        }
        yield one(QueueNotice.Kind.STATE_CHANGE, instance, type + " at " + time + ": " + state);
      }
      default -> new Ignored("EC2 events of type '" + type + "' are not handled");
    };
  }

  private static Parsed health(String type, JsonNode detail) throws Unreadable {
    if (!HEALTH.equals(type)
        || !"EC2".equals(detail.path("service").asText())
        || !"scheduledChange".equals(detail.path("eventTypeCategory").asText())) {
      return new Ignored(
          "AWS Health events other than EC2 scheduledChange are not handled ("
              + detail.path("service").asText("?")
              + " "
              + detail.path("eventTypeCategory").asText("?")
              + ")");
    }
    String code = detail.path("eventTypeCode").asText("");
    String start = detail.path("startTime").asText("");
    JsonNode entities = detail.get("affectedEntities");
    if (entities == null || !entities.isArray() || entities.isEmpty()) {
      throw new Unreadable("AWS Health event " + code + " names no affectedEntities");
    }
    List<QueueNotice> out = new ArrayList<>();
    for (JsonNode e : entities) {
      String id = e.path("entityValue").asText("");
      out.add(
          new QueueNotice(
              QueueNotice.Kind.SCHEDULED_CHANGE,
              instance(id, "AWS Health event " + code),
              "AWS Health scheduled change " + code + " starting " + start));
    }
    return new Notices(List.copyOf(out));
  }

  private static Parsed one(QueueNotice.Kind kind, String instance, String what) {
    return new Notices(List.of(new QueueNotice(kind, instance, what)));
  }

  private static String instance(String id, String event) throws Unreadable {
    if (!INSTANCE.matcher(id).matches()) {
      throw new Unreadable(
          event + " names '" + id + "' where an EC2 instance id (i-<hex>) belongs");
    }
    return id;
  }

  private static String text(JsonNode event, String field) throws Unreadable {
    JsonNode v = event.get(field);
    if (v == null || !v.isTextual() || v.asText().isBlank()) {
      throw new Unreadable("no '" + field + "' field: not an EventBridge event");
    }
    return v.asText();
  }
}
