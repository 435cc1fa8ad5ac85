// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.LocalObjectReference;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Images are pulled by tag (the chart's appVersion by default) or, when a digest is given, by
 * repository@digest with the tag ignored; global.imageRegistry and global.imagePullSecrets, which
 * an umbrella chart sets, apply to both.
 */
class ImageReferenceTest {
  private static final String DIGEST =
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  private static final String OTHER =
      "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

  @Test
  void byDefaultBothImagesAreTheChartsAppVersion() {
    Manifests m = HelmChart.render(HelmChart.ValueSet.DEFAULT);
    assertThat(image(operator(m))).isEqualTo("ferry/operator:0.1.0");
    assertThat(image(agent(m))).isEqualTo("ferry/node-agent:0.1.0");
  }

  @Test
  void aDigestPinsTheImageAndTheTagIsIgnored() {
    Manifests m =
        HelmChart.renderWith(
            """
            operator: {image: {tag: "0.2.0", digest: "%s"}}
            agent: {image: {digest: "%s"}}
            """
                .formatted(DIGEST, OTHER));
    assertThat(image(operator(m))).isEqualTo("ferry/operator@" + DIGEST);
    assertThat(image(agent(m))).isEqualTo("ferry/node-agent@" + OTHER);
  }

  @Test
  void theGlobalRegistryAndPullSecretsApplyToBothImages() {
    Manifests m =
        HelmChart.renderWith(
            """
            imagePullSecrets: [{name: ferry-pull}]
            global:
              imageRegistry: registry.example.com:5000/mirror/
              imagePullSecrets: [platform-pull, {name: ferry-pull}]
            agent: {image: {digest: "%s"}}
            """
                .formatted(DIGEST));
    assertThat(image(operator(m)))
        .isEqualTo("registry.example.com:5000/mirror/ferry/operator:0.1.0");
    assertThat(image(agent(m)))
        .isEqualTo("registry.example.com:5000/mirror/ferry/node-agent@" + DIGEST);
    for (PodSpec pod : List.of(operator(m), agent(m))) {
      assertThat(pod.getImagePullSecrets())
          .extracting(LocalObjectReference::getName)
          .as("each secret once")
          .containsExactly("ferry-pull", "platform-pull");
    }
  }

  private static PodSpec operator(Manifests m) {
    return m.one(Deployment.class, "ferry-operator").getSpec().getTemplate().getSpec();
  }

  private static PodSpec agent(Manifests m) {
    return m.one(DaemonSet.class, "ferry-node-agent").getSpec().getTemplate().getSpec();
  }

  private static String image(PodSpec pod) {
    return pod.getContainers().get(0).getImage();
  }
}
