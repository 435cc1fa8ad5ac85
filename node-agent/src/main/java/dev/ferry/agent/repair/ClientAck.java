// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

/**
 * The latest acknowledgment a held client sent, as the source's hold saw it: the exported socket
 * never received it. The client had all the data up to {@code ack}; a socket restored without
 * knowing so counts that data as in flight, which may fill its congestion window, and then sends
 * little until the client answers its window probe, a round trip after the resume. {@link
 * RestoredSocket#clientAcknowledged} hands it the acknowledgment instead.
 *
 * @param ack the acknowledgment number
 * @param window the window field of the segment that carried it, in the client's scale
 * @param tsval that segment's TSval; 0 when it had none
 */
public record ClientAck(int ack, int window, int tsval) {}
