// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import dev.ferry.testbed.FakeEc2;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Ec2Exception;
import software.amazon.awssdk.services.ec2.model.NetworkInterface;
import software.amazon.awssdk.services.ec2.model.NetworkInterfacePrivateIpAddress;

/** The local EC2 answers the real SDK as EC2 does, refusals included. */
class FakeEc2Test {
  FakeEc2 ec2;
  Ec2Client sdk;

  @BeforeEach
  void start() throws Exception {
    ec2 = FakeEc2.start();
    ec2.addInterface("eni-a", "i-0123abcd", "subnet-1", 0, "10.0.1.10", Map.of("team", "net"));
    ec2.addSecondary("eni-a", "10.0.1.100");
    ec2.addInterface("eni-b", "i-4567abcd", "subnet-1", 1, "10.0.1.20", Map.of());
    ec2.addInterface("eni-c", "i-4567abcd", "subnet-2", 2, "10.0.2.20", Map.of());
    sdk = TestAws.at(ec2.endpoint()).maxAttempts(1).client();
  }

  @AfterEach
  void stop() {
    sdk.close();
    ec2.close();
  }

  @Test
  void describesInterfacesAsTheSdkReadsThem() {
    NetworkInterface a =
        sdk.describeNetworkInterfaces(r -> r.networkInterfaceIds("eni-a"))
            .networkInterfaces()
            .get(0);

    assertThat(a.subnetId()).isEqualTo("subnet-1");
    assertThat(a.attachment().instanceId()).isEqualTo("i-0123abcd");
    assertThat(a.attachment().deviceIndex()).isZero();
    assertThat(a.tagSet()).singleElement().satisfies(t -> assertThat(t.key()).isEqualTo("team"));
    assertThat(a.privateIpAddresses())
        .extracting(
            NetworkInterfacePrivateIpAddress::privateIpAddress,
            NetworkInterfacePrivateIpAddress::primary)
        .containsExactly(tuple("10.0.1.10", true), tuple("10.0.1.100", false));
  }

  @Test
  void filtersAndTogetherValuesOr() {
    List<String> ids =
        sdk
            .describeNetworkInterfaces(
                r ->
                    r.filters(
                        f -> f.name("attachment.instance-id").values("i-4567abcd"),
                        f -> f.name("subnet-id").values("subnet-2", "subnet-9")))
            .networkInterfaces()
            .stream()
            .map(NetworkInterface::networkInterfaceId)
            .toList();

    assertThat(ids).containsExactly("eni-c");
  }

  @Test
  void anUnknownFilterIsInvalid() {
    assertThatThrownBy(
            () -> sdk.describeNetworkInterfaces(r -> r.filters(f -> f.name("vpc-idd").values("x"))))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "InvalidParameterValue", 400));
  }

  @Test
  void anUnknownInterfaceIsNotFound() {
    assertThatThrownBy(() -> sdk.describeNetworkInterfaces(r -> r.networkInterfaceIds("eni-x")))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "InvalidNetworkInterfaceID.NotFound", 400));
    assertThatThrownBy(
            () ->
                sdk.assignPrivateIpAddresses(
                    r -> r.networkInterfaceId("eni-x").privateIpAddresses("10.0.1.101")))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "InvalidNetworkInterfaceID.NotFound", 400));
  }

  @Test
  void takingAHeldAddressNeedsAllowReassignment() {
    assertThatThrownBy(
            () ->
                sdk.assignPrivateIpAddresses(
                    r -> r.networkInterfaceId("eni-b").privateIpAddresses("10.0.1.100")))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "PrivateIpAddressInUse", 400));
    assertThat(ec2.interfaceOf("10.0.1.100")).contains("eni-a");
  }

  @Test
  void anAddressDoesNotLeaveItsSubnet() {
    assertThatThrownBy(
            () ->
                sdk.assignPrivateIpAddresses(
                    r ->
                        r.networkInterfaceId("eni-c")
                            .privateIpAddresses("10.0.1.100")
                            .allowReassignment(true)))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "InvalidParameterValue", 400));
  }

  @Test
  void assigningNeedsAnAddress() {
    assertThatThrownBy(() -> sdk.assignPrivateIpAddresses(r -> r.networkInterfaceId("eni-b")))
        .isInstanceOfSatisfying(Ec2Exception.class, e -> assertCode(e, "MissingParameter", 400));
    assertThatThrownBy(() -> sdk.assignPrivateIpAddresses(r -> r.privateIpAddresses("10.0.1.5")))
        .isInstanceOfSatisfying(Ec2Exception.class, e -> assertCode(e, "MissingParameter", 400));
  }

  @Test
  void aMoveShowsAfterTheDelayOnceTheListenerHasRun() throws Exception {
    List<String> seenByListener = new CopyOnWriteArrayList<>();
    List<FakeEc2.Move> moves = new CopyOnWriteArrayList<>();
    ec2.onMove(
        m -> {
          seenByListener.add(ec2.interfaceOf(m.address()).orElse("none"));
          moves.add(m);
        });
    ec2.moveDelay(Duration.ofMillis(500));

    sdk.assignPrivateIpAddresses(
        r ->
            r.networkInterfaceId("eni-b").privateIpAddresses("10.0.1.100").allowReassignment(true));

    assertThat(ec2.interfaceOf("10.0.1.100")).contains("eni-a");
    awaitOn("10.0.1.100", "eni-b");
    assertThat(ec2.addresses("eni-a")).containsExactly("10.0.1.10");
    assertThat(seenByListener).containsExactly("eni-a");
    assertThat(moves)
        .containsExactly(
            new FakeEc2.Move("10.0.1.100", "eni-a", "i-0123abcd", "eni-b", "i-4567abcd"));
  }

  @Test
  void movesShowInTheOrderEc2AcceptedThemEvenWhenTheDelayShrank() throws Exception {
    List<FakeEc2.Move> moves = new CopyOnWriteArrayList<>();
    ec2.onMove(moves::add);
    ec2.moveDelay(Duration.ofMinutes(5));
    sdk.assignPrivateIpAddresses(
        r ->
            r.networkInterfaceId("eni-b").privateIpAddresses("10.0.1.100").allowReassignment(true));
    ec2.moveDelay(Duration.ZERO);

    sdk.assignPrivateIpAddresses(
        r ->
            r.networkInterfaceId("eni-a").privateIpAddresses("10.0.1.100").allowReassignment(true));

    assertThat(ec2.awaitSettled(Duration.ofSeconds(30))).isTrue();
    assertThat(moves)
        .containsExactly(
            new FakeEc2.Move("10.0.1.100", "eni-a", "i-0123abcd", "eni-b", "i-4567abcd"),
            new FakeEc2.Move("10.0.1.100", "eni-b", "i-4567abcd", "eni-a", "i-0123abcd"));
    assertThat(ec2.interfaceOf("10.0.1.100")).contains("eni-a");
  }

  @Test
  void assigningAnAddressToTheInterfaceItIsAssignedToMovesNothing() throws Exception {
    List<FakeEc2.Move> moves = new CopyOnWriteArrayList<>();
    ec2.onMove(moves::add);

    sdk.assignPrivateIpAddresses(
        r ->
            r.networkInterfaceId("eni-a").privateIpAddresses("10.0.1.100").allowReassignment(true));

    assertThat(ec2.awaitSettled(Duration.ofSeconds(30))).isTrue();
    assertThat(moves).isEmpty();
    assertThat(ec2.interfaceOf("10.0.1.100")).contains("eni-a");
  }

  @Test
  void unassigningTakesTheAddressOffTheInterface() throws Exception {
    List<FakeEc2.Move> moves = new CopyOnWriteArrayList<>();
    ec2.onMove(moves::add);

    sdk.unassignPrivateIpAddresses(
        r -> r.networkInterfaceId("eni-a").privateIpAddresses("10.0.1.100"));

    awaitOn("10.0.1.100", null);
    assertThat(moves)
        .containsExactly(new FakeEc2.Move("10.0.1.100", "eni-a", "i-0123abcd", null, null));
    assertThatThrownBy(
            () ->
                sdk.unassignPrivateIpAddresses(
                    r -> r.networkInterfaceId("eni-a").privateIpAddresses("10.0.1.10")))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "InvalidParameterValue", 400));
  }

  @Test
  void injectedFaultsAndDenialsAnswerAsEc2Would() {
    ec2.failNext(FakeEc2.DESCRIBE, 1, "RequestLimitExceeded", 503);
    ec2.deny(FakeEc2.ASSIGN);

    assertThatThrownBy(() -> sdk.describeNetworkInterfaces(r -> r.networkInterfaceIds("eni-a")))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "RequestLimitExceeded", 503));
    assertThat(
            sdk.describeNetworkInterfaces(r -> r.networkInterfaceIds("eni-a")).networkInterfaces())
        .hasSize(1);
    assertThatThrownBy(
            () ->
                sdk.assignPrivateIpAddresses(
                    r -> r.networkInterfaceId("eni-b").privateIpAddresses("10.0.1.101")))
        .isInstanceOfSatisfying(
            Ec2Exception.class, e -> assertCode(e, "UnauthorizedOperation", 403))
        .hasMessageContaining("ec2:AssignPrivateIpAddresses");
  }

  @Test
  void anUnsignedRequestIsRefused() throws Exception {
    HttpResponse<String> r = post(null, "Action=DescribeNetworkInterfaces&Version=2016-11-15");

    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(r.body()).contains("<Code>AuthFailure</Code>").contains("<RequestID>");
  }

  @Test
  void anotherActionIsInvalid() throws Exception {
    HttpResponse<String> r =
        post(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/us-east-1/ec2/aws4_request",
            "Action=RunInstances&Version=2016-11-15");

    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(r.body()).contains("<Code>InvalidAction</Code>");
    assertThat(ec2.requests("RunInstances"))
        .singleElement()
        .satisfies(q -> assertThat(q.error()).isEqualTo("InvalidAction"));
  }

  /** Waits until Describe shows the address on the interface (or on none, for null). */
  private void awaitOn(String address, String eni) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (!ec2.interfaceOf(address).equals(Optional.ofNullable(eni))
        && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertThat(ec2.interfaceOf(address)).isEqualTo(Optional.ofNullable(eni));
  }

  private HttpResponse<String> post(String authorization, String form) throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(ec2.endpoint() + "/"))
            .header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
            .POST(HttpRequest.BodyPublishers.ofString(form));
    if (authorization != null) {
      b.header("Authorization", authorization);
    }
    return HttpClient.newHttpClient().send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static void assertCode(Ec2Exception e, String code, int status) {
    assertThat(e.awsErrorDetails().errorCode()).isEqualTo(code);
    assertThat(e.statusCode()).isEqualTo(status);
  }
}
