"""Exactly once, for real: two transactions invoicing one period at the same time, and an
invoicing run killed (SIGKILL) in the middle.

A TransactionCase runs in one uncommitted transaction, which no other connection sees, and in
test mode ``registry.cursor()`` hands out that same transaction: neither can overlap with it.
These tests therefore commit their own small data set on separate connections of the test
database (``sql_db.db_connect``) and delete it again afterwards, whatever happens.
"""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import date, datetime

from odoo import SUPERUSER_ID, Command, api, sql_db
from odoo.tests import TransactionCase, tagged
from odoo.tools import config

PARTY = "ZXC"


@tagged("post_install", "-at_install")
class TestInvoiceConcurrency(TransactionCase):

    def _cursor(self):
        """A connection of its own. Its transaction is given the registry directly: the
        registry's lock is held while tests run, so ``Registry(dbname)``, which a new
        Environment calls otherwise, would wait for the end of the tests in a thread."""
        cr = sql_db.db_connect(self.env.cr.dbname).cursor()
        cr.transaction = api.Transaction(self.registry)
        return cr

    def _committed_periods(self, count=1):
        """Locked periods (vendor bills, so no bank or e-mail is involved) of a committed
        contract, one session each; returns their ids. Removed by a cleanup."""
        with self._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            cpo = env["res.partner"].create({
                "name": "Concurrency CPO", "is_company": True, "ocpi_country_code": "DE",
                "ocpi_party_id": PARTY, "ocpi_is_cpo": True})
            currency = env.company.currency_id
            contract = env["clearing.contract"].create({
                "name": "CONCURRENCY", "partner_id": cpo.id, "role": "emsp",
                "currency_id": currency.id, "date_start": "2020-01-01", "tz": "UTC",
                "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.5})],
            })
            periods = env["clearing.period"]
            for month in range(1, count + 1):
                period = env["clearing.period"].sudo().create(
                    env["clearing.period"]._period_vals(contract, date(2020, month, 15)))
                periods |= period
                end = datetime(2020, month, 15, 12)
                env["clearing.cdr"].create({
                    "ocpi_id": "CONC-%d" % month, "country_code": "DE", "party_id": PARTY,
                    "start_datetime": datetime(2020, month, 15, 11), "end_datetime": end,
                    "currency_id": currency.id, "company_id": env.company.id,
                    "contract_id": contract.id, "partner_id": cpo.id, "match_state": "matched",
                    "state": "priced", "period_id": period.id, "raw_json": {},
                    "amount_energy": 5.0, "amount_untaxed": 5.0, "amount_total": 5.0,
                    "energy_kwh": 10.0,
                    "price_breakdown": [{"category": "ENERGY", "dimension": "ENERGY",
                                         "unit_price": "0.5", "billed_volume": "10",
                                         "excl_vat": "5.0"}],
                })
            env.flush_all()
            cr.execute("UPDATE clearing_cdr SET locked = TRUE, state = 'locked'"
                       " WHERE period_id = ANY(%s)", [periods.ids])
            cr.execute("UPDATE clearing_period SET state = 'locked' WHERE id = ANY(%s)",
                       [periods.ids])
            cr.commit()
            ids = (cpo.id, contract.id, periods.ids)
        self.addCleanup(self._remove, *ids)
        return ids[2]

    def _remove(self, partner_id, contract_id, period_ids):
        with self._cursor() as cr:
            cr.execute("SELECT id FROM account_move WHERE clearing_period_id = ANY(%s)",
                       [period_ids])
            move_ids = [row[0] for row in cr.fetchall()]
            cr.execute("DELETE FROM clearing_cdr WHERE contract_id = %s", [contract_id])
            if move_ids:
                cr.execute("DELETE FROM mail_activity WHERE res_model = 'account.move'"
                           " AND res_id = ANY(%s)", [move_ids])
                cr.execute("DELETE FROM account_move_line WHERE move_id = ANY(%s)", [move_ids])
                cr.execute("DELETE FROM account_move WHERE id = ANY(%s)", [move_ids])
            cr.execute("DELETE FROM mail_message WHERE model = 'clearing.period'"
                       " AND res_id = ANY(%s)", [period_ids])
            cr.execute("DELETE FROM mail_activity WHERE res_model = 'clearing.period'"
                       " AND res_id = ANY(%s)", [period_ids])
            cr.execute("DELETE FROM clearing_period WHERE id = ANY(%s)", [period_ids])
            cr.execute("DELETE FROM clearing_price_line WHERE contract_id = %s", [contract_id])
            cr.execute("DELETE FROM mail_followers WHERE res_model = 'clearing.contract'"
                       " AND res_id = %s", [contract_id])
            cr.execute("DELETE FROM mail_message WHERE model = 'clearing.contract'"
                       " AND res_id = %s", [contract_id])
            cr.execute("DELETE FROM clearing_contract WHERE id = %s", [contract_id])
            cr.execute("DELETE FROM res_partner WHERE id = %s", [partner_id])
            cr.commit()
        self.env.invalidate_all()

    def _moves(self, period_ids):
        with self._cursor() as cr:
            cr.execute("""SELECT clearing_period_id, state, move_type, amount_untaxed
                            FROM account_move WHERE clearing_period_id = ANY(%s)
                           ORDER BY clearing_period_id""", [period_ids])
            return cr.fetchall()

    def _invoice_in_thread(self, period_id, barrier, results):
        try:
            with self._cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                barrier.wait(timeout=30)
                move = env["clearing.period"].browse(period_id)._invoice_period()
                cr.commit()
                results.append(bool(move))
        except Exception as error:  # reported by the main thread
            results.append(error)

    def test_two_runs_at_once_make_one_move(self):
        period_ids = self._committed_periods(3)
        for period_id in period_ids:
            barrier = threading.Barrier(2)
            results = []
            threads = [threading.Thread(target=self._invoice_in_thread,
                                        args=(period_id, barrier, results))
                       for _i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            self.assertEqual(sorted(results, key=str), [False, True], results)
        moves = self._moves(period_ids)
        self.assertEqual([row[0] for row in moves], period_ids)
        self.assertEqual({row[1:] for row in moves}, {("posted", "in_invoice", 5.0)})

    def test_a_run_skips_the_period_another_run_holds(self):
        [period_id] = self._committed_periods(1)
        with self._cursor() as holder:
            holder.execute("SELECT id FROM clearing_period WHERE id = %s FOR UPDATE",
                           [period_id])
            with self._cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                started = time.monotonic()
                self.assertFalse(env["clearing.period"].browse(period_id)._invoice_period())
                self.assertLess(time.monotonic() - started, 10)  # skipped, not waited for
                cr.commit()
            env = api.Environment(holder, SUPERUSER_ID, {})
            self.assertTrue(env["clearing.period"].browse(period_id)._invoice_period())
            holder.commit()
        with self._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertFalse(env["clearing.period"].browse(period_id)._invoice_period())
        self.assertEqual(len(self._moves([period_id])), 1)

    def test_killed_run_leaves_no_half_made_move(self):
        """An invoicing run killed with SIGKILL after posting the second period's bill but
        before its commit: the first period has its posted bill, the second none and is still
        locked; the next run completes it."""
        period_ids = self._committed_periods(3)
        marker = tempfile.NamedTemporaryFile(suffix=".marker", delete=False).name
        os.unlink(marker)
        script = textwrap.dedent(f"""
            import os, time
            from odoo.addons.emsp_clearing.models.clearing_period import ClearingPeriod
            send = ClearingPeriod._invoice_send
            calls = []
            def slow_send(self, move):
                calls.append(move.id)
                if len(calls) == 2:  # the second period: posted, not committed yet
                    open({marker!r}, "w").write(str(move.id))
                    time.sleep(600)
                return send(self, move)
            ClearingPeriod._invoice_send = slow_send
            env["clearing.period"].browse({period_ids!r})._invoice_run()
        """)
        command = [sys.executable, "-m", "odoo", "shell", "-d", self.env.cr.dbname,
                   "--no-http", "--max-cron-threads=0", "--log-level=warn"]
        for option, flag in (("db_host", "--db_host"), ("db_port", "--db_port"),
                             ("db_user", "--db_user"), ("db_password", "--db_password"),
                             ("addons_path", "--addons-path"), ("data_dir", "--data-dir")):
            if config.get(option):
                command.append("%s=%s" % (flag, config[option]))
        log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=log,
                                   text=True)
        try:
            # odoo shell runs a script it reads from a standard input that is not a terminal
            process.stdin.write(script)
            process.stdin.close()
            deadline = time.monotonic() + 240
            while not os.path.exists(marker) and process.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
            log.seek(0)
            self.assertTrue(os.path.exists(marker),
                            "the run never reached the second period: %s" % log.read()[-3000:])
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            for path in (marker, log.name):
                if os.path.exists(path):
                    os.unlink(path)
            log.close()
        moves = self._moves(period_ids)
        self.assertEqual(moves, [(period_ids[0], "posted", "in_invoice", 5.0)])
        with self._cursor() as cr:
            cr.execute("SELECT id, state FROM clearing_period WHERE id = ANY(%s) ORDER BY id",
                       [period_ids])
            self.assertEqual([row[1] for row in cr.fetchall()],
                             ["invoiced", "locked", "locked"])
            # the next run finishes the rest, the first period untouched
            env = api.Environment(cr, SUPERUSER_ID, {})
            for period in env["clearing.period"].browse(period_ids):
                period._invoice_period()
            cr.commit()
        moves = self._moves(period_ids)
        self.assertEqual([row[0] for row in moves], period_ids)
        self.assertEqual({row[1:] for row in moves}, {("posted", "in_invoice", 5.0)})
