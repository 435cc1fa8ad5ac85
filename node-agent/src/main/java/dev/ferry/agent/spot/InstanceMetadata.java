// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import java.net.SocketTimeoutException;
import java.net.URI;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.imds.Ec2MetadataClient;
import software.amazon.awssdk.imds.Ec2MetadataClientException;
import software.amazon.awssdk.imds.Ec2MetadataRetryPolicy;

/**
 * Reads the EC2 instance metadata service with IMDSv2 session tokens (the SDK client fetches and
 * caches them). A document that is not there (404) is an empty answer, not an error. Used from one
 * thread.
 */
final class InstanceMetadata implements AutoCloseable {
  private final Supplier<Ec2MetadataClient> connect;
  private final String where;
  private Ec2MetadataClient client;

  private InstanceMetadata(Supplier<Ec2MetadataClient> connect, String where) {
    this.connect = connect;
    this.where = where;
  }

  /** The instance's own metadata service, or {@code endpoint} when given. */
  static InstanceMetadata at(Optional<URI> endpoint) {
    return new InstanceMetadata(
        () -> {
          Ec2MetadataClient.Builder b =
              Ec2MetadataClient.builder()
                  // URLConnection, not Apache or Netty: grpc-netty and Quarkus bring their own
                  // Netty, and a second HTTP stack is not worth two polls every two seconds.
                  .httpClient(
                      UrlConnectionHttpClient.builder()
                          .connectionTimeout(Duration.ofSeconds(1))
                          .socketTimeout(Duration.ofSeconds(2)))
                  // The next poll is the retry; the SDK's backoff would only delay a notice.
                  .retryPolicy(Ec2MetadataRetryPolicy.none());
          endpoint.ifPresent(b::endpoint);
          return b.build();
        },
        endpoint.map(URI::toString).orElse("the instance metadata service"));
  }

  /** The document at {@code path}, or empty when the service has none (404). */
  Optional<String> read(String path) throws MetadataUnavailable {
    for (int attempt = 1; ; attempt++) {
      try {
        return Optional.of(client().get(path).asString());
      } catch (Ec2MetadataClientException e) {
        if (e.statusCode() == 404) {
          return Optional.empty();
        }
        // The SDK keeps its token for hours; a metadata service that restarted no longer knows
        // it and answers 401 until a new client fetches a fresh one.
        if (e.statusCode() == 401 && attempt == 1) {
          close();
          continue;
        }
        throw new MetadataUnavailable(
            where + " answered " + path + " with HTTP " + e.statusCode(), e);
      } catch (RuntimeException e) {
        throw new MetadataUnavailable(where + " did not answer " + path + ": " + why(e), e);
      }
    }
  }

  /**
   * The SDK wraps the cause in "Exceeded maximum number of retries"; the admin needs the cause. A
   * timeout from inside a pod usually means the instance's metadata hop limit is 1.
   */
  private static String why(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String why = root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
    if (root instanceof SocketTimeoutException) {
      why += " (from a pod without host network, the metadata hop limit must be at least 2)";
    }
    return why;
  }

  private Ec2MetadataClient client() {
    if (client == null) {
      client = connect.get();
    }
    return client;
  }

  @Override
  public void close() {
    if (client != null) {
      client.close();
      client = null;
    }
  }

  @Override
  public String toString() {
    return where;
  }
}
