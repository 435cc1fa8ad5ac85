// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

/** An EC2 error answer: the code, the message and the HTTP status EC2 would send. */
final class FakeEc2Error extends Exception {
  private final String code;
  private final int status;

  FakeEc2Error(String code, int status, String message) {
    super(message, null, false, false);
    this.code = code;
    this.status = status;
  }

  static FakeEc2Error badParameter(String message) {
    return new FakeEc2Error("InvalidParameterValue", 400, message);
  }

  static FakeEc2Error missing(String parameter) {
    return new FakeEc2Error(
        "MissingParameter", 400, "The request must contain the parameter " + parameter);
  }

  static FakeEc2Error noSuchInterface(String eni) {
    return new FakeEc2Error(
        "InvalidNetworkInterfaceID.NotFound",
        400,
        "The networkInterface ID '" + eni + "' does not exist");
  }

  static FakeEc2Error denied(String action) {
    // The shape of EC2's message, without the encoded authorization failure it appends.
    return new FakeEc2Error(
        "UnauthorizedOperation",
        403,
        "You are not authorized to perform this operation. User:"
            + " arn:aws:sts::000000000000:assumed-role/ferry-operator/fake is not authorized to"
            + " perform: ec2:"
            + action
            + " because no identity-based policy allows the ec2:"
            + action
            + " action.");
  }

  /** An injected fault: EC2's own message for the codes tests inject most. */
  static FakeEc2Error injected(String action, String code, int status) {
    String message =
        switch (code) {
          case "RequestLimitExceeded" -> "Request limit exceeded.";
          case "Throttling" -> "Rate exceeded";
          case "InternalError" -> "An internal error has occurred";
          case "Unavailable" -> "The service is unavailable. Please try again shortly.";
          case "UnauthorizedOperation" -> denied(action).getMessage();
          case "AuthFailure" -> "AWS was not able to validate the provided access credentials";
          default -> "Injected by FakeEc2 into " + action;
        };
    return new FakeEc2Error(code, status, message);
  }

  String code() {
    return code;
  }

  int status() {
    return status;
  }
}
