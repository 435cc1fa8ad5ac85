// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.migration.MigrationMachine;
import io.javaoperatorsdk.operator.processing.event.source.filter.OnUpdateFilter;
import java.util.Objects;

/**
 * Which updates of a MigrationRequest wake its reconciler: a spec change (a new generation), a
 * change of the {@code ferry.dev/rollback} or {@code ferry.dev/proceed} annotation, a deletion, or
 * the finalizer JOSDK has just added. A status write, the operator's own or anyone's, wakes
 * nothing.
 *
 * <p>The controller is not generation-aware for this filter to decide alone: JOSDK ANDs a
 * controller's own filter with its generation check, so an annotation could never pass. A second
 * informer on the same resources for the annotation was tried and lost a rollback now and then: its
 * event could run the reconcile before the controller's informer had the new annotation, and when
 * that one caught up, the generation check dropped its event. One informer has one order.
 */
public final class RequestChanges implements OnUpdateFilter<MigrationRequest> {

  @Override
  public boolean accept(MigrationRequest now, MigrationRequest before) {
    return newGeneration(now, before)
        || changed(MigrationMachine.ROLLBACK_ANNOTATION, now, before)
        || changed(MigrationMachine.PROCEED_ANNOTATION, now, before)
        || now.isMarkedForDeletion()
        || !Objects.equals(now.getFinalizers(), before.getFinalizers());
  }

  private static boolean newGeneration(MigrationRequest now, MigrationRequest before) {
    Long was = before.getMetadata().getGeneration();
    Long is = now.getMetadata().getGeneration();
    return was == null || is == null || is > was;
  }

  private static boolean changed(String annotation, MigrationRequest now, MigrationRequest before) {
    return !Objects.equals(annotation(now, annotation), annotation(before, annotation));
  }

  private static String annotation(MigrationRequest r, String name) {
    var annotations = r.getMetadata().getAnnotations();
    return annotations == null ? null : annotations.get(name);
  }
}
