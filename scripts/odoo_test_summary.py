#!/usr/bin/env python3
"""Read an Odoo test-run log and say how many tests passed and failed.

Odoo does not always exit non-zero when a test fails, so the log is the source of truth:
- `odoo.tests.stats: <module>: N tests ...` gives how many tests ran per module;
- `... ERROR ... : FAIL: Class.test` / `: ERROR: Class.test` name the failing tests;
- any other ERROR or CRITICAL line (a traceback while installing, a broken view...) fails the run,
  and so does a WARNING that names the module (missing access rules, bad field definitions...).

Usage: odoo_test_summary.py LOGFILE MODULE ODOO_EXIT_CODE
Prints a report and, last, `odoo: N passed, N failed`; exits 0 only if nothing failed.
"""
import re
import sys

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) \S+ (?P<logger>[\w.]+): (?P<msg>.*)$"
)
TEST_FAIL = re.compile(r"^(FAIL|ERROR): (?P<test>\S+)")
SUMMARY = re.compile(
    r"at least one error occurred in a test|^At least one test failed"
    r"|^\d+ failed, \d+ error\(s\) of \d+ tests"
)


def summarise(lines, module, exit_code):
    tests_run = 0
    failed_tests = []
    other_errors = []
    warnings = []
    for raw in lines:
        m = LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        level, logger, msg = m["level"], m["logger"], m["msg"]
        if logger == "odoo.tests.stats":
            s = re.match(r"(\S+): (\d+) tests", msg)
            if s and s[1] == module:
                tests_run += int(s[2])
            continue
        if level in ("ERROR", "CRITICAL"):
            t = TEST_FAIL.match(msg)
            if t:
                failed_tests.append(f"{logger}: {msg}")
            elif SUMMARY.search(msg):
                continue  # Odoo's own summaries of failures already counted one by one
            else:
                other_errors.append(f"{level} {logger}: {msg}")
        elif level == "WARNING" and (module in raw or logger.startswith(f"odoo.addons.{module}")):
            warnings.append(f"WARNING {logger}: {msg}")
    failed = len(failed_tests) + len(other_errors) + len(warnings)
    if tests_run == 0:
        other_errors.append("no test of the module ran (did the module install?)")
        failed += 1
    if exit_code != 0 and not (failed_tests or other_errors or warnings):
        other_errors.append(f"Odoo exited with status {exit_code}")
        failed += 1
    passed = max(tests_run - len(failed_tests), 0)
    return passed, failed, failed_tests, other_errors, warnings


def main(argv):
    path, module, exit_code = argv[1], argv[2], int(argv[3])
    with open(path, encoding="utf-8", errors="replace") as fh:
        passed, failed, failed_tests, other_errors, warnings = summarise(fh, module, exit_code)
    for title, items in (("failing tests", failed_tests), ("errors in the log", other_errors),
                         ("warnings about the module", warnings)):
        if items:
            print(f"odoo: {title}:")
            for item in items:
                print(f"  {item[:500]}")
    print(f"odoo: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
