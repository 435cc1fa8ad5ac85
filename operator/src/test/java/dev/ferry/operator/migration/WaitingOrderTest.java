// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.crd.MigrationRequest;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.Test;

class WaitingOrderTest {
  @Test
  void firstComeFirstWhateverOrderTheyCameIn() {
    WaitingOrder order = new WaitingOrder();
    order.add(Rig.request("move-c", "c", "2026-12-01T09:00:02Z"));
    order.add(Rig.request("move-n", "n", null));
    order.add(Rig.request("move-b", "b", "2026-12-01T09:00:01Z"));
    order.add(Rig.request("move-a", "a", "2026-12-01T09:00:01Z"));

    assertThat(uids(order.all()))
        .as("creation time, then name; no creation time last")
        .containsExactly("a", "b", "c", "n");
  }

  @Test
  void beforeARequestAreOnlyThoseThatCameFirst() {
    WaitingOrder order = new WaitingOrder();
    MigrationRequest b = Rig.request("move-b", "b", "2026-12-01T09:00:01Z");
    order.add(Rig.request("move-a", "a", "2026-12-01T09:00:01Z"));
    order.add(b);
    order.add(Rig.request("move-c", "c", "2026-12-01T09:00:02Z"));
    // The same name made again within the second: another request, which did not come before b.
    order.add(Rig.request("move-b", "b2", "2026-12-01T09:00:01Z"));

    assertThat(uids(order.before(b))).containsExactly("a");
    assertThat(uids(order.before(Rig.request("move-z", "z", null))))
        .as("a request without a creation time comes after all that have one")
        .containsExactly("a", "b", "b2", "c");
  }

  @Test
  void aRequestHasOnePlaceAndIsForgottenWhenRemovedOrPassedOver() {
    WaitingOrder order = new WaitingOrder();
    MigrationRequest a = Rig.request("move-a", "a", "2026-12-01T09:00:01Z");
    order.add(a);
    order.add(a);
    order.add(Rig.request("move-b", "b", "2026-12-01T09:00:02Z"));
    order.add(Rig.request("move-c", "c", "2026-12-01T09:00:03Z"));
    assertThat(order.size()).isEqualTo(3);

    order.remove("a");
    Iterator<String> walk = order.all();
    assertThat(walk.next()).isEqualTo("b");
    walk.remove();

    assertThat(uids(order.all())).containsExactly("c");
    assertThat(order.size()).isEqualTo(1);
    order.add(a);
    assertThat(uids(order.all())).as("back in its place").containsExactly("a", "c");
  }

  private static List<String> uids(Iterator<String> it) {
    List<String> out = new ArrayList<>();
    it.forEachRemaining(out::add);
    return out;
  }
}
