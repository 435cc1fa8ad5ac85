// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.agent.move.Departure;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.RepairWindow;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SavedStatesTest {
  @TempDir Path dir;

  private static Departure.Departed departed(int port, int appBytes) throws Exception {
    SocketState s =
        new SocketState(
            new InetSocketAddress(InetAddress.getByName("198.18.0.100"), 8080),
            new InetSocketAddress(InetAddress.getByName("198.18.0.1"), port),
            0xfedcba98,
            0x12345678,
            1460,
            true,
            7,
            7,
            true,
            true,
            0,
            new RepairWindow(0x12345000, 64512, 65535, 64256, 0x12345000),
            new byte[] {1, 2, 3},
            new byte[0],
            new byte[] {4},
            1_795_000_000_000L);
    byte[] app = new byte[appBytes];
    for (int i = 0; i < app.length; i++) {
      app[i] = (byte) (i * 31 + port);
    }
    return new Departure.Departed(new Connection(s.local(), s.remote()), s, app);
  }

  private static SavedStates.Migration migration(String id) {
    return new SavedStates.Migration(
        id,
        "source",
        "/run/netns/pod-a",
        "",
        "198.18.0.3:9443",
        MoveAddressPlan.newBuilder().setCidr("198.18.0.100/32").setHostRoute(true).build());
  }

  @Test
  void aBatchComesBackWholeAndInOrder() throws Exception {
    SavedStates saved = new SavedStates(dir);
    List<Departure.Departed> states = List.of(departed(40001, 0), departed(40002, 300_000));
    saved.save(migration("m-1"), states);

    List<Departure.Departed> back = saved.load("m-1");
    assertThat(back).hasSize(2);
    for (int i = 0; i < 2; i++) {
      assertThat(back.get(i).connection()).isEqualTo(states.get(i).connection());
      assertThat(back.get(i).applicationState()).isEqualTo(states.get(i).applicationState());
    }
    assertThat(saved.migration("m-1").targetAgent()).isEqualTo("198.18.0.3:9443");
    assertThat(saved.migration("m-1").address().getCidr()).isEqualTo("198.18.0.100/32");
    assertThat(saved.migration("m-1").address().getHostRoute()).isTrue();
  }

  @Test
  void userDataIsPrivateAndGoneWhenTheMigrationIsForgotten() throws Exception {
    SavedStates saved = new SavedStates(dir);
    saved.save(migration("m-2"), List.of(departed(40003, 1000)));
    saved.commitMayHappen("m-2");
    Path m = dir.resolve("migrations").resolve("m-2");
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(m)))
        .isEqualTo("rwx------");
    try (Stream<Path> files = Files.list(m)) {
      for (Path f : files.toList()) {
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(f)))
            .as(f.toString())
            .isEqualTo("rw-------");
      }
    }
    assertThat(saved.commitMayHaveHappened("m-2")).isTrue();

    saved.forget("m-2");
    assertThat(Files.exists(m)).isFalse();
    assertThat(saved.migrations()).isEmpty();
  }

  @Test
  void aMigrationWithOnlyItsPrecopiedStatesSavedNothing() throws Exception {
    SavedStates saved = new SavedStates(dir);
    Departure.Departed d = departed(40006, 10);
    try (SavedStates.PrecopyFile f = saved.precopy("m-5", d.connection())) {
      f.reset();
      f.append(new byte[] {9, 9, 9});
    }
    assertThat(saved.migrations()).containsExactly("m-5");
    assertThat(saved.anySaved("m-5")).as("pre-copied data only").isFalse();

    saved.save(migration("m-5"), List.of(d));
    assertThat(saved.anySaved("m-5")).isTrue();
  }

  @Test
  void aCutOrCorruptBatchIsNamedAndCanBeSetAside() throws Exception {
    SavedStates saved = new SavedStates(dir);
    saved.save(migration("m-3"), List.of(departed(40004, 5000)));
    Path file = dir.resolve("migrations").resolve("m-3").resolve("states.bin");
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(f.length() - 100);
    }
    assertThatThrownBy(() -> saved.load("m-3"))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("cut short");

    // A negative length, as a bit flip would leave it.
    saved.save(migration("m-4"), List.of(departed(40005, 10)));
    Path other = dir.resolve("migrations").resolve("m-4").resolve("states.bin");
    try (RandomAccessFile f = new RandomAccessFile(other.toFile(), "rw")) {
      f.seek(8);
      f.writeInt(-5);
    }
    assertThatThrownBy(() -> saved.load("m-4")).hasMessageContaining("impossible");

    Path aside = saved.setAside("m-3");
    assertThat(saved.migrations()).containsExactly("m-4");
    assertThat(Files.exists(aside.resolve("states.bin"))).isTrue();
  }

  @Test
  void aCommitRecordIsThereUntilItExpires() throws Exception {
    CommitRecords commits = new CommitRecords(dir);
    assertThat(commits.exists("m-5")).isFalse();
    commits.write("m-5");
    commits.write("m-5"); // a retried commit
    assertThat(commits.exists("m-5")).isTrue();
    commits.expire(Duration.ofHours(1));
    assertThat(commits.exists("m-5")).as("younger than an hour").isTrue();
    Files.setLastModifiedTime(
        dir.resolve("commits").resolve("m-5"),
        java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 7_200_000));
    commits.expire(Duration.ofHours(1));
    assertThat(commits.exists("m-5")).isFalse();
  }

  @Test
  void howAMigrationEndedIsMarkedApartFromItsCommitAndExpiresWithIt() throws Exception {
    CommitRecords commits = new CommitRecords(dir);
    String plan = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    commits.planRolledBack(plan);
    commits.allResumed("m-7");
    assertThat(commits.wasPlanRolledBack(plan)).isTrue();
    assertThat(commits.exists(plan)).as("rolled back is not committed").isFalse();
    assertThat(commits.wereAllResumed("m-7")).isTrue();
    assertThat(commits.wasPlanRolledBack("m-7")).isFalse();
    for (String sub : List.of("plans-rolled-back", "commits-resumed")) {
      assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(sub))))
          .isEqualTo("rwx------");
    }
    assertThat(
            PosixFilePermissions.toString(
                Files.getPosixFilePermissions(dir.resolve("plans-rolled-back").resolve(plan))))
        .isEqualTo("rw-------");
    Files.setLastModifiedTime(
        dir.resolve("plans-rolled-back").resolve(plan),
        java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 7_200_000));
    commits.expire(Duration.ofHours(1));
    assertThat(commits.wasPlanRolledBack(plan)).isFalse();
    assertThat(commits.wereAllResumed("m-7")).as("younger than an hour").isTrue();
  }
}
