// Column types through the CLI (docs/types.md): clone builds the SQLite
// table from the server's column types, and a round trip (the client edits
// another column of the row and syncs) must leave every server value as it
// was.
#include "tests/e2e/e2e_harness.h"

namespace syncline::test {
namespace {

class TypesTest : public E2eTest {
 protected:
  // The whole row as PostgreSQL prints it.
  std::string ServerRows(const std::string& table) {
    return Lines(server().Rows("SELECT t::text FROM " + table + " t ORDER BY id"));
  }
  // Clone, edit `note` of every row on the client, sync: returns the client.
  std::unique_ptr<Db> RoundTrip(const std::string& file) {
    ProcessResult result = Cli("clone", file);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    auto client = OpenClient(file);
    client->Exec("UPDATE t SET note = 'edited on the client'");
    result = Cli("sync", file);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    server().Exec("UPDATE t SET note = 'original'");  // the only intended change, undone
    result = Cli("sync", file);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return client;
  }
  // Creates and fills the server's table t (`setup`), round-trips it through
  // a client and expects every server value as it was: returns the client.
  std::unique_ptr<Db> RoundTripUnchanged(const std::string& setup) {
    server().Exec(setup);
    const std::string before = ServerRows("t");
    auto client = RoundTrip(ClientFile("client.db"));
    EXPECT_PRED_FORMAT2(SameRows, before, ServerRows("t"));
    return client;
  }
  void ExpectNothingToSync() {
    ProcessResult quiet = Cli("sync", ClientFile("client.db"));
    EXPECT_EQ(quiet.out, "synced: pushed 0, pulled 0\n") << quiet.Describe();
  }
};

TEST_F(TypesTest, EveryTypeSurvivesARoundTrip) {
  auto client = RoundTripUnchanged(
      "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
      "CREATE DOMAIN posint AS int CHECK (VALUE > 0);"
      "CREATE TABLE t(id int PRIMARY KEY, note text, b bool, s smallint, big bigint, r real, d float8, "
      "n numeric(12,3), c char(3), v varchar(5), by bytea, u uuid, dt date, tm time, tz timetz, ts timestamp, "
      "tstz timestamptz, iv interval, j json, jb jsonb, arr int[], tarr text[], m mood, p posint, ip inet);"
      "SELECT syncline.track('t');"
      "INSERT INTO t VALUES (1, 'original', true, -5, 9223372036854775807, 1.1, 0.1, 123.450, 'ab', 'xyz', "
      "'\\x00ff', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '2024-02-29', '23:59:59.5', '10:00+02', "
      "'2024-01-01 00:00:00.000001', '2024-06-01 12:00:00+02', '1 day 02:00:00', '{\"b\":1, \"a\":[1,2]}', "
      "'{\"b\":1, \"a\":[1,2]}', '{1,2,NULL}', '{\"a b\",\"c,d\"}', 'happy', 7, '10.0.0.1/8');"
      "INSERT INTO t VALUES (2, 'original', false, 0, -9223372036854775808, -0.5, 1e300, -0.001, '', '', '\\x', "
      "NULL, '0001-01-01', '00:00', '00:00+00', '1999-12-31 23:59:59', '1970-01-01 00:00:00+00', '-3 days', "
      "'[]', '{}', '{}', '{}', 'sad', 1, '::1');"
      "INSERT INTO t (id, note) VALUES (3, 'original')");
  // What the client holds: the changeset's canonical forms, typed.
  EXPECT_EQ(client->Text("SELECT b || ' ' || typeof(b) FROM t WHERE id = 1"), "1 integer");
  EXPECT_EQ(client->Text("SELECT big FROM t WHERE id = 2"), "-9223372036854775808");
  EXPECT_EQ(client->Text("SELECT hex(by) || ' ' || typeof(by) FROM t WHERE id = 1"), "00FF blob");
  EXPECT_EQ(client->Text("SELECT u FROM t WHERE id = 1"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(client->Text("SELECT tstz FROM t WHERE id = 1"), "2024-06-01 10:00:00+00");
  EXPECT_EQ(client->Text("SELECT jb FROM t WHERE id = 1"), "{\"a\": [1, 2], \"b\": 1}");
  EXPECT_EQ(client->Text("SELECT c FROM t WHERE id = 1"), "ab ");
  EXPECT_EQ(client->Text("SELECT count(*) FROM t WHERE id = 3 AND coalesce(b, s, big, r, d, n, c, v, by, u, dt, tm, "
                         "tz, ts, tstz, iv, j, jb, arr, tarr, m, p, ip) IS NULL"),
            "1");
  ExpectNothingToSync();
}

// A PostgreSQL NaN, in every column type that holds one, reaches the client
// (a REAL column holds it as the text 'NaN', docs/types.md) and comes back
// unchanged; so do the infinities.
TEST_F(TypesTest, NanAndInfinitiesSurviveARoundTrip) {
  auto client =
      RoundTripUnchanged("CREATE TABLE t(id int PRIMARY KEY, note text, r real, d float8, n numeric(10,2), nn numeric);"
                         "SELECT syncline.track('t');"
                         "INSERT INTO t VALUES (1, 'original', 'NaN', 'NaN', 'NaN', 'NaN'), "
                         "(2, 'original', 'Infinity', '-Infinity', 1.5, '-Infinity')");
  EXPECT_EQ(client->Text("SELECT quote(r) || ' ' || quote(d) || ' ' || quote(n) || ' ' || quote(nn) FROM t "
                         "WHERE id = 1"),
            "'NaN' 'NaN' 'NaN' 'NaN'");
  EXPECT_EQ(client->Text("SELECT typeof(r) || ' ' || typeof(d) FROM t WHERE id = 2"), "real real");
  ExpectNothingToSync();
}

// DISABLED: product bug, data loss. clone creates PostgreSQL `numeric`
// columns as SQLite NUMERIC (client/sync_client.cc, SqliteType), whose
// affinity turns the exact text the changeset carries ("12345678901234567.891")
// into a double: the client holds 12345678901234568 (an INTEGER). When the
// client then edits any other column of the row, it pushes that value, and
// the server stores 12345678901234568: the digits are silently lost on the
// server too. (Chinook's numeric(10,2) prices are small enough to survive.)
// Expected: numerics the double cannot hold stay exact (e.g. a TEXT-affinity
// column, or numeric text kept as TEXT), and a round trip changes nothing.
TEST_F(TypesTest, NumericBeyondDoublePrecisionSurvivesARoundTrip) {
  auto client =
      RoundTripUnchanged("CREATE TABLE t(id int PRIMARY KEY, note text, balance numeric, price numeric(20,2));"
                         "SELECT syncline.track('t');"
                         "INSERT INTO t VALUES (1, 'original', 12345678901234567.891, 123456789012345678.91), "
                         "(2, 'original', 0.1000000000000000055511151231257827, 0.10)");
  EXPECT_EQ(client->Text("SELECT balance FROM t WHERE id = 1"), "12345678901234567.891");
}

}  // namespace
}  // namespace syncline::test
