"""The Odoo tier is judged from Odoo's log: check the reader on real-shaped log lines."""
import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "odoo_test_summary", os.path.join(HERE, "..", "scripts", "odoo_test_summary.py")
)
summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summary)

PREFIX = "2026-11-24 20:15:56,044 19529 {level} emsp_test_1 {logger}: {msg}\n"


def line(level, logger, msg):
    return PREFIX.format(level=level, logger=logger, msg=msg)


STATS = line("INFO", "odoo.tests.stats", "emsp_clearing: 66 tests 2.05s 2020 queries ")
OTHER_STATS = line("INFO", "odoo.tests.stats", "base: 3 tests 0.05s 20 queries ")


def test_all_green():
    passed, failed, *_ = summary.summarise([OTHER_STATS, STATS], "emsp_clearing", 0)
    assert (passed, failed) == (66, 0)


def test_failures_and_errors_counted_once_each():
    log = [
        line("ERROR", "odoo.addons.emsp_clearing.tests.test_x", "ERROR: TestX.test_errors"),
        line("ERROR", "odoo.addons.emsp_clearing.tests.test_x", "FAIL: TestX.test_fails"),
        STATS,
        line("ERROR", "odoo.tests.result",
             "1 failed, 1 error(s) of 52 tests when loading database 'emsp_test_1' "),
        line("ERROR", "odoo.modules.loading", "At least one test failed when loading the modules."),
    ]
    passed, failed, failed_tests, other_errors, warnings = summary.summarise(log, "emsp_clearing", 1)
    assert (passed, failed) == (64, 2)
    assert len(failed_tests) == 2 and not other_errors and not warnings


def test_error_outside_tests_fails_the_run():
    log = [STATS, line("ERROR", "odoo.sql_db", "bad query: SELECT 1/0")]
    passed, failed, _, other_errors, _ = summary.summarise(log, "emsp_clearing", 0)
    assert (passed, failed) == (66, 1)
    assert "bad query" in other_errors[0]


def test_warning_about_module_fails_the_run_other_warnings_do_not():
    log = [
        STATS,
        line("WARNING", "odoo.modules.loading",
             "The models ['clearing.x'] have no access rules in module emsp_clearing"),
        line("WARNING", "odoo.addons.base.models.res_lang", "unrelated warning"),
    ]
    passed, failed, _, _, warnings = summary.summarise(log, "emsp_clearing", 0)
    assert failed == 1 and len(warnings) == 1


def test_no_test_ran_is_a_failure():
    passed, failed, *_ = summary.summarise([OTHER_STATS], "emsp_clearing", 0)
    assert (passed, failed) == (0, 1)


def test_non_zero_exit_without_log_evidence_is_a_failure():
    passed, failed, *_ = summary.summarise([STATS], "emsp_clearing", 255)
    assert failed == 1
