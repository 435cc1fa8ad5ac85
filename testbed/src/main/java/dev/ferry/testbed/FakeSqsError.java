// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

/**
 * An SQS error answer: the JSON protocol's error code, the code of the Query era (SQS sends it in
 * {@code x-amzn-query-error}, and the SDK reports it), the HTTP status and the message.
 */
final class FakeSqsError extends Exception {
  private final String code;
  private final String queryCode;
  private final int status;

  FakeSqsError(String code, String queryCode, int status, String message) {
    super(message, null, false, false);
    this.code = code;
    this.queryCode = queryCode;
    this.status = status;
  }

  static FakeSqsError invalid(String message) {
    return new FakeSqsError(
        "InvalidParameterValueException", "InvalidParameterValue", 400, message);
  }

  String code() {
    return code;
  }

  String queryCode() {
    return queryCode;
  }

  int status() {
    return status;
  }
}
