// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RequestChangesTest {
  private final RequestChanges filter = new RequestChanges();

  @Test
  void aStatusWriteWakesNothing() {
    MigrationRequest before = request(3, Map.of());
    MigrationRequest now = request(3, Map.of());
    now.setStatus(new MigrationRequestStatus());
    now.getStatus().setPhase(Phase.Completed);
    now.getMetadata().setResourceVersion("12");

    assertThat(filter.accept(now, before)).isFalse();
  }

  @Test
  void anotherAnnotationWakesNothing() {
    assertThat(filter.accept(request(3, Map.of("owner", "me")), request(3, Map.of()))).isFalse();
  }

  @Test
  void aSpecChangeWakesTheRequest() {
    assertThat(filter.accept(request(4, Map.of()), request(3, Map.of()))).isTrue();
  }

  @Test
  void theRollbackAnnotationWakesTheRequestWithoutASpecChange() {
    MigrationRequest none = request(3, Map.of());
    MigrationRequest one = request(3, Map.of("ferry.dev/rollback", "1"));
    MigrationRequest two = request(3, Map.of("ferry.dev/rollback", "2"));

    assertThat(filter.accept(one, none)).as("set").isTrue();
    assertThat(filter.accept(two, one)).as("changed").isTrue();
    assertThat(filter.accept(none, two)).as("removed").isTrue();
    assertThat(filter.accept(request(3, Map.of("ferry.dev/rollback", "1")), one))
        .as("the same value again")
        .isFalse();
  }

  @Test
  void theProceedAnnotationWakesTheRequestWithoutASpecChange() {
    MigrationRequest none = request(3, Map.of());
    MigrationRequest now = request(3, Map.of("ferry.dev/proceed", "now"));
    MigrationRequest spot =
        request(3, Map.of("ferry.dev/proceed", "node-a: SpotInterruptionNotice at 10:00"));

    assertThat(filter.accept(now, none)).as("set").isTrue();
    assertThat(filter.accept(spot, now)).as("changed").isTrue();
    assertThat(filter.accept(none, spot)).as("removed").isTrue();
    assertThat(filter.accept(request(3, Map.of("ferry.dev/proceed", "now")), now))
        .as("the same value again")
        .isFalse();
  }

  @Test
  void aDeletionAndTheFinalizerJosdkAddedWakeTheRequest() {
    MigrationRequest before = request(3, Map.of());
    MigrationRequest deleted = request(3, Map.of());
    deleted.getMetadata().setDeletionTimestamp("2026-12-03T08:00:00Z");
    MigrationRequest finalized = request(3, Map.of());
    finalized.getMetadata().setFinalizers(List.of("migrationrequests.ferry.dev/finalizer"));

    assertThat(filter.accept(deleted, before)).isTrue();
    assertThat(filter.accept(finalized, before)).isTrue();
  }

  private static MigrationRequest request(long generation, Map<String, String> annotations) {
    MigrationRequest mr = new MigrationRequest();
    mr.setMetadata(
        new ObjectMetaBuilder()
            .withName("r")
            .withNamespace("apps")
            .withGeneration(generation)
            .withAnnotations(annotations)
            .build());
    return mr;
  }
}
