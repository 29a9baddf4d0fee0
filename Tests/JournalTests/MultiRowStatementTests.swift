import Foundation
@testable import Journal
import Testing

/// `SQLiteConnection.runRows`: many rows a statement, bound straight from the caller's values.
@Suite struct MultiRowStatementTests {
    static func database(_ temp: TemporaryJournal) throws -> SQLiteConnection {
        try FileManager.default.createDirectory(atPath: (temp.path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        return try SQLiteConnection(path: temp.path, readOnly: false)
    }

    @Test func rowsAreBoundInOrderAcrossStatementsWithEmptyTextKeptApartFromNull() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let connection = try Self.database(temp)
        try connection.execute("CREATE TABLE t (n INTEGER NOT NULL, s TEXT, z TEXT)")
        // Texts are copied into 64 KiB chunks kept between statements: some statements need more than one chunk,
        // one text more than a chunk.
        let texts = ["", "é—漢字", String(repeating: "x", count: 700), "short", String(repeating: "y", count: 40_000),
                     String(repeating: "z", count: 70_000)]
        // 10 rows 4 a statement, twice: statements of 4, 4 and 2 rows, each prepared once.
        for _ in 0..<2 {
            try connection.runRows("INSERT INTO t (n, s, z)", count: 10, columns: 3, "", perStatement: 4) { index, binder in
                try binder.bind(Int64(index))
                try binder.bind(String(texts[index % texts.count].reversed()))
                if index % 2 == 0 { try binder.bindNull() } else { try binder.bind("") }
            }
        }
        let rows = try connection.query("SELECT n, s, z IS NULL, typeof(s) FROM t ORDER BY rowid") {
            "\($0.int(0))|\($0.text(1))|\($0.int(2))|\($0.text(3))"
        }
        let expected = (0..<10).map { "\($0)|\(String(texts[$0 % texts.count].reversed()))|\($0 % 2 == 0 ? 1 : 0)|text" }
        #expect(rows == expected + expected)
    }

    @Test func aRowBindingTooFewValuesIsRefusedNamingTheStatement() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let connection = try Self.database(temp)
        try connection.execute("CREATE TABLE t (n INTEGER, s TEXT)")
        let error = #expect(throws: SQLiteError.self) {
            try connection.runRows("INSERT INTO t (n, s)", count: 2, columns: 2, "") { index, binder in
                try binder.bind(Int64(index))
            }
        }
        #expect(error?.description.contains("2 values bound for 4") == true, "\(String(describing: error))")
        #expect(try connection.scalar("SELECT count(*) FROM t") == 0)
    }
}
