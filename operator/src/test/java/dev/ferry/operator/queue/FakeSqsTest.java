// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.queue;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.testbed.FakeSqs;
import java.net.URI;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.sqs.SqsClient;
import software.amazon.awssdk.services.sqs.model.Message;
import software.amazon.awssdk.services.sqs.model.QueueDoesNotExistException;
import software.amazon.awssdk.services.sqs.model.ReceiptHandleIsInvalidException;
import software.amazon.awssdk.services.sqs.model.SqsException;

/** The local SQS answers the SDK's own calls as SQS does, errors included. */
class FakeSqsTest {
  private FakeSqs sqs;
  private SqsClient client;
  private String url;

  @BeforeEach
  void start() throws Exception {
    sqs = FakeSqs.start();
    url = sqs.createQueue("ferry-notices", 30);
    client = client(sqs.endpoint());
  }

  @AfterEach
  void stop() {
    client.close();
    sqs.close();
  }

  static SqsClient client(URI endpoint) {
    return SqsClient.builder()
        .httpClientBuilder(UrlConnectionHttpClient.builder())
        .endpointOverride(endpoint)
        .region(Region.US_EAST_1)
        .credentialsProvider(
            StaticCredentialsProvider.create(AwsBasicCredentials.create("AKIDTEST", "secret")))
        .build();
  }

  @Test
  void theSdkSpeaksTheJsonProtocolAndAReceivedMessageIsHiddenUntilDeleted() {
    client.sendMessage(b -> b.queueUrl(url).messageBody("hello"));
    List<Message> got =
        client.receiveMessage(b -> b.queueUrl(url).maxNumberOfMessages(10)).messages();
    assertThat(got).singleElement().satisfies(m -> assertThat(m.body()).isEqualTo("hello"));
    assertThat(sqs.calls().get(0).action()).isEqualTo(FakeSqs.SEND);

    assertThat(client.receiveMessage(b -> b.queueUrl(url)).messages())
        .as("hidden for its visibility timeout")
        .isEmpty();
    client.deleteMessage(b -> b.queueUrl(url).receiptHandle(got.get(0).receiptHandle()));
    assertThat(sqs.bodies("ferry-notices")).isEmpty();
  }

  @Test
  void aMessageWhoseVisibilityEndedComesBackUnderANewHandleAndTheOldOneIsRefused() {
    sqs.send("ferry-notices", "again");
    Message first = client.receiveMessage(b -> b.queueUrl(url)).messages().get(0);
    sqs.expireVisibility("ferry-notices");
    Message second = client.receiveMessage(b -> b.queueUrl(url)).messages().get(0);

    assertThat(second.receiptHandle()).isNotEqualTo(first.receiptHandle());
    assertThatThrownBy(
            () -> client.deleteMessage(b -> b.queueUrl(url).receiptHandle(first.receiptHandle())))
        .isInstanceOf(ReceiptHandleIsInvalidException.class);
    assertThatThrownBy(() -> client.deleteMessage(b -> b.queueUrl(url).receiptHandle("made-up")))
        .isInstanceOf(ReceiptHandleIsInvalidException.class);
    client.deleteMessage(b -> b.queueUrl(url).receiptHandle(second.receiptHandle()));
    assertThat(sqs.bodies("ferry-notices")).isEmpty();
  }

  @Test
  void anUnknownQueueIsRefusedAsSqsRefusesIt() {
    String other = sqs.url("no-such-queue");
    assertThatThrownBy(() -> client.receiveMessage(b -> b.queueUrl(other)))
        .isInstanceOf(QueueDoesNotExistException.class);
  }

  @Test
  void receiveTakesAtMostTenMessagesAndWaitsAtMostTwentySeconds() {
    assertThatThrownBy(() -> client.receiveMessage(b -> b.queueUrl(url).maxNumberOfMessages(11)))
        .isInstanceOf(SqsException.class)
        .hasMessageContaining("MaxNumberOfMessages");
    assertThatThrownBy(() -> client.receiveMessage(b -> b.queueUrl(url).waitTimeSeconds(21)))
        .isInstanceOf(SqsException.class)
        .hasMessageContaining("WaitTimeSeconds");
  }

  @Test
  void aLongPollReturnsAsSoonAsAMessageArrives() throws Exception {
    Thread sender =
        new Thread(
            () -> {
              try {
                Thread.sleep(300);
              } catch (InterruptedException e) {
                return;
              }
              sqs.send("ferry-notices", "late");
            });
    sender.start();
    List<Message> got = client.receiveMessage(b -> b.queueUrl(url).waitTimeSeconds(20)).messages();
    sender.join();
    assertThat(got).extracting(Message::body).containsExactly("late");
  }
}
