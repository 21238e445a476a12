// Real data: the Chinook database (11 tables, composite keys, numerics,
// timestamps, foreign keys) cloned into a SQLite client by the CLI, edited
// there and synced back.
#include <algorithm>
#include <cctype>

#include "tests/e2e/e2e_harness.h"

namespace syncline::test {
namespace {

std::string DataDir() {
  const char* dir = std::getenv("SYNCLINE_CHINOOK_DIR");
  return dir != nullptr ? dir : "/work/shared/data/chinook";
}

std::string QuoteIdent(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

// "invoice_line" and "InvoiceLine" name the same thing in the two scripts.
std::string Folded(const std::string& name) {
  std::string folded;
  for (char c : name)
    if (c != '_') folded += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return folded;
}

struct Table {
  std::string name;
  std::vector<std::string> columns;
  std::vector<bool> numeric;  // numeric columns compare as decimals
  std::vector<std::string> key;
};

class ChinookTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (!std::filesystem::exists(DataDir() + "/Chinook_PostgreSql.sql")) GTEST_SKIP() << "no Chinook data";
  }

  // The PostgreSQL script without its DROP/CREATE DATABASE and \c lines,
  // loaded into this test's database.
  void LoadChinook() {
    std::ifstream in(DataDir() + "/Chinook_PostgreSql.sql");
    std::ofstream out(ClientFile("chinook.sql"));
    std::string line;
    int stripped = 0;
    while (std::getline(in, line)) {
      if (line.rfind("DROP DATABASE", 0) == 0 || line.rfind("CREATE DATABASE", 0) == 0 || line.rfind("\\c", 0) == 0) {
        ++stripped;
        continue;
      }
      out << line << "\n";
    }
    out.close();
    ASSERT_EQ(stripped, 3);
    ProcessResult result =
        RunProcess({"psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", DbName(), "-f", ClientFile("chinook.sql")});
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
  }

  std::vector<Table> Tables() {
    std::vector<Table> tables;
    for (const Row& name : server().Rows("SELECT table_name FROM syncline.tracked_tables ORDER BY table_name")) {
      Table table{*name[0], {}, {}, {}};
      for (const Row& column : server().Rows("SELECT column_name, data_type FROM information_schema.columns "
                                             "WHERE table_schema = 'public' AND table_name = $1 "
                                             "ORDER BY ordinal_position",
                                             {table.name})) {
        table.columns.push_back(*column[0]);
        table.numeric.push_back(*column[1] == "numeric");
      }
      for (const Row& key : server().Rows("SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                                          "ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
                                          "WHERE i.indrelid = $1::regclass AND i.indisprimary "
                                          "ORDER BY array_position(i.indkey::int2[], a.attnum)",
                                          {table.name}))
        table.key.push_back(*key[0]);
      tables.push_back(std::move(table));
    }
    return tables;
  }

  // `trim`: trailing blanks dropped from text, for comparing with the SQLite
  // edition: the PostgreSQL script writes N'Edinburgh ' literals, which are
  // char(n) and lose trailing blanks when cast to varchar.
  static std::string Normalized(const Table& table, std::vector<Row> rows, bool trim = false) {
    for (Row& row : rows)
      for (std::size_t c = 0; c < row.size() && c < table.numeric.size(); ++c) {
        if (table.numeric[c] && row[c]) row[c] = Decimal(*row[c]);
        if (trim && row[c]) row[c]->erase(row[c]->find_last_not_of(' ') + 1);
      }
    return Lines(rows);
  }

  // Every row of a table, in key order; the keys are integers in Chinook,
  // so both engines order them alike.
  std::string ServerTable(const Table& table) {
    std::string columns, key;
    for (const std::string& column : table.columns)
      columns += (columns.empty() ? "" : ", ") + QuoteIdent(column) + "::text";
    // Qualified: a bare name would order by the output column, the text.
    for (const std::string& column : table.key)
      key += (key.empty() ? "" : ", ") + std::string("t.") + QuoteIdent(column);
    return Normalized(table,
                      server().Rows("SELECT " + columns + " FROM " + QuoteIdent(table.name) + " AS t ORDER BY " + key));
  }
  static std::string ClientTable(Db& client, const Table& table, bool trim = false) {
    std::string columns, key;
    for (const std::string& column : table.columns)
      columns += (columns.empty() ? "" : ", ") + QuoteIdent(column);
    for (const std::string& column : table.key)
      key += (key.empty() ? "" : ", ") + QuoteIdent(column);
    return Normalized(
        table, SqliteRows(client, "SELECT " + columns + " FROM " + QuoteIdent(table.name) + " ORDER BY " + key), trim);
  }
  // The same table in the SQLite edition of Chinook (CamelCase names).
  static std::string OriginalTable(Db& original, const Table& table) {
    std::string name;
    for (const Row& row : SqliteRows(original, "SELECT name FROM sqlite_schema WHERE type = 'table'"))
      if (Folded(*row[0]) == Folded(table.name)) name = *row[0];
    if (name.empty()) return "no table " + table.name;
    std::map<std::string, std::string> names;
    for (const Row& row : SqliteRows(original, "SELECT name FROM pragma_table_info(" + QuoteIdent(name) + ")"))
      names[Folded(*row[0])] = *row[0];
    std::string columns, key;
    for (const std::string& column : table.columns)
      columns +=
          (columns.empty() ? "" : ", ") + QuoteIdent(names.count(Folded(column)) ? names[Folded(column)] : column);
    for (const std::string& column : table.key)
      key += (key.empty() ? "" : ", ") + QuoteIdent(names.count(Folded(column)) ? names[Folded(column)] : column);
    return Normalized(
        table, SqliteRows(original, "SELECT " + columns + " FROM " + QuoteIdent(name) + " ORDER BY " + key), true);
  }

  void ExpectSameTables(Db& client, const std::vector<Table>& tables) {
    for (const Table& table : tables) {
      EXPECT_EQ(server().Text("SELECT count(*) FROM " + QuoteIdent(table.name)),
                client.Text("SELECT count(*) FROM " + QuoteIdent(table.name)))
          << table.name;
      std::string expected = ServerTable(table), actual = ClientTable(client, table);
      EXPECT_PRED_FORMAT2(SameRows, expected, actual) << "table " << table.name << ", server vs client";
    }
  }
};

// 11. Chinook: clone, compare every table with the server (and with the
// SQLite edition of the same data), then write on the client and sync back.
TEST_F(ChinookTest, CloneEditAndSyncBack) {
  LoadChinook();
  if (HasFatalFailure()) return;
  ASSERT_EQ(server().Text("SELECT count(*) FROM (SELECT syncline.track(format('%I', table_name)) "
                          "FROM information_schema.tables WHERE table_schema = 'public' "
                          "AND table_type = 'BASE TABLE') t"),
            "11");
  const std::vector<Table> tables = Tables();
  ASSERT_EQ(tables.size(), 11u);

  const std::string file = ClientFile("chinook.db");
  ProcessResult result = Cli("clone", file);
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  auto client = OpenClient(file);
  EXPECT_EQ(client->Text("PRAGMA foreign_keys"), "1");
  EXPECT_EQ(client->Text("PRAGMA foreign_key_check"), "");
  ExpectSameTables(*client, tables);
  EXPECT_EQ(client->Text("SELECT count(*) FROM playlist_track"), "8715");
  EXPECT_EQ(client->Text("SELECT count(*) FROM track"), "3503");
  EXPECT_EQ(client->Text("SELECT invoice_date FROM invoice WHERE invoice_id = 1"), "2021-01-01 00:00:00");

  // The SQLite edition of the same data holds the same rows.
  if (std::filesystem::exists(DataDir() + "/Chinook_Sqlite.sql")) {
    Db original(ClientFile("original.db"), /*load_extension=*/false);
    ASSERT_EQ(original.TryExec(ReadWholeFile(DataDir() + "/Chinook_Sqlite.sql")), "");
    for (const Table& table : tables) {
      std::string expected = OriginalTable(original, table), actual = ClientTable(*client, table, true);
      EXPECT_PRED_FORMAT2(SameRows, expected, actual) << "table " << table.name << ", SQLite edition vs client";
    }
  }

  // A new invoice with two lines, its total set after the lines (the
  // parent's version comes after its children's), and a customer's edit.
  const std::string invoice = client->Text("SELECT max(invoice_id) + 1 FROM invoice");
  const long long line = client->Int("SELECT max(invoice_line_id) + 1 FROM invoice_line");
  client->Exec("INSERT INTO invoice VALUES (" + invoice +
               ", 1, '2025-06-01 10:30:00', 'Rua Dr. Falcão Filho, 155', 'São José dos Campos', 'SP', 'Brazil', "
               "'12227-000', 0)");
  client->Exec("INSERT INTO invoice_line VALUES (" + std::to_string(line) + ", " + invoice + ", 1, 0.99, 1), (" +
               std::to_string(line + 1) + ", " + invoice + ", 2, 0.99, 1)");
  Sleep(5);
  client->Exec("UPDATE invoice SET total = 1.98 WHERE invoice_id = " + invoice);
  client->Exec("UPDATE customer SET company = 'Syncline Ltda.', phone = '+55 (12) 0000-0000' WHERE customer_id = 1");
  result = Cli("sync", file);
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(
      server().Text("SELECT total::text || ' ' || invoice_date::text FROM invoice WHERE invoice_id = $1", {invoice}),
      "1.98 2025-06-01 10:30:00");
  EXPECT_EQ(server().Text("SELECT string_agg(track_id || ':' || unit_price, ',' ORDER BY invoice_line_id) "
                          "FROM invoice_line WHERE invoice_id = $1",
                          {invoice}),
            "1:0.99,2:0.99");
  EXPECT_EQ(server().Text("SELECT company || ' ' || phone FROM customer WHERE customer_id = 1"),
            "Syncline Ltda. +55 (12) 0000-0000");
  ExpectSameTables(*client, tables);

  // The same again pushed one change a page: the first pages hold only the
  // lines, whose invoice is in a later page.
  const std::string invoice2 = std::to_string(std::stoll(invoice) + 1);
  client->Exec("INSERT INTO invoice VALUES (" + invoice2 +
               ", 2, '2025-06-02 00:00:00', NULL, NULL, NULL, NULL, NULL, 0)");
  client->Exec("INSERT INTO invoice_line VALUES (" + std::to_string(line + 2) + ", " + invoice2 + ", 3, 0.99, 2), (" +
               std::to_string(line + 3) + ", " + invoice2 + ", 4, 0.99, 1)");
  Sleep(5);
  client->Exec("UPDATE invoice SET total = 2.97 WHERE invoice_id = " + invoice2);
  result = Cli("sync", file, {"--page", "1"});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(server().Text("SELECT total::text FROM invoice WHERE invoice_id = $1", {invoice2}), "2.97");
  EXPECT_EQ(server().Text("SELECT count(*) FROM invoice_line WHERE invoice_id = $1", {invoice2}), "2");
  ExpectSameTables(*client, tables);

  result = Cli("sync", file);
  EXPECT_EQ(result.out, "synced: pushed 0, pulled 0\n") << result.Describe();
}

}  // namespace
}  // namespace syncline::test
