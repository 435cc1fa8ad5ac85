// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import dev.ferry.operator.OperatorSettings;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.DescribeNetworkInterfacesRequest;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.NetworkInterface;

/**
 * EC2, where the VPC delivers an address only to the network interface EC2 has it assigned to. The
 * address is a secondary private IPv4 address; a claim moves it to an interface of the node's
 * instance in the same subnet with AssignPrivateIpAddresses(AllowReassignment=true), which takes it
 * off the interface that had it in the same call, then waits until DescribeNetworkInterfaces shows
 * it there: EC2 accepts the call before the VPC has moved the address.
 *
 * <p>Which interface: one tagged {@code node.k8s.amazonaws.com/no_manage=true} (the VPC CNI leaves
 * those alone), else the lowest device index. Limits: IPv4 only (EC2 cannot reassign an IPv6
 * address, only unassign and assign it, which drops it in between), and only within the address's
 * subnet, so within one availability zone. Throttling and transient errors are retried by the SDK
 * (see {@link Ec2Clients#retryStrategy}); what fails for good throws {@link AddressClaimFailed}.
 *
 * <p>"Already there" is trusted only by a first claim. EC2 is eventually consistent: an accepted
 * AssignPrivateIpAddresses may not show in DescribeNetworkInterfaces for a while, and lands all the
 * same; EC2 applies the assignments it accepted in the order it accepted them. So {@link #claim}
 * returns at once when Describe shows the address on the chosen interface (a repeat after a timeout
 * or a restart costs no call): within a migration the only other Assign, the claim-back, comes
 * after the claim, so nothing of ours is left to overtake it (a claim-back still landing when a new
 * migration of the same address starts at once could; that is left open). {@link #claimBack}, in a
 * rollback, cannot trust it: the claim for the target that preceded it may have been accepted and
 * not shown yet (it timed out, or the operator restarted), so Describe still shows the address on
 * the source, and a claim-back that returned there would be overtaken once that claim lands,
 * leaving the address on the target with every connection back on the source. So it always calls
 * Assign, which EC2 applies after the earlier one, then waits for Describe to show the address on
 * the source. That may show before the earlier Assign lands (the address then passes through the
 * target briefly); the order still makes the source where it ends. Assigning an address to the
 * interface it is on changes nothing, so a claim-back that was not needed, or is repeated, is
 * harmless.
 */
public final class Ec2Fabric implements Fabric, AutoCloseable {
  static final String DESCRIBE = "DescribeNetworkInterfaces";
  static final String ASSIGN = "AssignPrivateIpAddresses";

  private static final Duration FIRST_POLL = Duration.ofMillis(50);
  private static final Pattern IPV4 = Pattern.compile("(\\d{1,3}\\.){3}\\d{1,3}");

  private final Ec2Client ec2;
  private final NodeInstances instances;
  private final Duration settleTimeout;
  private final Duration longestPoll;

  /**
   * Takes over {@code ec2}: {@link #close} closes it.
   *
   * @param settleTimeout how long to wait for DescribeNetworkInterfaces to show a moved address
   * @param longestPoll the longest pause between two looks (the first comes after 50 ms)
   */
  public Ec2Fabric(
      Ec2Client ec2, NodeInstances instances, Duration settleTimeout, Duration longestPoll) {
    this.ec2 = ec2;
    this.instances = instances;
    this.settleTimeout = settleTimeout;
    this.longestPoll = longestPoll;
  }

  /** With a client of its own, built from ferry.operator.aws.*. */
  public static Ec2Fabric create(OperatorSettings.Aws settings, NodeInstances instances) {
    return new Ec2Fabric(
        Ec2Clients.create(settings), instances, settings.settleTimeout(), settings.settlePoll());
  }

  @Override
  public void claim(String address, String node) throws InterruptedException {
    claim(address, node, true, true);
  }

  /**
   * Assign accepted is enough: the agents forward until the VPC delivers the address. A claim-back
   * in a rollback still comes after this Assign, so the order rule above holds.
   */
  @Override
  public void claimAccepted(String address, String node) throws InterruptedException {
    claim(address, node, true, false);
  }

  /**
   * The lookups of a claim: the node's instance, the address's subnet and interface, the target's
   * interface in that subnet, the address being a secondary IPv4 one. Nothing is assigned. The
   * permission to assign cannot be checked ahead: AssignPrivateIpAddresses has no DryRun.
   */
  @Override
  public void checkClaim(String address, String node) {
    try {
      choose(address, node, true);
    } catch (AddressClaimFailed e) {
      throw e.assignedNothing();
    }
  }

  @Override
  public void claimBack(String address, String node) throws InterruptedException {
    claim(address, node, false, true);
  }

  /**
   * @param trustShown whether Describe showing the address on the chosen interface is the claim
   *     done: only when no earlier Assign of ours can overtake one made now (see the class comment)
   * @param awaitShown whether to return only once Describe shows the address there
   */
  private void claim(String address, String node, boolean trustShown, boolean awaitShown)
      throws InterruptedException {
    Chosen chosen;
    try {
      chosen = choose(address, node, trustShown);
    } catch (AddressClaimFailed e) {
      throw e.assignedNothing(); // nothing was asked of EC2 but lookups
    }
    if (chosen == null) {
      return;
    }
    String eni = chosen.eni();
    try {
      call(
          ASSIGN,
          "on " + eni,
          () ->
              ec2.assignPrivateIpAddresses(
                  r ->
                      r.networkInterfaceId(eni)
                          .privateIpAddresses(address)
                          .allowReassignment(true)));
    } catch (AddressClaimFailed e) {
      // EC2 turned the request down (a client error: denied, invalid): nothing will land. A
      // server error or no answer at all may still have been accepted.
      throw refused(e) ? e.assignedNothing() : e;
    }
    if (awaitShown) {
      awaitShown(address, eni, node, chosen.instance());
    }
  }

  /** The interface to assign the address to, on {@code node}'s instance. */
  private record Chosen(String eni, String instance) {}

  /** Where the address goes; null when it is shown there already and that may be trusted. */
  private Chosen choose(String address, String node, boolean trustShown) {
    requireIpv4(address);
    String instance = instances.instanceId(node);
    List<NetworkInterface> holders =
        describe("for " + address, r -> r.filters(filter("addresses.private-ip-address", address)));
    if (holders.isEmpty()) {
      throw new AddressClaimFailed(
          "no EC2 network interface holds "
              + address
              + ": the AWS address mover moves a secondary private IPv4 address that EC2 has"
              + " assigned to the source node's interface; assign it there first");
    }
    // Several holders only when VPCs overlap: the instance's own VPC settles which one counts.
    Set<String> subnets = new LinkedHashSet<>();
    holders.forEach(h -> subnets.add(h.subnetId()));
    List<NetworkInterface> candidates =
        describe(
            "for " + instance,
            r ->
                r.filters(
                    filter("attachment.instance-id", instance),
                    filter("subnet-id", subnets.toArray(String[]::new))));
    NetworkInterface target =
        TargetInterface.choose(candidates)
            .orElseThrow(() -> noInterfaceInSubnet(address, node, instance, holders));
    String eni = target.networkInterfaceId();
    if (trustShown && holds(target, address)) {
      return null;
    }
    NetworkInterface source =
        holders.stream().filter(h -> h.subnetId().equals(target.subnetId())).findFirst().get();
    if (isPrimary(source, address)) {
      throw new AddressClaimFailed(
          address
              + " is the primary private IPv4 address of "
              + source.networkInterfaceId()
              + ": EC2 moves only secondary addresses; give the pod a secondary one");
    }
    return new Chosen(eni, instance);
  }

  private static boolean refused(AddressClaimFailed e) {
    return e.getCause() instanceof software.amazon.awssdk.awscore.exception.AwsServiceException s
        && s.statusCode() >= 400
        && s.statusCode() < 500;
  }

  /** The VPC needs no announcement: it delivers to whichever interface EC2 assigned. */
  @Override
  public boolean announces() {
    return false;
  }

  /** EC2 must reassign the address before the target resumes: the operator claims it. */
  @Override
  public boolean claimsBeforeCommit() {
    return true;
  }

  private void awaitShown(String address, String eni, String node, String instance)
      throws InterruptedException {
    long deadline = System.nanoTime() + settleTimeout.toNanos();
    long pause = FIRST_POLL.toNanos();
    for (long left = settleTimeout.toNanos(); left > 0; left = deadline - System.nanoTime()) {
      Thread.sleep(Duration.ofNanos(Math.min(pause, left)).toMillis());
      if (describe("on " + eni, r -> r.networkInterfaceIds(eni)).stream()
          .anyMatch(ni -> holds(ni, address))) {
        return;
      }
      pause = Math.min(pause * 2, longestPoll.toNanos());
    }
    throw new AddressClaimFailed(
        "EC2 accepted moving "
            + address
            + " to "
            + eni
            + " ("
            + node
            + ", "
            + instance
            + ") but DescribeNetworkInterfaces did not show it on "
            + eni
            + " within "
            + text(settleTimeout)
            + " (ferry.operator.aws.settle-timeout)");
  }

  private List<NetworkInterface> describe(
      String subject, Consumer<DescribeNetworkInterfacesRequest.Builder> request) {
    // No MaxResults, so EC2 answers everything in one page: every query here is narrowed by an
    // address, a subnet or an interface id to a handful of interfaces.
    return call(DESCRIBE, subject, () -> ec2.describeNetworkInterfaces(request))
        .networkInterfaces();
  }

  private static <T> T call(String action, String subject, Supplier<T> call) {
    try {
      return call.get();
    } catch (SdkException e) {
      throw Ec2Failure.of(action, subject, e);
    }
  }

  private static Filter filter(String name, String... values) {
    return Filter.builder().name(name).values(values).build();
  }

  private static boolean holds(NetworkInterface ni, String address) {
    return ni.privateIpAddresses().stream().anyMatch(a -> address.equals(a.privateIpAddress()));
  }

  private static boolean isPrimary(NetworkInterface ni, String address) {
    return ni.privateIpAddresses().stream()
        .anyMatch(a -> address.equals(a.privateIpAddress()) && Boolean.TRUE.equals(a.primary()));
  }

  private static AddressClaimFailed noInterfaceInSubnet(
      String address, String node, String instance, List<NetworkInterface> holders) {
    NetworkInterface h = holders.get(0);
    return new AddressClaimFailed(
        node
            + " ("
            + instance
            + ") has no network interface in "
            + h.subnetId()
            + ", where "
            + address
            + " is (on "
            + h.networkInterfaceId()
            + "): EC2 moves an address only within its subnet, so within one availability zone;"
            + " choose a target node in that subnet, or attach an interface in it to the node");
  }

  private static void requireIpv4(String address) {
    if (address.contains(":")) {
      throw new AddressClaimFailed(
          "EC2 cannot reassign IPv6 addresses ("
              + address
              + "); use the l2 mover (ferry.operator.address-mover=l2) or IPv4");
    }
    if (!IPV4.matcher(address).matches()) {
      throw new AddressClaimFailed("'" + address + "' is not an IPv4 address");
    }
  }

  private static String text(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
  }

  /** Closes the EC2 client. */
  @Override
  public void close() {
    ec2.close();
  }
}
