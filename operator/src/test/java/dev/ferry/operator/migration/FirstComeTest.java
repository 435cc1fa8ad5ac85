// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The order waiting requests get their slots in: {@link MigrationSlots#firstCome}. */
class FirstComeTest {

  @Test
  void creationTimeFirstThenNamespaceThenNameAndNoCreationTimeLast() {
    List<MigrationRequest> requests =
        new ArrayList<>(
            List.of(
                request(null, "shop", "a"),
                request("2026-12-01T10:00:01Z", "shop", "a"),
                request("2026-12-01T10:00:00Z", "shop", "b"),
                request("2026-12-01T10:00:00Z", "bank", "z"),
                request("2026-12-01T10:00:00Z", "shop", "a"),
                request(null, "bank", "a")));

    requests.sort(MigrationSlots::firstCome);

    assertThat(requests)
        .extracting(r -> r.getMetadata().getNamespace() + "/" + r.getMetadata().getName())
        .containsExactly("bank/z", "shop/a", "shop/b", "shop/a", "bank/a", "shop/a");
    assertThat(requests.get(3).getMetadata().getCreationTimestamp())
        .isEqualTo("2026-12-01T10:00:01Z");
  }

  @Test
  void aRequestComesNeitherBeforeNorAfterItself() {
    MigrationRequest r = request("2026-12-01T10:00:00Z", "shop", "a");
    MigrationRequest timeless = request(null, "shop", "a");

    assertThat(MigrationSlots.firstCome(r, r)).isZero();
    assertThat(MigrationSlots.firstCome(timeless, timeless)).isZero();
  }

  private static MigrationRequest request(String created, String namespace, String name) {
    MigrationRequest r = new MigrationRequest();
    r.setMetadata(
        new ObjectMetaBuilder()
            .withCreationTimestamp(created)
            .withNamespace(namespace)
            .withName(name)
            .build());
    return r;
  }
}
