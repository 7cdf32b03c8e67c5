//! A table of tricky scripts for both engines: each case lists the statements the engine's own client
//! would send.

use super::{Dialect, SplitError, split};

fn sqls(script: &str, dialect: Dialect) -> Vec<String> {
    split(script, dialect).unwrap().into_iter().map(|s| s.sql).collect()
}

#[test]
fn shared_cases() {
    let cases: &[(&str, &[&str])] = &[
        ("SELECT 1; SELECT 2;", &["SELECT 1", "SELECT 2"]),
        ("SELECT 1", &["SELECT 1"]),
        ("  ;;  ; ", &[]),
        ("INSERT INTO t VALUES ('a;b');", &["INSERT INTO t VALUES ('a;b')"]),
        ("INSERT INTO t VALUES ('it''s; fine');", &["INSERT INTO t VALUES ('it''s; fine')"]),
        ("-- a comment; with semicolon\nSELECT 1;", &["-- a comment; with semicolon\nSELECT 1"]),
        ("/* block; comment */ SELECT 1; /* trailing */", &["/* block; comment */ SELECT 1"]),
        ("-- only a comment\n", &[]),
        ("SELECT 'é;ü'; SELECT 'ok'", &["SELECT 'é;ü'", "SELECT 'ok'"]),
    ];
    for dialect in [Dialect::MySql, Dialect::Postgres] {
        for (script, want) in cases {
            assert_eq!(sqls(script, dialect), *want, "{dialect:?}: {script:?}");
        }
    }
}

#[test]
fn mysql_cases() {
    let cases: &[(&str, &[&str])] = &[
        (r"INSERT INTO t VALUES ('a\';b'); SELECT 2", &[r"INSERT INTO t VALUES ('a\';b')", "SELECT 2"]),
        (r#"INSERT INTO t VALUES ("x;\"y"); SELECT 2"#, &[r#"INSERT INTO t VALUES ("x;\"y")"#, "SELECT 2"]),
        ("CREATE TABLE `we;ird``name` (id INT); SELECT 2", &["CREATE TABLE `we;ird``name` (id INT)", "SELECT 2"]),
        ("# hash comment; here\nSELECT 1;", &["# hash comment; here\nSELECT 1"]),
        ("SELECT 5--3; SELECT 2", &["SELECT 5--3", "SELECT 2"]),
        ("/*!40101 SET NAMES utf8mb4 */; SELECT 1", &["/*!40101 SET NAMES utf8mb4 */", "SELECT 1"]),
        (
            "DELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND //\nDELIMITER ;\nSELECT 3;",
            &["CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND", "SELECT 3"],
        ),
        (
            "delimiter $$\nCREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 'x;y'; END$$\ndelimiter ;\n",
            &["CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 'x;y'; END"],
        ),
        ("SELECT 1;\n  DELIMITER ;;\nSELECT 2;;\nDELIMITER ;\n", &["SELECT 1", "SELECT 2"]),
        ("SELECT 'DELIMITER //'; SELECT 2", &["SELECT 'DELIMITER //'", "SELECT 2"]),
    ];
    for (script, want) in cases {
        assert_eq!(sqls(script, Dialect::MySql), *want, "{script:?}");
    }
}

#[test]
fn postgres_cases() {
    let cases: &[(&str, &[&str])] = &[
        (
            "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql; SELECT 2",
            &["CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql", "SELECT 2"],
        ),
        (
            "DO $body$ BEGIN PERFORM 'a $$ ; b'; END $body$; SELECT 2",
            &["DO $body$ BEGIN PERFORM 'a $$ ; b'; END $body$", "SELECT 2"],
        ),
        ("PREPARE q AS SELECT $1; SELECT 2", &["PREPARE q AS SELECT $1", "SELECT 2"]),
        (r#"CREATE TABLE "we;ird""t" (id int); SELECT 2"#, &[r#"CREATE TABLE "we;ird""t" (id int)"#, "SELECT 2"]),
        (r"SELECT 'back\'; SELECT 2", &[r"SELECT 'back\'", "SELECT 2"]),
        (r"SELECT E'it\'s;'; SELECT 2", &[r"SELECT E'it\'s;'", "SELECT 2"]),
        (
            "/* outer /* inner; */ still; */ SELECT 1; SELECT 2",
            &["/* outer /* inner; */ still; */ SELECT 1", "SELECT 2"],
        ),
        ("SELECT 1--comment; here\n; SELECT 2", &["SELECT 1--comment; here", "SELECT 2"]),
        ("SELECT `a;b`", &["SELECT `a", "b`"]),
    ];
    for (script, want) in cases {
        assert_eq!(sqls(script, Dialect::Postgres), *want, "{script:?}");
    }
}

#[test]
fn statements_know_their_line() {
    let got = split("SELECT 1;\n\n-- note\nSELECT\n 2;", Dialect::Postgres).unwrap();
    assert_eq!(got.iter().map(|s| s.line).collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn unterminated_tokens_are_errors_with_a_line() {
    for (script, dialect) in [
        ("SELECT 1;\nSELECT 'open", Dialect::MySql),
        ("SELECT `open", Dialect::MySql),
        ("SELECT 1; /* open", Dialect::Postgres),
        ("DO $x$ BEGIN END $y$", Dialect::Postgres),
        ("SELECT \"open", Dialect::Postgres),
    ] {
        assert!(matches!(split(script, dialect), Err(SplitError::Unterminated { .. })), "{script:?}");
    }
    assert_eq!(
        split("SELECT 1;\nSELECT 'x", Dialect::MySql),
        Err(SplitError::Unterminated { line: 2, what: "a quoted string" })
    );
    assert!(matches!(split("DELIMITER \n", Dialect::MySql), Err(SplitError::BadDelimiter { line: 1 })));
}
