// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import dev.ferry.operator.OperatorSettings;
import java.time.Duration;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.sqs.SqsClient;
import software.amazon.awssdk.services.sqs.SqsClientBuilder;

/** The SQS client of queue mode, from ferry.operator.queue.*. */
public final class SqsClients {
  private SqsClients() {}

  /** With the SDK's default credentials chain, as the EC2 client (Ec2Clients). */
  public static SqsClient create(OperatorSettings.Queue settings) {
    return create(settings, DefaultCredentialsProvider.builder().build());
  }

  public static SqsClient create(
      OperatorSettings.Queue settings, AwsCredentialsProvider credentials) {
    SqsClientBuilder builder =
        SqsClient.builder()
            .httpClientBuilder(
                UrlConnectionHttpClient.builder()
                    // A long poll holds the answer back up to WaitTimeSeconds: wait longer.
                    .socketTimeout(settings.waitTime().plus(Duration.ofSeconds(10))))
            .credentialsProvider(credentials)
            // The SDK's standard strategy with AWS's conditions (throttling, 5xx, I/O errors); its
            // circuit breaker off, as for EC2: the poll loop's own backoff paces a queue that
            // keeps failing.
            .overrideConfiguration(
                o ->
                    o.retryStrategy(
                        AwsRetryStrategy.standardRetryStrategy().toBuilder()
                            .circuitBreakerEnabled(false)
                            .build()));
    settings.endpoint().ifPresent(builder::endpointOverride);
    settings.region().map(Region::of).ifPresent(builder::region);
    return builder.build();
  }
}
