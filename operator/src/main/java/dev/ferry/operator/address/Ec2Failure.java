// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.SdkException;

/**
 * EC2's errors, once the SDK has given up retrying, as messages an admin can act on: which call, on
 * what, EC2's error code, and the fix where there is one.
 */
final class Ec2Failure {
  static final String POLICY = "docs/aws-iam-policy.json";
  private static final int LONGEST_EC2_MESSAGE = 300;

  private Ec2Failure() {}

  /**
   * @param action the EC2 action, e.g. {@code AssignPrivateIpAddresses}
   * @param subject what it acted on, e.g. {@code on eni-0123} or {@code for 10.0.1.5}, or null
   */
  static AddressClaimFailed of(String action, String subject, SdkException e) {
    String call = "ec2:" + action + (subject == null ? "" : " " + subject);
    if (!(e instanceof AwsServiceException s) || s.awsErrorDetails() == null) {
      return new AddressClaimFailed(
          "the operator could not call " + call + attempts(e) + ": " + e.getMessage(), e);
    }
    String code = s.awsErrorDetails().errorCode();
    if (code == null && s.statusCode() == 401) {
      // EC2 answers AuthFailure with 401, whose body the JDK's HttpURLConnection (under the SDK's
      // url-connection client, in streaming mode) withholds: the code never reaches the SDK.
      code = "AuthFailure";
    }
    String message =
        switch (code == null ? "" : code) {
          case "UnauthorizedOperation" ->
              "EC2 denied "
                  + call
                  + " to the operator (UnauthorizedOperation): grant ec2:"
                  + action
                  + " in the operator's IAM role"
                  + (action.endsWith("PrivateIpAddresses")
                      ? " (the example policy allows it only on interfaces tagged "
                          + TargetInterface.NO_MANAGE_TAG
                          + "=true)"
                      : "")
                  + ", see "
                  + POLICY;
          case "AuthFailure" ->
              "EC2 did not accept the operator's credentials for "
                  + call
                  + " (AuthFailure): check the operator's IAM role and how the pod gets it (IRSA:"
                  + " the service account's eks.amazonaws.com/role-arn annotation and the role's"
                  + " trust policy), and the node's clock";
          default ->
              s.isThrottlingException()
                  ? "EC2 kept throttling "
                      + call
                      + " ("
                      + code
                      + ")"
                      + attempts(e)
                      + ": the account's EC2 API request rate is used up; retry later, or allow"
                      + " more attempts with ferry.operator.aws.max-attempts"
                  : "EC2 refused "
                      + call
                      + ": "
                      + (code == null ? "no error code" : code)
                      + ": "
                      + shortened(s.awsErrorDetails().errorMessage())
                      + " (HTTP "
                      + s.statusCode()
                      + attempts(e)
                      + ")";
        };
    if (s.requestId() != null) {
      message += " [EC2 request id " + s.requestId() + "]";
    }
    return new AddressClaimFailed(message, e);
  }

  private static String attempts(SdkException e) {
    Integer n = e.numAttempts();
    return n == null || n < 2 ? "" : " after " + n + " attempts";
  }

  private static String shortened(String text) {
    if (text == null) {
      return "(no message)";
    }
    return text.length() <= LONGEST_EC2_MESSAGE
        ? text
        : text.substring(0, LONGEST_EC2_MESSAGE) + "...";
  }
}
