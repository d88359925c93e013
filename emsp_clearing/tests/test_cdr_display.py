from datetime import datetime

from odoo.tests import tagged

from .common import ClearingCase, make_ocpi_cdr


@tagged("post_install", "-at_install")
class TestCdrDisplay(ClearingCase):
    """The breakdown and the applied tariff read in local time, units and 4 decimals."""

    def test_breakdown_and_tariff_rows(self):
        self._contract(lines=[
            {"dimension": "ENERGY", "price": 0.2, "step_size": 100},
            {"dimension": "TIME", "price": 0.06, "time_unit": "minute", "step_size": 60},
            {"dimension": "PARKING_TIME", "price": 6.0, "min_duration": 180,
             "start_time": 22.0, "end_time": 7.0},
        ])
        # 16:06 UTC = 17:06 Paris (winter); 11 minutes of charging: 0.183333... h billed
        start = datetime(2026, 11, 16, 16, 6)
        data = make_ocpi_cdr("DISPLAY-1", start, [
            (0, {"ENERGY": 16.856, "TIME": 11 / 60}),
        ], end=datetime(2026, 11, 16, 16, 17))
        cdr = self.env["clearing.cdr"].ingest_ocpi(data)
        rows = cdr._breakdown_rows()
        self.assertEqual([r["dimension"] for r in rows], ["Energy", "Charging time"])
        energy, time = rows
        self.assertEqual(energy["start"], "2026-11-16 17:06:00")
        self.assertEqual(energy["end"], "2026-11-16 17:17:00")
        self.assertEqual(energy["volume"], "16.856 kWh")
        self.assertEqual(energy["billed"], "16.90 kWh")  # step 100 Wh
        self.assertEqual(energy["unit_price"], "0.20 €/kWh")
        self.assertEqual(energy["excl_vat"], "3.38")
        self.assertEqual(energy["vat"], "20.00 %")
        self.assertEqual(time["volume"], "0:11:00")
        self.assertEqual(time["unit_price"], "3.60 €/h")
        self.assertEqual(time["excl_vat"], "0.66")  # 0.18333... h x 3.60, not 0.6599999...
        tariff = {r["dimension"]: r for r in cdr._tariff_rows()}
        self.assertEqual(tariff["Energy"]["step"], "100 Wh")
        self.assertEqual(tariff["Charging time"]["price"], "3.60 €/h")
        self.assertEqual(tariff["Parking time"]["when"], "22:00–07:00, after 3:00:00")
        self.assertEqual(tariff["Energy"]["when"], "always")
        self.assertIn("17:06:00", cdr.price_breakdown_html)
        self.assertNotIn("999999", cdr.price_breakdown_html)
