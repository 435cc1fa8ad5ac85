// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.api.AgentIdentity;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** The agent's settings: ferry.agent.* in application.properties, or FERRY_AGENT_* variables. */
@ConfigMapping(prefix = "ferry.agent")
public interface AgentSettings {
  /** This node's name, as in the Node object (the chart passes spec.nodeName). */
  String nodeName();

  Api api();

  Tls tls();

  /** Where applications connect to hand their connections over (mounted into their pods). */
  @WithDefault("/run/ferry/handoff.sock")
  Path handoffSocket();

  /**
   * Who may connect to the handoff socket, as {@code rw-rw-rw-}: by default any user, so that
   * applications running as non-root users can; tighten it (and give the applications the group)
   * where the pods mounting the socket's directory are not all trusted alike.
   */
  @WithDefault("rw-rw-rw-")
  String handoffSocketMode();

  /** What applications may take of the agent through the handoff socket ({@code HandoffLimits}). */
  Handoff handoff();

  interface Handoff {
    /** Sessions open at once, in all; the next is refused with ERROR 10. */
    @WithDefault("256")
    int maxSessions();

    /** Sessions open at once from one network namespace (one pod). */
    @WithDefault("32")
    int maxSessionsPerNamespace();

    /** How long the rest of a frame may take once its first byte has come. */
    @WithDefault("PT10S")
    Duration frameTimeout();
  }

  /** Saved socket states; must survive an agent restart (a hostPath). */
  @WithDefault("/var/lib/ferry")
  Path stateDir();

  /** Where the hold's BPF maps are pinned, so that a restarted agent finds them. */
  @WithDefault("/sys/fs/bpf/ferry")
  Path bpfPinDir();

  /**
   * The node's uplink: the hold's programs attach here unless {@link #holdInterfaces} says
   * otherwise, and announcements of an address no hold interface's subnet covers leave here.
   */
  @WithDefault("eth0")
  String uplink();

  /**
   * Every interface a service address's traffic crosses (comma-separated): the hold's programs
   * attach to each, and an address is announced from the first whose subnet covers it. Unset: the
   * uplink alone. On EC2 with a separate {@code no_manage} ENI for service addresses (docs/aws.md)
   * that ENI must be here, or its clients are not held at all.
   */
  Optional<List<String>> holdInterfaces();

  /** {@link #holdInterfaces}, or the uplink alone. */
  default List<String> holdInterfacesOrUplink() {
    return holdInterfaces().filter(l -> !l.isEmpty()).orElse(List.of(uplink()));
  }

  /** How long a client may be held before the hold steps aside. */
  @WithDefault("PT2M")
  Duration holdLimit();

  /**
   * Whether what a held client sends goes into the restored socket (the hold keeps it either way),
   * so that the resume acknowledges it. Off only to compare (make bench-upload): the client then
   * sends it again when its retransmission timer fires.
   */
  @WithDefault("true")
  boolean keepClientBytes();

  /**
   * Whether this agent, as a source, sends COMMIT right behind the states to a target that commits
   * only what staged, instead of waiting for the target's STAGED first: the clients resume one
   * message after the states instead of three (one stream through the operator: held 13–20 ms
   * against 26–34, three runs each here). The price: once COMMIT has gone, a target agent that dies
   * while it stages leaves this agent unable to tell whether it committed, so the clients stay held
   * until that agent answers again (a restart) or the hold limit passes, and are lost then; waiting
   * for STAGED, such a move rolls back here at once. Off by default: nothing is lost to a target
   * that does not come back.
   */
  @WithDefault("false")
  boolean commitWithStates();

  /**
   * Whether a restored connection starts from its original's congestion window and threshold (a BPF
   * congestion control, where the kernel can register one) rather than from the initial window. Off
   * only to compare (make bench-congestion).
   */
  @WithDefault("true")
  boolean carryCongestion();

  /**
   * How long an application may stay silent before it starts answering a freeze, or answers a
   * takeover: any frame it sends restarts the count.
   */
  @WithDefault("PT2S")
  Duration answerTimeout();

  /** How long it may stay silent while its state streams in; a state that keeps coming is kept. */
  @WithDefault("PT30S")
  Duration stateTimeout();

  /**
   * How long a prepared move (MoveRequest.prepare_only: states pre-copied, nothing frozen) waits to
   * be asked to move before the agent ends it; at most 9 minutes, the life of its stream.
   */
  @WithDefault("PT9M")
  Duration preparedLimit();

  /** The largest application state accepted for one connection. */
  @WithDefault("268435456")
  long maxStateBytes();

  /**
   * The most application state this node holds for arrivals in progress, all together (pre-copied
   * parts and moved states, until each arrival ends); an arrival that would go over is refused with
   * RESOURCE_EXHAUSTED and rolls back. Default: half the heap. The agent does not start when it is
   * less than max-state-bytes (ReceiveBudget.of).
   */
  Optional<Long> maxReceiveBytes();

  /**
   * Whether a peer agent's certificate must name its node ({@code required}: a target then takes
   * states only from the agent of the plan's source node; see AgentIdentity), or all agents share
   * one certificate ({@code off}: the signed plan is all a target checks).
   */
  @WithDefault("required")
  String peerIdentity();

  /**
   * The agent's own namespace (the chart sets it): the only one whose pods may be agents, for peers
   * whose certificate names their pod.
   */
  Optional<String> namespace();

  /** {@link #peerIdentity()} read, or a startup error naming the setting. */
  default AgentIdentity.Mode peerIdentityMode() {
    return switch (peerIdentity()) {
      case "required" -> AgentIdentity.Mode.REQUIRED;
      case "off" -> AgentIdentity.Mode.OFF;
      default ->
          throw new IllegalArgumentException(
              "ferry.agent.peer-identity (FERRY_AGENT_PEER_IDENTITY) must be required or off, got '"
                  + peerIdentity()
                  + "'");
    };
  }

  /** How long a transfer to a peer agent may take. */
  @WithDefault("PT60S")
  Duration transferTimeout();

  /**
   * Tests only: honour a move's {@code fault} (MoveRequest.fault), stopping the agent at that point
   * as a crash there would. Off in every real deployment.
   */
  @WithDefault("false")
  boolean faultPoints();

  Imds imds();

  Forwarding forwarding();

  /**
   * Where the network delivers an address only to the interface it is assigned to, and late (EC2):
   * the node an address left forwards its packets to the node it moved to until the network
   * delivers it there (docs/aws.md). The chart turns it on with the AWS address mover.
   */
  interface Forwarding {
    @WithDefault("false")
    boolean enabled();

    /** How long an address is forwarded at most, whether or not the network has switched. */
    @WithDefault("PT2M")
    Duration limit();
  }

  interface Api {
    @WithDefault("0.0.0.0")
    String host();

    @WithDefault("9443")
    int port();
  }

  interface Tls {
    Path cert();

    Path key();

    Path ca();
  }

  interface Imds {
    /** Off outside EC2. */
    @WithDefault("false")
    boolean enabled();

    /** Another metadata endpoint than the instance's own, for tests. */
    Optional<URI> endpoint();

    @WithDefault("PT2S")
    Duration interval();
  }
}
