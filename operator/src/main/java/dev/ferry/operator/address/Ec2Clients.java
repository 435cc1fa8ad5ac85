// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import dev.ferry.operator.OperatorSettings;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.retries.api.RetryStrategy;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.Ec2ClientBuilder;

/** The EC2 client of the AWS address mover, from ferry.operator.aws.*. */
public final class Ec2Clients {
  private Ec2Clients() {}

  /**
   * With the SDK's default credentials chain: system properties, environment, web identity token
   * (IRSA; the SDK needs its sts module for it), profile files, container credentials (EKS Pod
   * Identity), instance profile.
   */
  public static Ec2Client create(OperatorSettings.Aws settings) {
    return create(settings, DefaultCredentialsProvider.builder().build());
  }

  public static Ec2Client create(
      OperatorSettings.Aws settings, AwsCredentialsProvider credentials) {
    Ec2ClientBuilder builder =
        Ec2Client.builder()
            // Named, not found on the class path: the ec2 module also brings the Apache and Netty
            // clients along, and the SDK refuses to guess between several.
            .httpClientBuilder(UrlConnectionHttpClient.builder())
            .credentialsProvider(credentials)
            .overrideConfiguration(o -> o.retryStrategy(retryStrategy(settings)));
    settings.endpoint().ifPresent(builder::endpointOverride);
    settings.region().map(Region::of).ifPresent(builder::region);
    return builder.build();
  }

  /**
   * The SDK's standard strategy with AWS's retry conditions (throttling error codes such as
   * RequestLimitExceeded and Throttling, HTTP 500/502/503/504, I/O errors, clock skew), set
   * explicitly so that neither AWS_RETRY_MODE nor AWS_MAX_ATTEMPTS changes it. Its circuit breaker
   * is off: it would let one claim's retries depend on how earlier, unrelated calls failed, and the
   * operator makes few calls; {@code maxAttempts} alone bounds each.
   */
  static RetryStrategy retryStrategy(OperatorSettings.Aws settings) {
    return AwsRetryStrategy.standardRetryStrategy().toBuilder()
        .maxAttempts(settings.maxAttempts())
        .backoffStrategy(
            BackoffStrategy.exponentialDelay(settings.retryBaseDelay(), settings.maxRetryDelay()))
        .throttlingBackoffStrategy(
            BackoffStrategy.exponentialDelay(
                settings.throttleBaseDelay(), settings.maxRetryDelay()))
        .circuitBreakerEnabled(false)
        .build();
  }
}
