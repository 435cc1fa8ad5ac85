// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Size;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;
import java.util.Map;

/** What a user reads with kubectl; also where the operator records its progress across restarts. */
public class MigrationRequestStatus {
  /**
   * How many connections status.connectionDetails lists at most: 100 details stay a few tens of
   * kilobytes, where 10,000 would come near etcd's 1.5 MB object limit.
   */
  public static final int MAX_CONNECTION_DETAILS = 100;

  @JsonPropertyDescription(
      "The migration's phase: Pending, Preparing, Prepared (spec.prepareOnly: the state is pre-copied, nothing frozen; waits for the ferry.dev/proceed annotation), Moving (the agents move the connections; the clients are held only then), Completed, Failed or RolledBack.")
  private Phase phase;

  @JsonPropertyDescription("The spec generation this status describes.")
  private Long observedGeneration;

  @JsonPropertyDescription(
      "Progressing (True while the migration runs, with the phase's reason), Ready (the migration ended as asked), Failed (why not), RolledBack; each with a reason and a message. A map keyed by type.")
  @Size(max = 8)
  private List<Condition> conditions;

  @JsonPropertyDescription(
      "When the migration entered each phase it went through, in order (as KubeVirt's phaseTransitionTimestamps).")
  @Size(max = 8)
  private List<PhaseTransition> phaseTransitionTimestamps;

  @JsonPropertyDescription("How many connections ended where.")
  private ConnectionCounts connections;

  @JsonPropertyDescription(
      "Connections and where each lives now: at most 100, the failed ones first (Failed, then Kept, RolledBack, the others); connections counts them all.")
  @Size(max = MAX_CONNECTION_DETAILS)
  private List<ConnectionDetail> connectionDetails;

  @JsonPropertyDescription(
      "How many connections connectionDetails leaves out to stay within its bound.")
  private Integer connectionDetailsOmitted;

  @JsonPropertyDescription(
      "How long each phase took, in milliseconds: the operator's phases by name, and the agents' own steps inside Moving as agent.source.NAME and agent.target.NAME.")
  private Map<String, Double> phaseMillis;

  @JsonPropertyDescription(
      "How long the clients were held, as the agents measured it: from the first freeze to the last resume, in milliseconds.")
  private Double pauseMillis;

  @JsonPropertyDescription("The id the agents know this migration by.")
  private String migrationId;

  private String sourceNode;

  @JsonPropertyDescription("The pod the connections move to, as given or as chosen.")
  private String targetPod;

  private String targetNode;

  @JsonPropertyDescription("The address that moves.")
  private String address;

  @JsonPropertyDescription("When the operator first saw the request.")
  private String startTime;

  @JsonPropertyDescription("When the migration ended.")
  private String completionTime;

  @JsonPropertyDescription("What happened last, in a sentence.")
  private String message;

  @JsonPropertyDescription(
      "The value of the annotation ferry.dev/rollback this status answers: a rollback asked of an"
          + " ended request runs once per value.")
  @io.fabric8.generator.annotation.Size(max = 63)
  private String rollbackRequest;

  public String getRollbackRequest() {
    return rollbackRequest;
  }

  public void setRollbackRequest(String rollbackRequest) {
    this.rollbackRequest = rollbackRequest;
  }

  public Phase getPhase() {
    return phase;
  }

  public void setPhase(Phase phase) {
    this.phase = phase;
  }

  public Long getObservedGeneration() {
    return observedGeneration;
  }

  public void setObservedGeneration(Long observedGeneration) {
    this.observedGeneration = observedGeneration;
  }

  public List<Condition> getConditions() {
    return conditions;
  }

  public void setConditions(List<Condition> conditions) {
    this.conditions = conditions;
  }

  public List<PhaseTransition> getPhaseTransitionTimestamps() {
    return phaseTransitionTimestamps;
  }

  public void setPhaseTransitionTimestamps(List<PhaseTransition> phaseTransitionTimestamps) {
    this.phaseTransitionTimestamps = phaseTransitionTimestamps;
  }

  public Integer getConnectionDetailsOmitted() {
    return connectionDetailsOmitted;
  }

  public void setConnectionDetailsOmitted(Integer connectionDetailsOmitted) {
    this.connectionDetailsOmitted = connectionDetailsOmitted;
  }

  public ConnectionCounts getConnections() {
    return connections;
  }

  public void setConnections(ConnectionCounts connections) {
    this.connections = connections;
  }

  public List<ConnectionDetail> getConnectionDetails() {
    return connectionDetails;
  }

  public void setConnectionDetails(List<ConnectionDetail> connectionDetails) {
    this.connectionDetails = connectionDetails;
  }

  public Map<String, Double> getPhaseMillis() {
    return phaseMillis;
  }

  public void setPhaseMillis(Map<String, Double> phaseMillis) {
    this.phaseMillis = phaseMillis;
  }

  public Double getPauseMillis() {
    return pauseMillis;
  }

  public void setPauseMillis(Double pauseMillis) {
    this.pauseMillis = pauseMillis;
  }

  public String getMigrationId() {
    return migrationId;
  }

  public void setMigrationId(String migrationId) {
    this.migrationId = migrationId;
  }

  public String getSourceNode() {
    return sourceNode;
  }

  public void setSourceNode(String sourceNode) {
    this.sourceNode = sourceNode;
  }

  public String getTargetPod() {
    return targetPod;
  }

  public void setTargetPod(String targetPod) {
    this.targetPod = targetPod;
  }

  public String getTargetNode() {
    return targetNode;
  }

  public void setTargetNode(String targetNode) {
    this.targetNode = targetNode;
  }

  public String getAddress() {
    return address;
  }

  public void setAddress(String address) {
    this.address = address;
  }

  public String getStartTime() {
    return startTime;
  }

  public void setStartTime(String startTime) {
    this.startTime = startTime;
  }

  public String getCompletionTime() {
    return completionTime;
  }

  public void setCompletionTime(String completionTime) {
    this.completionTime = completionTime;
  }

  public String getMessage() {
    return message;
  }

  public void setMessage(String message) {
    this.message = message;
  }
}
