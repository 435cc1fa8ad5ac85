// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import dev.ferry.operator.OperatorSettings;
import java.net.URI;
import java.time.Duration;
import java.util.Optional;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.services.ec2.Ec2Client;

/** ferry.operator.aws.* for tests: a local endpoint, and backoffs of milliseconds. */
record TestAws(
    Optional<URI> endpoint,
    Optional<String> region,
    Duration settleTimeout,
    Duration settlePoll,
    int maxAttempts,
    Duration retryBaseDelay,
    Duration throttleBaseDelay,
    Duration maxRetryDelay)
    implements OperatorSettings.Aws {

  static TestAws at(URI endpoint) {
    return new TestAws(
        Optional.of(endpoint),
        Optional.of("us-east-1"),
        Duration.ofSeconds(5),
        Duration.ofMillis(100),
        8,
        Duration.ofMillis(1),
        Duration.ofMillis(5),
        Duration.ofMillis(20));
  }

  TestAws settleTimeout(Duration timeout) {
    return new TestAws(
        endpoint,
        region,
        timeout,
        settlePoll,
        maxAttempts,
        retryBaseDelay,
        throttleBaseDelay,
        maxRetryDelay);
  }

  TestAws maxAttempts(int attempts) {
    return new TestAws(
        endpoint,
        region,
        settleTimeout,
        settlePoll,
        attempts,
        retryBaseDelay,
        throttleBaseDelay,
        maxRetryDelay);
  }

  /** The real SDK client, as the operator builds it, with static credentials. */
  Ec2Client client() {
    return Ec2Clients.create(
        this, StaticCredentialsProvider.create(AwsBasicCredentials.create("AKIDTEST", "secret")));
  }
}
