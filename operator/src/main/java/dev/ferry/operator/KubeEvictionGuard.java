// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.operator.cluster.PodCache;
import dev.ferry.operator.cluster.SideBySide;
import dev.ferry.operator.migration.EvictionGuard;
import dev.ferry.operator.migration.Plan;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudgetBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * Guards a source pod with what the tools that drain nodes respect:
 *
 * <ul>
 *   <li>a PodDisruptionBudget {@code ferry-NAME} with {@code maxUnavailable: 0}, selecting the pod
 *       by the label {@code ferry.dev/migration: UID} alone: the eviction API ({@code kubectl
 *       drain}, aws-node-termination-handler, Karpenter) answers 429 until it goes. It is owned by
 *       the request, so deleting the request removes it even if the operator cannot;
 *   <li>Karpenter's {@code karpenter.sh/do-not-disrupt: "true"} on the pod, so Karpenter does not
 *       choose the node for a voluntary disruption meanwhile. Set only when absent, and then marked
 *       with {@code ferry.dev/do-not-disrupt-by: UID} so that only Ferry's own is removed. One that
 *       an earlier migration of the pod set, whose release may still be on its way (the next
 *       migration starts as the last one's end begins), is taken over: the mark then names this
 *       request, and the earlier release leaves it.
 * </ul>
 *
 * Spot interruptions are not voluntary: nothing here delays the instance's end.
 */
final class KubeEvictionGuard implements EvictionGuard {
  private static final Logger LOG = Logger.getLogger(KubeEvictionGuard.class.getName());

  static final String MIGRATION_LABEL = "ferry.dev/migration";
  static final String DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt";
  static final String DO_NOT_DISRUPT_BY = "ferry.dev/do-not-disrupt-by";

  /** How often a patch is tried, on the pod read again, when the pod changed since it was read. */
  private static final int ATTEMPTS = 3;

  /** HTTP 422, which HttpURLConnection does not name. */
  private static final int UNPROCESSABLE = 422;

  private final KubernetesClient client;
  private final PodCache pods;

  KubeEvictionGuard(KubernetesClient client, PodCache pods) {
    this.client = client;
    this.pods = pods;
  }

  /** Reads every pod from the API server. */
  KubeEvictionGuard(KubernetesClient client) {
    this(client, new PodCache());
  }

  /** The budget's name: the request's, so that {@code kubectl get pdb} says whose it is. */
  static String budgetName(MigrationRequest mr) {
    String name = "ferry-" + mr.getMetadata().getName();
    return name.length() <= 253 ? name : name.substring(0, 253);
  }

  @Override
  public Optional<String> protect(MigrationRequest mr, Plan plan) {
    String ns = plan.source().getNamespace();
    String name = plan.source().getName();
    String uid = mr.getMetadata().getUid();
    try {
      // The budget and the pod's label at once: the budget selects the pod by the label, and the
      // guard holds once both are there, before Moving, whichever lands first.
      SideBySide.run(() -> createBudget(mr, ns, uid), () -> markPod(plan, ns, name, uid));
      return Optional.empty();
    } catch (KubernetesClientException e) {
      String why =
          "the source pod is not protected from eviction while it moves ("
              + e.getCode()
              + " "
              + e.getMessage()
              + ")"
              + (e.getCode() == HttpURLConnection.HTTP_FORBIDDEN
                  ? "; check the operator's RBAC for poddisruptionbudgets and pods"
                  : "");
      LOG.warning(() -> name(mr) + ": " + why);
      return Optional.of(why);
    }
  }

  private void markPod(Plan plan, String ns, String name, String uid) {
    // The pod as the plan read it: in Preparing a moment ago, so no second read. A plan that
    // Prepared kept for minutes may hold a pod changed since: the patch is refused, and the pod
    // read again. A copy, as edit changes what it is given, and the plan may be used again.
    Pod planned =
        plan.sourcePod() == null
            ? null
            : client.getKubernetesSerialization().clone(plan.sourcePod());
    if (!patchLatest(
        ns,
        name,
        planned,
        pod -> client.pods().inNamespace(ns).resource(pod).edit(p -> mark(p, uid)))) {
      throw new KubernetesClientException(
          "pod " + ns + "/" + name + " is gone", HttpURLConnection.HTTP_NOT_FOUND, null);
    }
  }

  private void createBudget(MigrationRequest mr, String ns, String uid) {
    PodDisruptionBudget pdb =
        new PodDisruptionBudgetBuilder()
            .withMetadata(
                new ObjectMetaBuilder()
                    .withName(budgetName(mr))
                    .withNamespace(ns)
                    .addToLabels("app.kubernetes.io/managed-by", "ferry")
                    .addToLabels(MIGRATION_LABEL, uid)
                    .withOwnerReferences(
                        new OwnerReferenceBuilder()
                            .withApiVersion(mr.getApiVersion())
                            .withKind(mr.getKind())
                            .withName(mr.getMetadata().getName())
                            .withUid(uid)
                            .build())
                    .build())
            .withNewSpec()
            .withMaxUnavailable(new IntOrString(0))
            .withNewSelector()
            .addToMatchLabels(MIGRATION_LABEL, uid)
            .endSelector()
            .endSpec()
            .build();
    try {
      client.policy().v1().podDisruptionBudget().inNamespace(ns).resource(pdb).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw e;
      }
    }
  }

  private static Pod mark(Pod p, String uid) {
    Map<String, String> labels = copy(p.getMetadata().getLabels());
    labels.put(MIGRATION_LABEL, uid);
    p.getMetadata().setLabels(labels);
    Map<String, String> annotations = copy(p.getMetadata().getAnnotations());
    if (!annotations.containsKey(DO_NOT_DISRUPT)) {
      annotations.put(DO_NOT_DISRUPT, "true");
      annotations.put(DO_NOT_DISRUPT_BY, uid);
    } else if (annotations.containsKey(DO_NOT_DISRUPT_BY)) {
      // Another migration's mark: this request takes the label from it, so that migration's
      // release would leave the pod alone, and its mark on the pod for good. This request's
      // release lifts it instead.
      annotations.put(DO_NOT_DISRUPT_BY, uid);
    }
    p.getMetadata().setAnnotations(annotations);
    return p;
  }

  @Override
  public void release(MigrationRequest mr) {
    String ns = mr.getMetadata().getNamespace();
    String uid = mr.getMetadata().getUid();
    String source = mr.getSpec().getSource() == null ? null : mr.getSpec().getSource().getName();
    try {
      // The budget and the pod's marks at once: each is lifted on its own, and an eviction
      // waits for both to go.
      SideBySide.run(
          () ->
              client
                  .policy()
                  .v1()
                  .podDisruptionBudget()
                  .inNamespace(ns)
                  .withName(budgetName(mr))
                  .delete(),
          () -> {
            if (source != null) {
              // The pod from the operator's cache when it shows this request's mark: no read.
              // One that does not (a cache that has not seen the mark yet, or never will) is read
              // from the API server, and patched only if this request marked it.
              Pod cached = pods.pod(ns, source).filter(p -> ours(p, uid)).orElse(null);
              patchLatest(
                  ns,
                  source,
                  cached,
                  pod -> {
                    if (ours(pod, uid)) {
                      client.pods().inNamespace(ns).resource(pod).edit(p -> unmark(p, uid));
                    }
                  });
            }
          });
    } catch (KubernetesClientException e) {
      // The budget is owned by the request: the garbage collector removes it with the request.
      LOG.warning(
          () ->
              name(mr)
                  + ": could not lift the eviction guard ("
                  + e.getCode()
                  + " "
                  + e.getMessage()
                  + "); delete PodDisruptionBudget "
                  + budgetName(mr)
                  + " in "
                  + ns
                  + " or the request to let the pod be evicted");
    }
  }

  @Override
  public Runnable startRelease(MigrationRequest mr) {
    var lifting = SideBySide.start(() -> release(mr));
    return () -> SideBySide.join(lifting);
  }

  /**
   * Runs {@code patch} on the pod as {@code read} (null: reads it first). Fabric8's {@code
   * resource(pod).edit} sends one JSON patch that carries the resourceVersion the pod was read at,
   * which the API server refuses (409) once the pod changed since; or, when the patch no longer
   * applies to the pod (it replaces or removes a label another removed meanwhile: the last
   * migration's release, as the next one's guard is raised on the pod the plan read a moment
   * before), it refuses it with 422 before comparing resourceVersions. Either way the pod is read
   * again and {@code patch} runs on that, so that nothing another wrote in between is undone or
   * overlooked.
   *
   * @return false when the pod is gone
   */
  private boolean patchLatest(String ns, String name, Pod read, Consumer<Pod> patch) {
    Pod pod = read;
    for (int attempt = 1; ; attempt++) {
      if (pod == null) {
        pod = client.pods().inNamespace(ns).withName(name).get();
        if (pod == null) {
          return false;
        }
      }
      try {
        patch.accept(pod);
        return true;
      } catch (KubernetesClientException e) {
        if (!changedSinceRead(e) || attempt == ATTEMPTS) {
          throw e;
        }
        pod = null;
      }
    }
  }

  /** 409, or 422: a JSON patch that does not apply to the pod as it is now. */
  private static boolean changedSinceRead(KubernetesClientException e) {
    return e.getCode() == HttpURLConnection.HTTP_CONFLICT || e.getCode() == UNPROCESSABLE;
  }

  private static Pod unmark(Pod p, String uid) {
    Map<String, String> labels = copy(p.getMetadata().getLabels());
    labels.remove(MIGRATION_LABEL, uid);
    p.getMetadata().setLabels(labels);
    Map<String, String> annotations = copy(p.getMetadata().getAnnotations());
    if (annotations.remove(DO_NOT_DISRUPT_BY, uid)) {
      annotations.remove(DO_NOT_DISRUPT);
    }
    p.getMetadata().setAnnotations(annotations);
    return p;
  }

  /** Whether {@code p} carries the label or the do-not-disrupt mark of request {@code uid}. */
  private static boolean ours(Pod p, String uid) {
    Map<String, String> annotations = p.getMetadata().getAnnotations();
    return uid.equals(labels(p).get(MIGRATION_LABEL))
        || (annotations != null && uid.equals(annotations.get(DO_NOT_DISRUPT_BY)));
  }

  private static Map<String, String> labels(Pod p) {
    return p.getMetadata().getLabels() == null ? Map.of() : p.getMetadata().getLabels();
  }

  private static Map<String, String> copy(Map<String, String> m) {
    return m == null ? new HashMap<>() : new HashMap<>(m);
  }

  private static String name(MigrationRequest mr) {
    return mr.getMetadata().getNamespace() + "/" + mr.getMetadata().getName();
  }
}
