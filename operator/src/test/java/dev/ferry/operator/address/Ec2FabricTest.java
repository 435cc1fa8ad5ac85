// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import static dev.ferry.testbed.FakeEc2.ASSIGN;
import static dev.ferry.testbed.FakeEc2.DESCRIBE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.ferry.testbed.FakeEc2;
import dev.ferry.testbed.FakeEc2Request;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The AWS mover through the real SDK client against a local EC2. */
class Ec2FabricTest {
  static final String VIP = "10.0.1.100";
  static final String A = "i-0aaaaaaaaaaaaaaaa";
  static final String B = "i-0bbbbbbbbbbbbbbbb";
  static final String C = "i-0cccccccccccccccc";
  static final String D = "i-0dddddddddddddddd";
  static final Map<String, String> UNMANAGED = Map.of(TargetInterface.NO_MANAGE_TAG, "true");
  static final Map<String, String> NODES =
      Map.of("node-a", A, "node-b", B, "node-c", C, "node-d", D);

  FakeEc2 ec2;
  TestAws aws;
  Ec2Fabric fabric;
  List<FakeEc2.Move> moves = new CopyOnWriteArrayList<>();

  @BeforeEach
  void network() throws Exception {
    ec2 = FakeEc2.start();
    ec2.addInterface("eni-a0", A, "subnet-1", 0, "10.0.1.10", Map.of());
    ec2.addSecondary("eni-a0", VIP);
    ec2.addInterface("eni-b0", B, "subnet-1", 0, "10.0.1.20", Map.of());
    ec2.addInterface("eni-b2", B, "subnet-2", 2, "10.0.2.22", UNMANAGED);
    ec2.addInterface("eni-b1", B, "subnet-1", 1, "10.0.1.21", UNMANAGED);
    ec2.addInterface("eni-c1", C, "subnet-1", 1, "10.0.1.31", Map.of());
    ec2.addInterface("eni-c0", C, "subnet-1", 0, "10.0.1.30", Map.of());
    ec2.addInterface("eni-d0", D, "subnet-2", 0, "10.0.2.40", Map.of());
    ec2.onMove(moves::add);
    aws = TestAws.at(ec2.endpoint());
    fabric = fabric(aws);
  }

  @AfterEach
  void close() {
    fabric.close();
    ec2.close();
  }

  @Test
  void movesTheAddressToTheTargetsUnmanagedInterfaceInItsSubnet() throws Exception {
    fabric.claim(VIP, "node-b");

    assertThat(ec2.interfaceOf(VIP)).contains("eni-b1");
    assertThat(ec2.addresses("eni-a0")).containsExactly("10.0.1.10");
    assertThat(moves).containsExactly(new FakeEc2.Move(VIP, "eni-a0", A, "eni-b1", B));
    FakeEc2Request assign = single(ASSIGN);
    assertThat(assign.param("NetworkInterfaceId")).isEqualTo("eni-b1");
    assertThat(assign.list("PrivateIpAddress")).containsExactly(VIP);
    assertThat(assign.param("AllowReassignment")).isEqualTo("true");
    List<FakeEc2Request> describes = ec2.requests(DESCRIBE);
    assertThat(describes.get(0).filter("addresses.private-ip-address")).containsExactly(VIP);
    assertThat(describes.get(1).filter("attachment.instance-id")).containsExactly(B);
    assertThat(describes.get(1).filter("subnet-id")).containsExactly("subnet-1");
  }

  @Test
  void returnsOnlyOnceDescribeShowsTheAddressOnTheTarget() throws Exception {
    ec2.moveDelay(Duration.ofMillis(300));
    long start = System.nanoTime();

    fabric.claim(VIP, "node-b");

    assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(ms(300));
    assertThat(ec2.interfaceOf(VIP)).contains("eni-b1");
    List<FakeEc2Request> polls =
        ec2.requests(DESCRIBE).stream()
            .filter(r -> !r.list("NetworkInterfaceId").isEmpty())
            .toList();
    assertThat(polls).isNotEmpty();
    assertThat(polls)
        .allSatisfy(r -> assertThat(r.list("NetworkInterfaceId")).containsExactly("eni-b1"));
  }

  @Test
  void aClaimTheAgentsForwardForReturnsOnceEc2AcceptedItAndTheMoveLandsLater() throws Exception {
    // Longer than the fabric's settle timeout: a claim that waited for Describe would fail.
    ec2.moveDelay(Duration.ofSeconds(30));

    fabric.claimAccepted(VIP, "node-b");

    assertThat(single(ASSIGN).param("NetworkInterfaceId")).isEqualTo("eni-b1");
    assertThat(ec2.requests(DESCRIBE))
        .as("no look for the address on the target after the Assign")
        .noneSatisfy(r -> assertThat(r.list("NetworkInterfaceId")).isNotEmpty());
    assertThat(ec2.interfaceOf(VIP)).as("EC2 still shows it on the source").contains("eni-a0");
    assertThat(moves).isEmpty();
  }

  @Test
  void withoutTheNoManageTagTakesTheLowestDeviceIndex() throws Exception {
    fabric.claim(VIP, "node-c");

    assertThat(single(ASSIGN).param("NetworkInterfaceId")).isEqualTo("eni-c0");
    assertThat(ec2.interfaceOf(VIP)).contains("eni-c0");
  }

  @Test
  void claimingAgainMakesNoAssignCall() throws Exception {
    fabric.claim(VIP, "node-b");
    int describes = ec2.requests(DESCRIBE).size();

    fabric.claim(VIP, "node-b");

    assertThat(ec2.requests(ASSIGN)).hasSize(1);
    assertThat(ec2.requests(DESCRIBE)).hasSize(describes + 2);
    assertThat(ec2.interfaceOf(VIP)).contains("eni-b1");
  }

  @Test
  void movesBackToTheSource() throws Exception {
    fabric.claim(VIP, "node-b");

    fabric.claim(VIP, "node-a");

    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");
    assertThat(moves).last().isEqualTo(new FakeEc2.Move(VIP, "eni-b1", B, "eni-a0", A));
  }

  @Test
  void aClaimBackIsNotOvertakenByTheClaimEc2AcceptedBeforeIt() throws Exception {
    fabric.close();
    fabric = fabric(aws.settleTimeout(ms(300)));
    CountDownLatch release = new CountDownLatch(1);
    ec2.onMove(
        m -> {
          if ("eni-b1".equals(m.toInterface())) {
            // The VPC is still carrying the address to node-b when the operator gives it back.
            release.await(30, TimeUnit.SECONDS);
          }
          moves.add(m);
        });
    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .hasMessageContaining("did not show it on eni-b1");
    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");

    fabric.claimBack(VIP, "node-a");
    release.countDown();

    assertThat(ec2.awaitSettled(Duration.ofSeconds(30))).isTrue();
    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");
    assertThat(moves)
        .containsExactly(
            new FakeEc2.Move(VIP, "eni-a0", A, "eni-b1", B),
            new FakeEc2.Move(VIP, "eni-b1", B, "eni-a0", A));
  }

  @Test
  void aClaimBackAssignsEvenWhereDescribeShowsTheAddressAndMovesNothingThen() throws Exception {
    fabric.claimBack(VIP, "node-a");
    fabric.claimBack(VIP, "node-a");

    assertThat(ec2.requests(ASSIGN))
        .hasSize(2)
        .allSatisfy(r -> assertThat(r.param("NetworkInterfaceId")).isEqualTo("eni-a0"))
        .allSatisfy(r -> assertThat(r.param("AllowReassignment")).isEqualTo("true"));
    assertThat(ec2.awaitSettled(Duration.ofSeconds(30))).isTrue();
    assertThat(moves).isEmpty();
    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");
  }

  @Test
  void aClaimBackAfterAClaimThatShowedMovesTheAddressBack() throws Exception {
    fabric.claim(VIP, "node-b");

    fabric.claimBack(VIP, "node-a");

    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");
    assertThat(moves)
        .containsExactly(
            new FakeEc2.Move(VIP, "eni-a0", A, "eni-b1", B),
            new FakeEc2.Move(VIP, "eni-b1", B, "eni-a0", A));
  }

  @Test
  void retriesThrottlingUntilEc2AcceptsTheCall() throws Exception {
    ec2.failNext(ASSIGN, 2, "RequestLimitExceeded", 503);

    fabric.claim(VIP, "node-b");

    assertThat(ec2.requests(ASSIGN))
        .extracting(FakeEc2Request::error)
        .containsExactly("RequestLimitExceeded", "RequestLimitExceeded", null);
    assertThat(ec2.interfaceOf(VIP)).contains("eni-b1");
  }

  @Test
  void retriesServerErrors() throws Exception {
    ec2.failNext(DESCRIBE, 1, "InternalError", 500);
    ec2.failNext(ASSIGN, 1, "Unavailable", 503);

    fabric.claim(VIP, "node-b");

    assertThat(ec2.requests(DESCRIBE).get(0).error()).isEqualTo("InternalError");
    assertThat(ec2.requests(ASSIGN)).hasSize(2);
    assertThat(ec2.interfaceOf(VIP)).contains("eni-b1");
  }

  @Test
  void givesUpOnThrottlingAfterMaxAttempts() {
    fabric.close();
    fabric = fabric(aws.maxAttempts(3));
    ec2.failNext(ASSIGN, 5, "RequestLimitExceeded", 503);

    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .isInstanceOf(AddressClaimFailed.class)
        .hasMessageContaining("ec2:AssignPrivateIpAddresses on eni-b1")
        .hasMessageContaining("RequestLimitExceeded")
        .hasMessageContaining("after 3 attempts")
        .hasMessageContaining("ferry.operator.aws.max-attempts");
    assertThat(ec2.requests(ASSIGN)).hasSize(3);
    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");
  }

  @Test
  void aDeniedAssignFailsAtOnceNamingTheActionAndTheFix() {
    ec2.failNext(ASSIGN, 1, "UnauthorizedOperation", 403);

    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .isInstanceOf(AddressClaimFailed.class)
        .hasMessageStartingWith(
            "EC2 denied ec2:AssignPrivateIpAddresses on eni-b1 to the operator"
                + " (UnauthorizedOperation): grant ec2:AssignPrivateIpAddresses in the operator's"
                + " IAM role")
        .hasMessageContaining("tagged node.k8s.amazonaws.com/no_manage=true")
        .hasMessageContaining("see docs/aws-iam-policy.json")
        .satisfies(
            e ->
                assertThat(((AddressClaimFailed) e).nothingAssigned())
                    .as("a refused Assign assigned nothing: no claim-back is owed")
                    .isTrue());
    assertThat(ec2.requests(ASSIGN)).hasSize(1);
    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");
  }

  @Test
  void aCheckLooksTheTargetsInterfaceUpAndAssignsNothing() {
    fabric.checkClaim(VIP, "node-b");

    assertThat(ec2.requests(ASSIGN)).isEmpty();
    List<FakeEc2Request> describes = ec2.requests(DESCRIBE);
    assertThat(describes.get(0).filter("addresses.private-ip-address")).containsExactly(VIP);
    assertThat(describes.get(1).filter("attachment.instance-id")).containsExactly(B);
    assertThat(ec2.interfaceOf(VIP)).contains("eni-a0");
    assertThat(moves).isEmpty();
  }

  @Test
  void aCheckFailsForATargetWithNoInterfaceInTheSubnetWithoutAnAssign() {
    assertThatThrownBy(() -> fabric.checkClaim(VIP, "node-d"))
        .isInstanceOf(AddressClaimFailed.class)
        .hasMessageContaining("has no network interface in subnet-1");
    assertThat(ec2.requests(ASSIGN)).isEmpty();
  }

  @Test
  void aDeniedDescribeFailsAtOnceNamingTheAction() {
    ec2.deny(DESCRIBE);

    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .hasMessageStartingWith(
            "EC2 denied ec2:DescribeNetworkInterfaces for 10.0.1.100 to the operator"
                + " (UnauthorizedOperation): grant ec2:DescribeNetworkInterfaces in the operator's"
                + " IAM role, see docs/aws-iam-policy.json");
    assertThat(ec2.requests(DESCRIBE)).hasSize(1);
    assertThat(ec2.requests(ASSIGN)).isEmpty();
    assertThat(
            ((AddressClaimFailed) catchThrowable(() -> fabric.claim(VIP, "node-b")))
                .nothingAssigned())
        .isTrue();
  }

  @Test
  void rejectedCredentialsFailAtOnce() {
    ec2.failNext(ASSIGN, 1, "AuthFailure", 401);

    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .hasMessageContaining("credentials for ec2:AssignPrivateIpAddresses on eni-b1")
        .hasMessageContaining("(AuthFailure)")
        .hasMessageContaining("eks.amazonaws.com/role-arn");
    assertThat(ec2.requests(ASSIGN)).hasSize(1);
  }

  @Test
  void otherErrorsNameTheCodeAndTheCall() {
    ec2.failNext(ASSIGN, 1, "InvalidParameterValue", 400);

    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .hasMessageStartingWith(
            "EC2 refused ec2:AssignPrivateIpAddresses on eni-b1: InvalidParameterValue: ")
        .hasMessageContaining("HTTP 400")
        .hasMessageContaining("EC2 request id ");
    assertThat(ec2.requests(ASSIGN)).hasSize(1);
  }

  @Test
  void anUnreachableEc2FailsNamingTheCall() {
    fabric.close();
    fabric = fabric(aws.maxAttempts(2));
    ec2.close();

    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .isInstanceOf(AddressClaimFailed.class)
        .hasMessageStartingWith(
            "the operator could not call ec2:DescribeNetworkInterfaces for 10.0.1.100 after 2"
                + " attempts: ");
  }

  @Test
  void aTargetWithoutAnInterfaceInTheSubnetFailsClearly() {
    assertThatThrownBy(() -> fabric.claim(VIP, "node-d"))
        .isInstanceOf(AddressClaimFailed.class)
        .hasMessage(
            "node-d ("
                + D
                + ") has no network interface in subnet-1, where 10.0.1.100 is (on eni-a0): EC2"
                + " moves an address only within its subnet, so within one availability zone;"
                + " choose a target node in that subnet, or attach an interface in it to the node");
    assertThat(ec2.requests(ASSIGN)).isEmpty();
  }

  @Test
  void failsNamingTheInterfaceWhenTheMoveDoesNotShowInTime() {
    fabric.close();
    fabric = fabric(aws.settleTimeout(ms(300)));
    // Longer than any test: the claim gives up while the move is still on its way.
    ec2.moveDelay(Duration.ofMinutes(5));
    long start = System.nanoTime();

    assertThatThrownBy(() -> fabric.claim(VIP, "node-b"))
        .isInstanceOf(AddressClaimFailed.class)
        .hasMessage(
            "EC2 accepted moving 10.0.1.100 to eni-b1 (node-b, "
                + B
                + ") but DescribeNetworkInterfaces did not show it on eni-b1 within 300ms"
                + " (ferry.operator.aws.settle-timeout)");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(ms(300));
    assertThat(ec2.interfaceOf(VIP)).as("the move has not shown yet").contains("eni-a0");
    assertThat(
            ((AddressClaimFailed) catchThrowable(() -> fabric.claim(VIP, "node-b")))
                .nothingAssigned())
        .as("an accepted move may still land: the rollback must claim back")
        .isFalse();
  }

  @Test
  void refusesIpv6WithoutCallingEc2() {
    assertThatThrownBy(() -> fabric.claim("fd00::5", "node-b"))
        .isInstanceOf(AddressClaimFailed.class)
        .hasMessageContaining("EC2 cannot reassign IPv6 addresses")
        .hasMessageContaining("use the l2 mover");
    assertThat(ec2.requests()).isEmpty();
  }

  @Test
  void anAddressNoInterfaceHoldsFails() {
    assertThatThrownBy(() -> fabric.claim("10.0.1.199", "node-b"))
        .hasMessageStartingWith("no EC2 network interface holds 10.0.1.199");
    assertThat(ec2.requests(ASSIGN)).isEmpty();
  }

  @Test
  void aPrimaryAddressIsNotMoved() {
    assertThatThrownBy(() -> fabric.claim("10.0.1.10", "node-b"))
        .hasMessageStartingWith("10.0.1.10 is the primary private IPv4 address of eni-a0");
    assertThat(ec2.requests(ASSIGN)).isEmpty();
  }

  @Test
  void anUnknownNodeFailsWithTheLookupsMessage() {
    assertThatThrownBy(() -> fabric.claim(VIP, "node-x")).hasMessage("node node-x is not known");
    assertThat(ec2.requests()).isEmpty();
  }

  @Test
  void theVpcNeedsNoAnnouncement() {
    assertThat(fabric.announces()).isFalse();
  }

  private Ec2Fabric fabric(TestAws settings) {
    return new Ec2Fabric(
        settings.client(),
        node -> {
          String id = NODES.get(node);
          if (id == null) {
            throw new IllegalArgumentException("node " + node + " is not known");
          }
          return id;
        },
        settings.settleTimeout(),
        settings.settlePoll());
  }

  private FakeEc2Request single(String action) {
    assertThat(ec2.requests(action)).hasSize(1);
    return ec2.requests(action).get(0);
  }

  private static Duration ms(long millis) {
    return Duration.ofMillis(millis);
  }
}
