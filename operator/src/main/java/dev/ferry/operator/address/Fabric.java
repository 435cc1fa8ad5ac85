// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

/**
 * The network beyond the nodes: what must happen for clients' packets to the address to reach the
 * node that now has it.
 */
public interface Fabric {
  /**
   * Makes the network deliver the address to {@code node}; returns once it does. For the first
   * claim of a migration, which nothing the operator asked before can overtake: it may take the
   * address being there already as done. Repeating it is harmless.
   */
  void claim(String address, String node) throws Exception;

  /**
   * As {@link #claim}, but returns once the network has accepted the claim, before it delivers the
   * address: for a move whose agents forward the address's packets to the target until it does
   * (MoveOutcome.forwarding), so that the clients' pause does not wait for the network. Where a
   * claim takes effect at once, the same as {@link #claim}.
   */
  default void claimAccepted(String address, String node) throws Exception {
    claim(address, node);
  }

  /**
   * Checks, before anything is frozen, what of a {@link #claim} of the address for {@code node} can
   * be checked without moving it: where the address would go. A move whose agents commit before the
   * claim (they forward meanwhile) can no longer roll back when the claim fails; a node with no
   * interface in the address's subnet must stop it before the freeze. Nothing to check where a
   * claim cannot fail that way.
   */
  default void checkClaim(String address, String node) throws Exception {}

  /**
   * Gives the address back to {@code node} (the source) in a rollback, after a {@link #claim} for
   * another node may have been made: in this migration, or by this operator before it restarted,
   * which the caller cannot rule out. Where the network applies a claim some time after accepting
   * it (EC2), such a claim may not show yet and may still land: so this never takes the address
   * being on {@code node} as done, it claims it again, later than that one. Repeating it is
   * harmless.
   */
  void claimBack(String address, String node) throws Exception;

  /** Whether neighbours must hear of the move from the node (gratuitous ARP / unsolicited NA). */
  boolean announces();

  /**
   * Whether the operator claims the address from the network itself: between staging and commit
   * (the agents' Move stops at AWAITING_ADDRESS for it), or just after the commit when the source
   * node forwards the address's packets meanwhile. True where the network must be told, as EC2
   * must.
   */
  boolean claimsBeforeCommit();
}
