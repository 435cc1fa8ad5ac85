// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

/** A MigrationRequest that cannot be carried out as written: the field, and how to fix it. */
public final class InvalidRequest extends Exception {
  public final String field;

  public InvalidRequest(String field, String message) {
    super(field + ": " + message);
    this.field = field;
  }
}
