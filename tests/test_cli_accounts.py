"""`quizengine users add|import` and `export-grades` through click's runner."""

from __future__ import annotations

import csv
import io

from quizengine.cli import main


def test_users_add_with_password_stdin_and_generated(runner, env):
    r = runner.invoke(main, ["users", "add", "ann", "--role", "student", "--password-stdin", "--full-name", "Ann"],
                      input="password-123\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["users", "add", "tom", "--role", "instructor"])
    assert r.exit_code == 0 and "with password" in r.stdout
    r = runner.invoke(main, ["users", "add", "ann", "--role", "student"])
    assert r.exit_code == 2 and "exists already" in r.stderr
    r = runner.invoke(main, ["users", "add", "x", "--role", "student", "--password-stdin"], input="short\n")
    assert r.exit_code == 2 and "at least 8" in r.stderr


def test_roster_import_all_or_nothing(runner, env):
    bad = env / "bad.csv"
    bad.write_text("username,full_name,student_id,email\nann,Ann,1,a@x\n bad name ,B,2,b@x\nann,Ann2,3,c@x\n")
    r = runner.invoke(main, ["users", "import", str(bad), "--passwords-out", str(env / "pw.csv")])
    assert r.exit_code == 2
    assert "line 3: username 'bad name': use letters, digits" in r.stderr  # cells are trimmed first
    assert "line 4: username 'ann' repeats line 2" in r.stderr
    good = env / "roster.csv"
    good.write_text("username,full_name,student_id,email,password\nann,Ann A,S1,a@x.org,\nbob,Bob B,S2,b@x.org,bob-password\n")
    r = runner.invoke(main, ["users", "import", str(good)])
    assert r.exit_code == 2 and "--passwords-out" in r.stderr  # nothing imported
    r = runner.invoke(main, ["users", "import", str(good), "--passwords-out", str(env / "pw.csv")])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO((env / "pw.csv").read_text())))
    assert [row["username"] for row in rows] == ["ann"] and len(rows[0]["password"]) >= 12
    r = runner.invoke(main, ["users", "import", str(good), "--passwords-out", str(env / "pw2.csv")])
    assert r.exit_code == 2 and "line 2: username 'ann' exists already" in r.stderr


def test_roster_header_errors(runner, env):
    f = env / "r.csv"
    f.write_text("user,name\nann,Ann\n")
    r = runner.invoke(main, ["users", "import", str(f), "--passwords-out", str(env / "o.csv")])
    assert r.exit_code == 2 and "line 1" in r.stderr and "missing: username" in r.stderr


def test_export_grades_cli(runner, env, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("QUIZENGINE_BANKS", str(Path(__file__).resolve().parents[1] / "banks"))
    assert runner.invoke(main, ["load-banks"]).exit_code == 0
    runner.invoke(main, ["users", "add", "bob", "--role", "student", "--full-name", "+Bob"])
    r = runner.invoke(main, ["export-grades", "module-04-prep"])
    assert r.exit_code == 0
    rows = list(csv.reader(io.StringIO(r.stdout)))
    # the contract's columns in their order (CONTRACT section 5), then the accommodation column
    assert rows[0] == ["username", "full_name", "student_id", "attempts", "score", "max_score", "percent", "submitted_at",
                       "accommodation"]
    assert rows[1][:2] == ["bob", "'+Bob"] and rows[1][3] == "0" and rows[1][4] == ""
    out = env / "g.csv"
    assert runner.invoke(main, ["export-grades", "module-04-prep", "-o", str(out), "--format", "canvas"]).exit_code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "Student,ID,SIS User ID,SIS Login ID,Section,Module 04 preparation quiz (module-04-prep)"
    assert lines[1].startswith("Points Possible")
    r = runner.invoke(main, ["export-grades", "nope"])
    assert r.exit_code == 2 and "no quiz" in r.stderr
