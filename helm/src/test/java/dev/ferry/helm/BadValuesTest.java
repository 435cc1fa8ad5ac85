// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.marcnuri.helm.LintResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A bad values file (src/test/resources/bad-values/) is refused with a message that names the
 * value: by values.schema.json for {@code helm template} and {@code helm lint} alike, and by the
 * chart's own check (ferry.validate) for two values that clash, which only {@code helm template}
 * and {@code helm install} report (helm lint renders {@code fail} as a log line).
 */
class BadValuesTest {
  private static final Path BAD = Path.of("src/test/resources/bad-values");

  /** What the schema refuses: the file, and what Helm's message must say. */
  static Stream<Arguments> refusedBySchema() {
    return Stream.of(
        Arguments.of("address-mover-gcp.yaml", new String[] {"/addressMover", "'aws', 'l2'"}),
        Arguments.of("hold-limit-forever.yaml", new String[] {"/agent/holdLimit", "'forever'"}),
        Arguments.of(
            "policy-requests-kept-a-week.yaml",
            new String[] {"/operator/policyRequestsKept", "'1w'"}),
        Arguments.of("api-port-out-of-range.yaml", new String[] {"/agent/apiPort", "65,535"}),
        Arguments.of("privileged-port.yaml", new String[] {"/agent/httpPort", "1,024"}),
        Arguments.of("misspelt-key.yaml", new String[] {"/agent", "'holdlimit' not allowed"}),
        Arguments.of("imds-yes.yaml", new String[] {"/agent/imds/enabled", "boolean"}),
        Arguments.of("image-tag-with-space.yaml", new String[] {"/operator/image/tag"}),
        Arguments.of("role-arn-malformed.yaml", new String[] {"/aws/roleArn", "'ferry-operator'"}),
        Arguments.of("role-arn-without-aws.yaml", new String[] {"/aws/roleArn"}),
        Arguments.of("issuer-without-name.yaml", new String[] {"/certManager/issuerRef", "name"}),
        Arguments.of("limit-zero.yaml", new String[] {"/operator/limits/perNode"}),
        Arguments.of("socket-dir-relative.yaml", new String[] {"/agent/socketDir", "'run/ferry'"}),
        Arguments.of("hold-interfaces-twice.yaml", new String[] {"/agent/holdInterfaces"}),
        Arguments.of(
            "queue-url-not-sqs.yaml",
            new String[] {
              "/aws/queue/url", "'arn:aws:sqs:eu-west-1:123456789012:ferry-ec2-notices'"
            }),
        Arguments.of("queue-without-url.yaml", new String[] {"/aws/queue/url", "minLength"}),
        Arguments.of("logging-format-xml.yaml", new String[] {"/logging/format", "'text', 'json'"}),
        Arguments.of(
            "logging-level-lowercase.yaml",
            new String[] {"/logging/level", "'ERROR', 'WARN', 'INFO', 'DEBUG'"}),
        Arguments.of("image-digest-not-sha256.yaml", new String[] {"/agent/image/digest"}),
        Arguments.of(
            "anti-affinity-sometimes.yaml",
            new String[] {"/operator/podAntiAffinity", "'preferred', 'required', 'none'"}),
        Arguments.of(
            "disruption-budget-zero.yaml",
            new String[] {"/operator/podDisruptionBudget/maxUnavailable"}),
        Arguments.of("global-registry-with-scheme.yaml", new String[] {"/global/imageRegistry"}),
        Arguments.of(
            "trust-selector-boolean.yaml",
            new String[] {"/applicationTrust/namespaceSelector/matchLabels", "string"}),
        Arguments.of(
            "trust-selector-empty.yaml",
            new String[] {"/applicationTrust/namespaceSelector/matchLabels"}),
        Arguments.of(
            "trust-selector-bad-key.yaml",
            new String[] {
              "/applicationTrust/namespaceSelector/matchLabels", "'ferry.dev/apps only'"
            }));
  }

  /** What the chart's templates refuse. */
  static Stream<Arguments> refusedByTheChart() {
    return Stream.of(
        Arguments.of(
            "same-host-ports.yaml",
            new String[] {"agent.apiPort and agent.httpPort are both 9400"}),
        Arguments.of(
            "renew-before-validity.yaml",
            new String[] {"tls.renewBeforeDays (30) must be less than tls.validityDays (30)"}),
        Arguments.of(
            "csi-driver-without-cert-manager.yaml",
            new String[] {
              "certManager.csiDriver.enabled is true but certManager.enabled is false",
              "Set certManager.enabled=true"
            }));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource({"refusedBySchema", "refusedByTheChart"})
  void templateRefusesNamingTheValue(String file, String[] says) {
    String message = HelmChart.templateFailure(BAD.resolve(file));
    assertThat(message).as("helm template -f %s", file).contains(says);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("refusedBySchema")
  void lintRefusesNamingTheValue(String file, String[] says, @TempDir Path scratch) {
    LintResult lint = HelmChart.lint(BAD.resolve(file), scratch);
    assertThat(lint.isFailed()).as("helm lint with %s: %s", file, lint.getMessages()).isTrue();
    assertThat(String.join("\n", lint.getMessages())).as("helm lint with %s", file).contains(says);
  }

  @Test
  void everyBadValuesFileIsTried() throws IOException {
    try (Stream<Path> files = Files.list(BAD)) {
      assertThat(files.map(f -> f.getFileName().toString()))
          .containsExactlyInAnyOrderElementsOf(
              Stream.concat(refusedBySchema(), refusedByTheChart())
                  .map(a -> (String) a.get()[0])
                  .toList());
    }
  }
}
