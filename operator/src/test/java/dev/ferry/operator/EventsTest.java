// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.testbed.MockApi;
import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The Events a MigrationRequest gets through KubeStatusSink, on Fabric8's mock API server in CRUD
 * mode, written with the operator's rights as the chart grants them ({@link RbacCalls}): a repeat
 * is counted on the Event it repeats, as kubectl describe then shows ("x3 over 2m"), instead of
 * piling up beside it.
 */
class EventsTest {
  @RegisterExtension final MockApi api = MockApi.crud();

  private KubeStatusSink sink;

  @BeforeEach
  void start() {
    sink = new KubeStatusSink(api.as("operator"));
  }

  @Test
  void aRepeatedEventIsCountedOnTheFirstInsteadOfPilingUp() throws Exception {
    MigrationRequest mr = request("move-1");

    for (int i = 0; i < 3; i++) {
      sink.event(mr, "Warning", "TargetNotReady", "no application registered port 8080");
    }
    Events.flush();

    List<Event> written = events("shop");
    assertThat(written).hasSize(1);
    Event e = written.get(0);
    assertThat(e.getCount()).isEqualTo(3);
    assertThat(e.getSeries().getCount()).isEqualTo(3);
    assertThat(e.getSeries().getLastObservedTime()).isNotNull();
    assertThat(Instant.parse(e.getLastTimestamp()))
        .isAfterOrEqualTo(Instant.parse(e.getFirstTimestamp()));
    assertThat(e.getInvolvedObject().getKind()).isEqualTo("MigrationRequest");
    assertThat(e.getInvolvedObject().getName()).isEqualTo("move-1");
    assertThat(e.getInvolvedObject().getUid()).isEqualTo(mr.getMetadata().getUid());
  }

  @Test
  void anotherMessageReasonOrObjectIsAnotherEvent() throws Exception {
    MigrationRequest one = request("move-1");
    MigrationRequest two = request("move-2");

    sink.event(one, "Warning", "TargetNotReady", "no application registered port 8080");
    sink.event(one, "Warning", "TargetNotReady", "no application registered port 9090");
    sink.event(one, "Normal", "Completed", "no application registered port 8080");
    sink.event(two, "Warning", "TargetNotReady", "no application registered port 8080");
    sink.event(one, "Warning", "TargetNotReady", "no application registered port 8080");
    Events.flush();

    assertThat(events("shop"))
        .extracting(
            e ->
                e.getInvolvedObject().getName()
                    + " "
                    + e.getReason()
                    + " "
                    + e.getMessage()
                    + " x"
                    + e.getCount())
        .containsExactlyInAnyOrder(
            "move-1 TargetNotReady no application registered port 8080 x2",
            "move-1 TargetNotReady no application registered port 9090 x1",
            "move-1 Completed no application registered port 8080 x1",
            "move-2 TargetNotReady no application registered port 8080 x1");
  }

  @Test
  void aRepeatOfAnEventThatIsGoneStartsANewOne() throws Exception {
    MigrationRequest mr = request("move-1");
    sink.event(mr, "Warning", "TargetNotReady", "no application registered port 8080");
    sink.event(mr, "Warning", "TargetNotReady", "no application registered port 8080");
    Events.flush();
    // The API server drops Events after their time to live (an hour by default).
    api.admin().v1().events().inNamespace("shop").delete();
    assertThat(events("shop")).isEmpty();

    sink.event(mr, "Warning", "TargetNotReady", "no application registered port 8080");
    Events.flush();

    assertThat(events("shop")).singleElement().satisfies(e -> assertThat(e.getCount()).isOne());
  }

  private List<Event> events(String namespace) {
    return api.admin().v1().events().inNamespace(namespace).list().getItems();
  }

  /** A request with a uid of its own, so that no test sees another's Events as repeats. */
  private static MigrationRequest request(String name) {
    MigrationRequest mr = new MigrationRequest();
    mr.setMetadata(
        new ObjectMetaBuilder()
            .withNamespace("shop")
            .withName(name)
            .withUid(UUID.randomUUID().toString())
            .build());
    return mr;
  }
}
