"""Ground-truth benchmark data: one synthetic month of a Hong Kong SME's HKD bank account.

Stage: benchmarks, outside the feeds -> engine -> adapters flow. :func:`generate` builds a bank
statement, a ledger and the true matches between them; :func:`write` saves them as the canonical
CSV files ``recon match`` reads (``bank.csv``, ``ledger.csv``, and when the month has them
``fx.csv`` for ``--fx`` and ``stripe_payouts.csv`` for ``--processor``), the answer key
``truth.csv`` that :mod:`engine.evaluate` scores against, and ``labels.csv`` (side, id, case,
variant, delivered) for diagnosing misses. Everything is vectorized (numpy + polars) and
deterministic for a seed: about 1.3 s per 100,000 bank lines, files included (so ~15 s for 1M).

Two mixes (``--mix``): ``full`` (the default) has every case below; ``foundation`` is the
one-to-one month of the foundation issue and reproduces its files byte for byte for a seed (the
bundled ``benchmarks/sample/`` is ``--bank-lines 2000 --seed 7``, the full mix).

Case mix
--------
Each case is one function below that appends bank rows, ledger rows and truth groups. Shares are
of the rows of ``bank.csv`` (``invoice_receipt`` takes what the others leave); *ledger only*
cases add ledger rows on top, as a share of the bank rows. The full ledger is ~1.4x the bank.

=======================  ======  ==========  ===================================================
case                     full    foundation  what it is (truth match type)
=======================  ======  ==========  ===================================================
invoice_receipt          46.0%   55.0%       a customer pays one invoice (FPS CR, CHQ DEP, CR TRF,
                                             IBT CR, TT IN, AUTOPAY CR) 0-60 days after its date;
                                             the description carries a reference variant (below)
same_amount_receipts      4.0%    4.0%       3-6 customers pay invoices of the same round amount
                                             in the same week: name and reference decide
repeat_invoice            2.0%    2.0%       one customer pays two invoices of identical amount
multi_invoice_payment     4.0%      -        one credit pays 2-4 invoices of one customer, listed
                                             as ``INV 00123/00130``, ``INV-2026-00123 00130``,
                                             ``INV-2026-00123 INV-2026-00130`` or not at all
                                             (one_to_many)
instalment                3.0%      -        2-3 credits (``PART PYT``, ``DEPOSIT``...) pay one
                                             invoice, each with a reference; 40% of the invoices
                                             are not fully paid yet (many_to_one; ``open_amount``)
short_payment             3.0%      -        an invoice paid short: the remitting bank's charge
                                             (HKD 5-150; TT IN / CR TRF / IBT CR), a 1-2% discount
                                             or the cents dropped to whole tens (one_to_one)
fx_receipt                2.5%      -        TT IN from an overseas customer paying a USD / CNY /
                                             EUR invoice at the bank's rate, sometimes less a
                                             bank charge; ``USD1234.56`` shown on 60% (one_to_one)
stripe_payout             0.6%      -        ``CR TRF STRIPE PAYOUT po_...``: the net of a Stripe
                                             payout (card orders, refunds, fees) (payout)
processor_payout          0.6%      -        ``CR TRF SHOPIFY PAYOUT <STORE>`` / ``CR TRF PAYPAL
                                             TRANSFER <STORE>``: orders of consecutive days less
                                             a 0-5% fee, no processor data (payout)
cash_book_receipt         7.0%    8.0%       cash-book receipt (RCPT-) booked -3..+3 days from the
                                             bank date, no invoice number
supplier_bill             9.0%   11.0%       a supplier bill (BILL-) paid by TT OUT / AUTOPAY DR /
                                             IBT DR or by our cheque (``CHQ 100123``)
supplier_batch            1.5%      -        one debit pays 2-4 bills of one supplier, their
                                             numbers listed (``SI-01234 2510-0042``) or not
                                             (one_to_many)
cash_book_payment         4.0%    4.0%       utilities, rent, courier... (PAY-), -3..+3 days
payroll                   5.0%    8.0%       one AUTOPAY DR per employee (PRL-), month-end and
                                             mid-month runs
payroll_batch             0.3%      -        ``AUTOPAY DR PAYROLL BATCH PB2610-003`` (or
                                             ``PB2610003``) = the sum of 5-40 PRL- wage lines of
                                             one run day (one_to_many)
bank_charge               4.0%    4.0%       ``SERVICE FEE``, ``BANK CHARGES``...; 60% journalled
unknown_deposit           3.0%    3.5%       money in with no ledger item
duplicate_feed_line       0.5%    0.5%       a bank line delivered twice with the SAME id
open_invoice             10.0%   10.0%       *ledger only*: unpaid invoices of the last 60 days
open_fx_invoice           0.5%      -        *ledger only*: unpaid USD / CNY / EUR invoices
open_bill                 4.0%    4.0%       *ledger only*: unpaid supplier bills
sales_order               1.5%    1.5%       *ledger only*: sales orders (SO-), never cash
=======================  ======  ==========  ===================================================

At 10,000 bank lines the full month has ~8,500 one_to_one, ~580 one_to_many (400 with 2-4
invoices, 150 with 2-4 bills, 30 payroll batches of ~23 lines, up to 40), ~120 many_to_one and
120 payout groups (~11 orders each, up to ~35); web-shop orders paid out next month
(``unsettled_order``) and a few refunds not yet paid out (``open_credit_note``) stay open.

Reference variants in invoice receipts, short and FX payments (before the decidability fix-ups
below): ``full`` ``INV-2026-00123`` 35%, ``compact`` ``INV202600123`` 12%, ``spaced``
``inv 2026 00123`` 8%, ``number`` ``00123`` 10%, ``none`` 20%, ``transposed`` ``INV-2026-00132``
5% (may be another real invoice's number; truth still pairs the paid one), ``truncated``
``INV-2026-001`` 10%. TT IN / CR TRF / IBT CR descriptions and 30% of FPS ones are cut at 35
characters (label ``cut``), except FX, instalment, list and payout lines, which are never cut.

Payers are companies in English (``KAM WING TRADING CO LTD``, ``Golden Harbour Ltd``),
individuals in romanised Cantonese (``CHAN TAI MAN``, ``CHAN T M``) or either in Traditional
Chinese (``陳大文``, ``金港貿易有限公司``); overseas customers are ``NORTHWIND TRADING INC`` /
``Northwind Trading Inc.`` or ``SHENZHEN HUAXING ELECTRONICS CO LTD`` / ``深圳市华兴电子有限公司``.
The ledger names each party its own way, fixed per party.

Variation profiles and adversarial months
-----------------------------------------
The decidability fix-ups below encode our own assumptions about bank text. ``--profile NAME``
(:mod:`benchmarks.profiles`: ``name_forms``, ``reference_degradation``, ``nameless``,
``amount_repetition``, ``id_numbers``, ``script_mix``, ``ledger_style``, ``all`` to tune on,
``holdout`` held out) varies the month the way real months differ from it, keeps the truth exact
and labels every changed line; ``--open-items-ratio`` grows the ledger. ``--adversarial
no_true_pair`` (:mod:`benchmarks.adversarial`) writes a month in which nothing matches. Without
these options the output is exactly as before.

Files
-----
``truth.csv``: ``group_id, match_type, bank_ids, ledger_ids`` (ids ';'-joined), and for the full
mix ``adjustments`` and ``open_amount``. ``adjustments`` is a JSON list of the expected adjustment
lines in the bank currency, ``[{"cause":"processor_fee","amount":"-233.32"}]`` (``[]`` for none),
causes in :data:`ADJUSTMENT_CAUSES` order (``processor_fee``, ``fx_difference``, ``bank_charge``,
``short_payment``; an engine's ``write_off`` / ``discount`` is the same as ``short_payment``).
``open_amount`` is what stays open on the ledger item after a partial payment (its currency),
empty otherwise. Every group balances: bank total = ledger total converted + adjustments -
open_amount.

``fx.csv``: ``date, base, quote, rate`` (units of quote per one base, 4 decimals:
``2026-10-05,USD,HKD,7.7812``) for USD, CNY and EUR from 75 days before the month; weekends and
~10% of weekdays have no row, the nearest earlier rate applies. A foreign amount converts as
``amount x rate`` rounded half away from zero to the cent (the test suite re-checks this).

``stripe_payouts.csv``: Stripe's itemized payout reconciliation report columns
(:data:`STRIPE_COLUMNS`): ``automatic_payout_id`` (``po_1...``), ``automatic_payout_effective_at``
(the payout date, ``YYYY-MM-DD 00:00:00``), ``balance_transaction_id`` (``txn_3...``),
``created_utc`` (HKT - 8 h, so often the day before the order date), ``available_on_utc``,
``currency`` (``hkd``), ``gross``, ``fee``, ``net`` (``gross - fee = net`` on every row),
``reporting_category`` (``charge``: fee 3.4% + HKD 2.35, 4.4% for 20% international cards;
``refund``: negative, fee 0; ``fee``: Radar / billing, negative, fee 0), ``source_id``
(``ch_3...`` / ``re_3...``), ``customer_facing_amount``, ``description`` (``Order SO-2026-00123``,
``Web shop checkout``, ``Refund for order SO-2026-00123``, ``Radar for Fraud Teams``...) and
``payment_metadata[order_id]`` (the ledger order id; empty on 10% of charges, whose description
then names the order).

Decidability
------------
A perfect matcher can score 100%; the test suite re-derives each rule with brute force.

* One-to-one lines (the foundation rule): a line whose reference does not identify its item
  (``none``, ``transposed``, ``truncated``, ``cut``, employee number hidden) shows the payer in
  the ledger's script (never initials only) and no other ledger item of the same type, party and
  amount exists, except that one such line per (party, amount) may be left to elimination when
  all its twins are paid with an identifying reference. Otherwise the line gets a full reference
  at the front. Cash-book receipts and payments are unique per (party, amount), bank charges per
  (date, amount). An exact single item beats a combination or an approximate match.
* Lines without references for several items, and short / FX payments without an identifying
  reference: the payer is in the ledger's script, and among the party's items of the same type
  dated 0-60 days before the line that no referenced line settles (elimination again), at most
  MAX_SUBSET_CANDIDATES (20) remain; of these exactly one explanation fits: one subset of 1-4
  items summing exactly to the line (lists), or exactly one item with ``item - tolerance <= line <
  item`` and no exact subset (short / FX). Tolerance: max(HKD 150, 2%) for an HKD invoice; 1% +
  HKD 250 of the converted amount for a foreign one (the bank's spread is 0.1-0.4% USD, 0.2-0.6%
  CNY, 0.3-0.9% EUR; charges HKD 50-200). Otherwise the line lists its numbers / shows the full
  reference.
* Instalments always carry an identifying reference to their invoice.
* Payroll batches: the ledger lines name the batch (``Wages Oct 2026 - batch PB2610-003``),
  except that a batch alone on its run day may not: it is then all the payroll booked that day.
  Batches never run on the month-end or mid-month payroll days; paid on the run day or the next.
* Stripe payouts: the report links charges and refunds to ledger orders and credit notes (by the
  order id; a credit note's ``reference`` is its order's id); 70% of credits print the ``po_`` id,
  the others have a net amount no other payout has within 3 days.
* Payouts without processor data: the orders of one store and gateway (ledger description
  ``Jade Tea online order (Shopify Payments)``, ids ``#1001`` for the first store, ``#JT1001``...)
  are settled by its payouts in consecutive blocks, in date order: a block starts at the first
  order after the previous payout's block (the first at the gateway's first order in the ledger)
  and ends on a day before the bank date. Exactly one such block fits ``gross x 95% <= credit <=
  gross``; the fee is set (within 0-5%) to make it so. Shopify Payments pays each business day
  the orders of the days whose 3rd business day it is; PayPal sweeps every 3-5 business days the
  orders since the last sweep, arriving the next business day; per-order fees 3.3% / 3.4% + HKD
  2.35 (orders HKD 200-20,000), so the fee is 3.3-4.6% before any fix-up.

What the matcher can rely on besides: amounts are exact integers of minor units on both sides;
invoice / bill dates are 0-60 days before the bank date (instalments: the last line within 60
days); cash-book receipts, payments and journals are within 3 days; payroll is paid on the run
date or the next day; Stripe payouts arrive on ``automatic_payout_effective_at`` or the next
day; order dates are HKT dates. Floats only draw random magnitudes before they are rounded to
whole cents once.
"""

from __future__ import annotations

import argparse
import calendar
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from models.money import currency_exponent, format_minor_expr
from models.schema import ID_SEPARATOR

BANK_COLUMNS = ["id", "date", "amount", "currency", "description", "counterparty", "reference", "account"]
LEDGER_COLUMNS = [*BANK_COLUMNS, "type", "due_date"]
TRUTH_COLUMNS = ["group_id", "match_type", "bank_ids", "ledger_ids"]
LABEL_COLUMNS = ["side", "id", "case", "variant", "delivered"]

DEFAULT_START = date(2026, 10, 1)
DEFAULT_BANK_ACCOUNT = "004-512345-001"

#: the one-to-one month of the foundation issue: share of bank rows per case (bank cases) or
#: extra ledger rows (ledger-only cases); ``--mix foundation`` reproduces its files byte for byte
FOUNDATION_MIX: dict[str, float] = {
    "invoice_receipt": 0.55,
    "same_amount_receipts": 0.04,
    "repeat_invoice": 0.02,
    "cash_book_receipt": 0.08,
    "supplier_bill": 0.11,
    "cash_book_payment": 0.04,
    "payroll": 0.08,
    "bank_charge": 0.04,
    "unknown_deposit": 0.035,
    "duplicate_feed_line": 0.005,
    "open_invoice": 0.10,
    "open_bill": 0.04,
    "sales_order": 0.015,
}
#: the full month: the foundation's cases plus every compound case (shares of bank rows, as above;
#: ``invoice_receipt`` takes whatever the others leave)
FULL_MIX: dict[str, float] = {
    "invoice_receipt": 0.46,
    "same_amount_receipts": 0.04,
    "repeat_invoice": 0.02,
    "multi_invoice_payment": 0.04,
    "instalment": 0.03,
    "short_payment": 0.03,
    "fx_receipt": 0.025,
    "stripe_payout": 0.006,
    "processor_payout": 0.006,
    "cash_book_receipt": 0.07,
    "supplier_bill": 0.09,
    "supplier_batch": 0.015,
    "cash_book_payment": 0.04,
    "payroll": 0.05,
    "payroll_batch": 0.003,
    "bank_charge": 0.04,
    "unknown_deposit": 0.03,
    "duplicate_feed_line": 0.005,
    "open_invoice": 0.10,
    "open_fx_invoice": 0.005,
    "open_bill": 0.04,
    "sales_order": 0.015,
}
MIXES: dict[str, dict[str, float]] = {"foundation": FOUNDATION_MIX, "full": FULL_MIX}
DEFAULT_MIX = "full"
#: the default mix (kept under its old name)
CASE_MIX = MIXES[DEFAULT_MIX]
LEDGER_ONLY_CASES = ("open_invoice", "open_bill", "sales_order", "open_fx_invoice")
#: cases whose truth groups are not one_to_one
COMPOUND_CASES = ("multi_invoice_payment", "supplier_batch", "payroll_batch", "instalment",
                  "stripe_payout", "processor_payout")
#: adjustment causes in truth.csv, in the order they are listed
ADJUSTMENT_CAUSES = ("processor_fee", "fx_difference", "bank_charge", "short_payment")
TRUTH_EXTRA_COLUMNS = ["adjustments", "open_amount"]

INVOICE_REF_VARIANTS: dict[str, float] = {
    "full": 0.35, "compact": 0.12, "spaced": 0.08, "number": 0.10,
    "none": 0.20, "transposed": 0.05, "truncated": 0.10,
}
#: reference variants that identify the ledger item on their own
DECISIVE_VARIANTS = ("full", "compact", "spaced", "number", "shown")
MAX_PAYMENT_LAG_DAYS = 60

# compound cases: the limits a perfect matcher can rely on (see the module docstring)
MAX_SUBSET_CANDIDATES = 20  # a line without references: at most this many items to combine
MAX_SUBSET_SIZE = 4
SHORT_PAYMENT_CHARGES_HKD = (5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 100, 120, 150)
SHORT_PAYMENT_MIN_TOLERANCE_HKD = 150  # short by at most max(HKD 150, 2% of the invoice)
SHORT_PAYMENT_TOLERANCE_PCT = 2
FX_CURRENCIES = {"USD": 0.60, "CNY": 0.25, "EUR": 0.15}
#: (start mid rate in HKD, daily step, floor, ceiling) of the random walk per currency
_FX_MARKET = {"USD": (7.7800, 0.0008, 7.7500, 7.8500), "CNY": (1.0850, 0.0025, 1.0300, 1.1400),
              "EUR": (8.4500, 0.0300, 7.9000, 9.2000)}
#: the bank's spread below the mid rate: (low, high) fraction per currency
FX_SPREADS = {"USD": (0.0010, 0.0040), "CNY": (0.0020, 0.0060), "EUR": (0.0030, 0.0090)}
FX_CHARGES_HKD = (50, 60, 75, 100, 120, 150, 200)
FX_CHARGE_SHARE = 0.35
FX_TOLERANCE_PCT = 1  # bank = converted - spread - charge >= converted - 1% - HKD 250
FX_TOLERANCE_HKD = 250
FX_HISTORY_DAYS = 75
FX_MISSING_WEEKDAYS = 0.10
PROCESSOR_FEE_MAX_PCT = 5
STRIPE_PAYOUT_DELAY_BUSINESS_DAYS = 2
SHOPIFY_PAYOUT_DELAY_BUSINESS_DAYS = 3
#: a payout without processor data settles the orders of consecutive days, the last of them
#: 1..PAYOUT_MAX_LAG_DAYS before the bank date, spanning at most PAYOUT_MAX_SPAN_DAYS days
PAYOUT_MAX_LAG_DAYS = 8
PAYOUT_MAX_SPAN_DAYS = 10
DESCRIPTION_CUT = 35
NO_CUT = 140  # a description never cut (longer than any line)

# --------------------------------------------------------------------------------------------
# names: (romanised or English token, Traditional Chinese) pairs; each list has unique entries
# --------------------------------------------------------------------------------------------
_ROMAN_WORDS = [
    ("Kam", "金"), ("Wing", "榮"), ("Tak", "德"), ("Wah", "華"), ("Fook", "福"), ("Hing", "興"),
    ("Fung", "豐"), ("Po", "寶"), ("Cheong", "昌"), ("Tai", "泰"), ("Cheung", "祥"),
    ("Shun", "信"), ("Hang", "恒"), ("Tung", "東"), ("Hoi", "海"), ("Lung", "龍"), ("Yue", "裕"),
    ("Kwong", "廣"), ("Shing", "成"), ("On", "安"), ("Lee", "利"), ("Yip", "業"), ("Kin", "建"),
    ("Chung", "中"), ("Man", "萬"), ("Sang", "生"), ("Lik", "力"), ("Mei", "美"), ("Hop", "合"),
    ("Yau", "友"),
]
_ENGLISH_WORDS = [
    ("Golden", "金"), ("Harbour", "港"), ("Pacific", "太平洋"), ("Orient", "東方"),
    ("Jade", "翡翠"), ("Pearl", "明珠"), ("Dragon", "騰龍"), ("Phoenix", "鳳凰"),
    ("Victoria", "維多利亞"), ("Kowloon", "九龍"), ("Asia", "亞洲"), ("Star", "星光"),
    ("Silver", "銀河"), ("Lucky", "吉祥"), ("Grand", "宏大"), ("Ever", "永恒"), ("Bright", "光明"),
    ("Eastern", "東亞"), ("Summit", "高峰"), ("Crown", "皇冠"), ("Royal", "皇家"),
    ("Sunrise", "日昇"), ("Ocean", "海洋"), ("Lotus", "蓮花"), ("Peak", "山頂"),
]
_INDUSTRIES = [
    ("Trading", "貿易"), ("Logistics", "物流"), ("Engineering", "工程"), ("Textile", "紡織"),
    ("Electronics", "電子"), ("Food", "食品"), ("Printing", "印刷"), ("Construction", "建築"),
    ("Design", "設計"), ("Consulting", "顧問"), ("Garment", "製衣"), ("Seafood", "海產"),
    ("Jewellery", "珠寶"), ("Transport", "運輸"), ("Holdings", "控股"), ("Industrial", "實業"),
    ("Enterprise", "企業"), ("Development", "發展"), ("Technology", "科技"),
    ("Decoration", "裝飾"), ("Catering", "飲食"), ("Furniture", "傢俬"), ("Plastics", "塑膠"),
    ("Paper", "紙業"), ("Hardware", "五金"),
]
_SURNAMES = [
    ("CHAN", "陳"), ("WONG", "黃"), ("LEE", "李"), ("CHEUNG", "張"), ("LAU", "劉"), ("LAM", "林"),
    ("NG", "吳"), ("HO", "何"), ("LEUNG", "梁"), ("CHOW", "周"), ("TSANG", "曾"), ("YEUNG", "楊"),
    ("CHU", "朱"), ("TANG", "鄧"), ("KWOK", "郭"), ("LAI", "黎"), ("FUNG", "馮"), ("MAK", "麥"),
    ("SO", "蘇"), ("YIP", "葉"), ("TSE", "謝"), ("LO", "羅"), ("CHENG", "鄭"), ("POON", "潘"),
    ("TAM", "譚"), ("YUEN", "袁"), ("KO", "高"), ("SIU", "蕭"), ("LUK", "陸"), ("CHIU", "趙"),
]
_GIVEN = [
    ("TAI", "大"), ("MAN", "文"), ("SIU", "小"), ("LUNG", "龍"), ("MING", "明"), ("KA", "家"),
    ("WAI", "偉"), ("YAN", "欣"), ("MEI", "美"), ("LING", "玲"), ("WING", "詠"), ("KWAN", "君"),
    ("FAI", "輝"), ("HUNG", "雄"), ("SHUK", "淑"), ("SHAN", "珊"), ("CHUN", "俊"), ("KIT", "傑"),
    ("HEI", "希"), ("LOK", "樂"), ("TSZ", "子"), ("YU", "宇"), ("CHI", "志"), ("KIN", "健"),
    ("HO", "浩"), ("YEE", "儀"), ("PUI", "佩"), ("SUET", "雪"), ("WAH", "華"), ("KWONG", "光"),
    ("SING", "星"), ("TING", "婷"), ("YING", "瑩"), ("HANG", "恒"), ("LEUNG", "亮"),
    ("SHING", "成"), ("KEUNG", "強"), ("WO", "和"), ("FUK", "福"), ("YIN", "賢"), ("PO", "寶"),
    ("SUM", "心"), ("KAI", "啟"), ("CHEUK", "卓"), ("CHING", "晴"), ("NGA", "雅"), ("LAP", "立"),
    ("TAK", "德"), ("KEI", "琪"), ("HIN", "軒"),
]
_ENGLISH_FIRST = [
    "PETER", "MARY", "JOHN", "DAVID", "MICHAEL", "KELVIN", "ERIC", "JACKY", "WINNIE", "CARMEN",
    "IVY", "ANGEL", "TOMMY", "KENNY", "RAYMOND", "VINCENT", "BONNIE", "FIONA", "GARY", "JASON",
    "KATHY", "ALICE", "BEN", "CANDY", "DICKSON", "EDMOND", "HEIDI", "JOYCE", "SAMMY", "TIFFANY",
]
# (bank text, ledger counterparty, what, median HKD, channel) of payees paid from the cash book
_UTILITIES = [
    ("CLP POWER HK LTD", "CLP Power Hong Kong Limited", "Electricity", 2_500, "AUTOPAY DR"),
    ("HK ELECTRIC CO LTD", "The Hongkong Electric Company, Limited", "Electricity", 2_000, "AUTOPAY DR"),
    ("WATER SUPPLIES DEPT", "Water Supplies Department", "Water charges", 600, "AUTOPAY DR"),
    ("HKT LIMITED", "Hong Kong Telecommunications (HKT) Limited", "Telephone and broadband", 900, "AUTOPAY DR"),
    ("HKBN LTD", "Hong Kong Broadband Network Limited", "Broadband", 400, "AUTOPAY DR"),
    ("TOWNGAS", "The Hong Kong and China Gas Company Limited", "Gas", 800, "AUTOPAY DR"),
    ("MPF TRUSTEE SCHEME", "MPF Master Trust", "MPF contributions", 15_000, "AUTOPAY DR"),
    ("INLAND REVENUE DEPT", "Inland Revenue Department", "Profits tax", 40_000, "IBT DR"),
    ("SF EXPRESS HK LTD", "SF Express (Hong Kong) Limited", "Courier", 350, "FPS DR"),
    ("OFFICE RENT", "Harbour View Properties Limited", "Office rent", 45_000, "AUTOPAY DR"),
]
_GOODS = [
    "Goods supplied", "Consulting services", "Printing job", "Electronic components",
    "Seafood supply", "Garment order", "Design fee", "Maintenance service", "Freight charges",
    "Installation work", "Office supplies", "Catering service", "Monthly retainer",
    "Spare parts", "Packaging materials", "Renovation progress payment",
]
_CASH_RECEIPT_DESCRIPTIONS = [
    "Cash sales", "Deposit received", "Customer receipt", "Sales - walk-in", "Receipt - FPS",
]
# (bank description, fixed fee amounts in HKD; empty = a commission of the deal's size)
_FEES: list[tuple[str, tuple[int, ...]]] = [
    ("SERVICE FEE", (50, 100, 150)),
    ("BANK CHARGES", (30, 80, 120, 200)),
    ("TT COMM", ()),
    ("CHQ BOOK FEE", (50,)),
    ("ACCOUNT MAINT FEE", (50, 100)),
    ("HANDLING FEE", (75, 100)),
    ("CABLE CHARGES", (150,)),
]
_ROUND_AMOUNTS_HKD = np.array([500, 1_000, 1_000, 1_500, 2_000, 2_500, 3_000, 5_000, 8_000, 10_000])
_NET_SALARY_GROSS_HKD = np.array(
    [12_500, 14_000, 15_800, 16_500, 18_000, 18_000, 20_000, 22_500, 25_000, 28_000, 32_000,
     38_000, 45_000, 60_000]
)
_GL_ACCOUNT = {
    "invoice": "1100", "bill": "2100", "receipt": "1010", "payment": "1010", "payroll": "6100",
    "journal": "6800", "order": "1150", "credit_note": "1100",
}

# --------------------------------------------------------------------------------------------
# internal row layouts shared by every case
# --------------------------------------------------------------------------------------------
_BANK_ROWS: dict[str, pl.DataType] = {
    "uid": pl.Int64,
    "day": pl.Int32,  # offset from the first day of the month
    "amount_minor": pl.Int64,
    "channel": pl.Utf8,  # "FPS CR", "CHQ", "SERVICE FEE"...
    "detail": pl.Utf8,  # cheque number, "SALARY"...
    "payer": pl.Utf8,  # the name as this bank prints it
    "ref_kind": pl.Utf8,  # "invoice" (rendered from ref_uid's id), "text" (ref_text) or null
    "ref_uid": pl.Int64,
    "ref_text": pl.Utf8,
    "ref_variant": pl.Utf8,  # INVOICE_REF_VARIANTS for invoices; "shown"/"none" for text
    "trunc_k": pl.Int32,  # characters a truncated reference loses
    "layout": pl.Utf8,  # "name_first" or "ref_first"
    "cut_at": pl.Int32,
    "show_counterparty": pl.Boolean,
    "show_reference": pl.Boolean,
    "always_decisive": pl.Boolean,  # the line identifies its ledger item whatever the variant
    "name_ok": pl.Boolean,  # payer printed in the ledger's script, not initials only
    "party_key": pl.Int64,  # who the line is from/to, for the decidability fix-up (or null)
    "ledger_type": pl.Utf8,
    "case": pl.Utf8,
    "variant": pl.Utf8,
    "label": pl.Utf8,  # the case's own label (e.g. "bank_charge"); the seen reference is added
    "own_check": pl.Boolean,  # decided by _make_compound_decidable, not by _make_decidable
}
_BANK_DEFAULTS = {
    "trunc_k": 0, "layout": "name_first", "cut_at": NO_CUT, "show_counterparty": False,
    "show_reference": False, "always_decisive": False, "name_ok": False, "ref_variant": "none",
    "own_check": False,
}
_LEDGER_ROWS: dict[str, pl.DataType] = {
    "uid": pl.Int64,
    "prefix": pl.Utf8,  # id prefix: INV, BILL, RCPT, PAY, PRL, JNL, SO
    "type": pl.Utf8,
    "day": pl.Int32,
    "amount_minor": pl.Int64,
    "counterparty": pl.Utf8,
    "description": pl.Utf8,
    "reference": pl.Utf8,  # null for invoices: filled with the invoice number
    "due_day": pl.Int32,
    "account": pl.Utf8,
    "party_key": pl.Int64,
    "case": pl.Utf8,
    "currency": pl.Utf8,  # null: the account's currency
    "ref_uid": pl.Int64,  # the reference is this other ledger item's id (a credit note's order)
}
_GROUPS: dict[str, pl.DataType] = {"group": pl.Int64, "match_type": pl.Utf8, "case": pl.Utf8}
_LINKS: dict[str, pl.DataType] = {"group": pl.Int64, "side": pl.Utf8, "uid": pl.Int64}  # group members
_ADJUSTMENTS: dict[str, pl.DataType] = {"group": pl.Int64, "cause": pl.Utf8, "amount_minor": pl.Int64}
_OPEN: dict[str, pl.DataType] = {"group": pl.Int64, "open_minor": pl.Int64, "open_currency": pl.Utf8}
_LISTS: dict[str, pl.DataType] = {"bank_uid": pl.Int64, "ledger_uid": pl.Int64}  # invoices a line lists
_EMPLOYEE_KEY_OFFSET = 1 << 40  # employees are keyed by their name, not by a party row


def _frame(schema: Mapping[str, pl.DataType], n: int, cols: dict, defaults: Mapping | None = None) -> pl.DataFrame:
    unknown = set(cols) - set(schema)
    if unknown:
        raise KeyError(f"unknown columns {sorted(unknown)}")
    data = []
    for name, dtype in schema.items():
        value = cols.get(name, (defaults or {}).get(name))
        if value is None or np.isscalar(value):
            data.append(pl.repeat(value, n, dtype=dtype, eager=True).alias(name))
        elif isinstance(value, pl.Series):
            data.append(value.alias(name).cast(dtype))
        elif isinstance(value, np.ndarray) and value.dtype == object:
            data.append(pl.Series(name, value.tolist(), dtype=dtype))
        else:
            data.append(pl.Series(name, value).cast(dtype))
    return pl.DataFrame(data)


def ledger_rows(n: int, **cols) -> pl.DataFrame:
    """``n`` internal ledger rows (the columns of ``_LEDGER_ROWS``; the GL account from the type)."""
    cols.setdefault("account", _GL_ACCOUNT.get(cols.get("type", ""), None))
    return _frame(_LEDGER_ROWS, n, cols)


@dataclass
class _Month:
    """Everything the cases share: the random stream, the calendar, the parties, the rows."""

    rng: np.random.Generator
    start: date
    n_days: int
    currency: str
    bank_account: str
    parties: pl.DataFrame = field(default_factory=pl.DataFrame)
    bank: list[pl.DataFrame] = field(default_factory=list)
    ledger: list[pl.DataFrame] = field(default_factory=list)
    links: list[pl.DataFrame] = field(default_factory=list)
    groups: list[pl.DataFrame] = field(default_factory=list)
    adjustments: list[pl.DataFrame] = field(default_factory=list)
    opens: list[pl.DataFrame] = field(default_factory=list)
    lists: list[pl.DataFrame] = field(default_factory=list)
    stripe: list[pl.DataFrame] = field(default_factory=list)
    fx: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _next: dict[str, int] = field(default_factory=lambda: {"bank": 0, "ledger": 0, "group": 0})

    @property
    def minor_per_major(self) -> int:
        return 10 ** currency_exponent(self.currency)

    def uids(self, kind: str, n: int) -> np.ndarray:
        first = self._next[kind]
        self._next[kind] += n
        return np.arange(first, first + n, dtype=np.int64)

    def weekday(self, day: np.ndarray) -> np.ndarray:
        """0 = Monday ... 6 = Sunday."""
        return (self.start.weekday() + np.asarray(day)) % 7

    def days(self, n: int, business_only: bool = False) -> np.ndarray:
        """Bank dates: busier on weekdays; FPS and transfers still arrive at weekends."""
        weekday = self.weekday(np.arange(self.n_days))
        if business_only:
            weights = (weekday < 5).astype(float)
        else:
            weights = np.where(weekday < 5, 1.0, np.where(weekday == 5, 0.35, 0.15))
        return self.rng.choice(self.n_days, size=n, p=weights / weights.sum()).astype(np.int32)

    def business_day(self, day: np.ndarray) -> np.ndarray:
        """Move weekend days to the nearest weekday inside the month."""
        day = np.asarray(day, dtype=np.int32).copy()
        weekday = self.weekday(day)
        day = np.where(weekday == 5, day - 1, np.where(weekday == 6, day + 1, day))
        day = np.where(day >= self.n_days, day - 3, day)  # Sunday after the last Friday
        day = np.where(day < 0, day + 3, day)  # a Saturday 1st becomes Monday 3rd
        return day.astype(np.int32)

    def last_business_day(self, on_or_before: int) -> int:
        day = min(on_or_before, self.n_days - 1)
        while self.weekday(day) >= 5:
            day -= 1
        return int(day)

    def party_ids(self, role: str) -> np.ndarray:
        return self.parties.filter(pl.col("role") == role)["party_id"].to_numpy()

    def pick(self, ids: np.ndarray, n: int, skew: float = 0.9) -> np.ndarray:
        """Draw ``n`` parties, a few big ones more often (Zipf-like activity)."""
        weights = 1.0 / (np.arange(len(ids)) + 3.0) ** skew
        return self.rng.choice(ids, size=n, p=weights / weights.sum())

    def party_columns(self, party: np.ndarray, *names: str) -> list[pl.Series]:
        table = self.parties.select("party_id", *names)
        joined = pl.DataFrame({"party_id": party}).join(table, on="party_id", how="left", maintain_order="left")
        return [joined[name] for name in names]

    def amounts(self, n: int, median: float | np.ndarray, sigma: float, low: float, high: float,
                round_to: tuple[float, float, float, float, float] = (0.35, 0.40, 0.12, 0.08, 0.05)) -> np.ndarray:
        """Log-normal magnitudes in minor units, rounded like real invoices are.

        ``round_to`` weighs cents, whole dollars, tens, hundreds and thousands.
        """
        major = np.exp(self.rng.normal(np.log(median), sigma, n)).clip(low, high)
        minor = np.rint(major * self.minor_per_major).astype(np.int64)
        unit = np.array([1, 1, 10, 100, 1000], dtype=np.int64) * np.array(
            [1, self.minor_per_major, self.minor_per_major, self.minor_per_major, self.minor_per_major]
        )
        unit = unit[self.rng.choice(5, size=n, p=np.asarray(round_to) / sum(round_to))]
        return np.maximum(minor // unit * unit, unit)

    def add_bank(self, n: int, **cols) -> None:
        self.bank.append(_frame(_BANK_ROWS, n, cols, _BANK_DEFAULTS))

    def add_ledger(self, n: int, **cols) -> None:
        self.ledger.append(ledger_rows(n, **cols))

    def add_one_to_one(self, case: str, bank_uid: np.ndarray, ledger_uid: np.ndarray) -> None:
        n = len(bank_uid)
        group = self.uids("group", n)
        self.groups.append(_frame(_GROUPS, n, {"group": group, "match_type": "one_to_one", "case": case}))
        self.links.append(_frame(_LINKS, 2 * n, {
            "group": np.concatenate([group, group]),
            "side": np.repeat(np.array(["bank", "ledger"], dtype=object), n),
            "uid": np.concatenate([bank_uid, ledger_uid]),
        }))

    def add_groups(self, case: str, match_type: str, n: int, bank: tuple[np.ndarray, np.ndarray],
                   ledger: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``n`` truth groups; ``bank`` and ``ledger`` are (group index 0..n-1, uid) member pairs."""
        group = self.uids("group", n)
        self.groups.append(_frame(_GROUPS, n, {"group": group, "match_type": match_type, "case": case}))
        (bank_g, bank_uid), (ledger_g, ledger_uid) = bank, ledger
        self.links.append(_frame(_LINKS, len(bank_uid) + len(ledger_uid), {
            "group": np.concatenate([group[bank_g], group[ledger_g]]),
            "side": np.repeat(np.array(["bank", "ledger"], dtype=object), [len(bank_uid), len(ledger_uid)]),
            "uid": np.concatenate([bank_uid, ledger_uid]),
        }))
        return group

    def add_adjustments(self, group: np.ndarray, cause: str, amount_minor: np.ndarray) -> None:
        """Expected adjustment lines (bank currency, signed so bank = ledger + adjustments)."""
        keep = np.asarray(amount_minor) != 0
        if keep.any():
            self.adjustments.append(_frame(_ADJUSTMENTS, int(keep.sum()), {
                "group": np.asarray(group)[keep], "cause": cause, "amount_minor": np.asarray(amount_minor)[keep],
            }))

    def business_days_after(self, day: np.ndarray, k: int) -> np.ndarray:
        """The ``k``-th weekday strictly after each day (may lie beyond the month)."""
        day = np.asarray(day, dtype=np.int32).copy()
        for _ in range(k):
            day += 1
            weekday = self.weekday(day)
            day += np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0)).astype(np.int32)
        return day

    def business_days(self) -> np.ndarray:
        days = np.arange(self.n_days, dtype=np.int32)
        return days[self.weekday(days) < 5]

    def rates(self, currency: str) -> tuple[np.ndarray, np.ndarray]:
        """Mid rates (units of the account currency per 1 ``currency``, x 10^4) per day from
        ``-FX_HISTORY_DAYS``, and whether each day is published in fx.csv. Drawn on first use."""
        if currency not in self.fx:
            centre, step, low, high = _FX_MARKET[currency]
            n = FX_HISTORY_DAYS + self.n_days
            walk = np.clip(centre + np.cumsum(self.rng.normal(0.0, step, n)), low, high)
            rate_e4 = np.rint(walk * 10_000).astype(np.int64)
            weekday = self.weekday(np.arange(-FX_HISTORY_DAYS, self.n_days))
            published = (weekday < 5) & (self.rng.random(n) >= FX_MISSING_WEEKDAYS)
            published[int(np.argmax(weekday < 5))] = True  # the first weekday: every later day has a rate
            self.fx[currency] = (rate_e4, published)
        return self.fx[currency]

    def rate_on(self, currency: np.ndarray, day: np.ndarray) -> np.ndarray:
        """fx.csv's rate (x 10^4) for each (currency, day): that day's, else the nearest earlier."""
        currency = np.asarray(currency, dtype=object)
        out = np.zeros(len(currency), dtype=np.int64)
        for code in sorted(set(currency.tolist())):
            rate_e4, published = self.rates(code)
            idx = np.arange(len(rate_e4))
            last = np.maximum.accumulate(np.where(published, idx, 0))
            rows = currency == code
            out[rows] = rate_e4[last[np.asarray(day)[rows] + FX_HISTORY_DAYS]]
        return out

    def overseas_parties(self, n: int) -> np.ndarray:
        """Ids of the overseas customers invoiced in USD, CNY or EUR (``n`` drawn on first use)."""
        if "currency" not in self.parties.columns:
            first = int(self.parties["party_id"].max()) + 1
            extra = _overseas(self.rng, n)
            extra = extra.with_columns(
                party_id=pl.int_range(first, first + extra.height, dtype=pl.Int64), role=pl.lit("overseas_customer"),
            )
            self.parties = pl.concat([self.parties, extra], how="diagonal")
        return self.party_ids("overseas_customer")


def _convert(amount_minor: np.ndarray, rate_e4: np.ndarray, exponent_from: int, exponent_to: int) -> np.ndarray:
    """``amount x rate`` in the target currency's minor units, rounded half away from zero."""
    num = np.abs(amount_minor).astype(np.int64) * rate_e4 * 10**exponent_to
    den = 10_000 * 10**exponent_from
    return np.sign(amount_minor) * ((2 * num + den) // (2 * den))


def _choice(rng: np.random.Generator, options: Mapping[str, float] | list[str], n: int) -> np.ndarray:
    if isinstance(options, Mapping):
        keys = list(options)
        p = np.array([options[k] for k in keys], dtype=float)
        return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]
    return np.array(options, dtype=object)[rng.integers(0, len(options), n)]


def _payment_lags(rng: np.random.Generator, n: int) -> np.ndarray:
    """Days from invoice to payment: some pay at once, most around 30-day terms, some late."""
    kind = rng.choice(3, size=n, p=[0.15, 0.60, 0.25])
    lag = np.where(
        kind == 0, rng.integers(0, 8, n),
        np.where(kind == 1, np.rint(rng.normal(30, 8, n)), rng.integers(35, MAX_PAYMENT_LAG_DAYS + 1, n)),
    )
    return lag.clip(0, MAX_PAYMENT_LAG_DAYS).astype(np.int32)


def _near_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Cash-book booking offset from the bank date, -3..+3 days, mostly 0 or +1."""
    return rng.choice(np.arange(-3, 4), size=n, p=[0.03, 0.07, 0.15, 0.35, 0.25, 0.10, 0.05]).astype(np.int32)


def _bump_until_unique(keys: pl.DataFrame, amount: np.ndarray, step: int) -> np.ndarray:
    """Nudge magnitudes up by multiples of ``step`` until every (keys..., amount) is unique.

    Within each key, sorted magnitudes become ``max(a_j - j*step for j <= i) + i*step``: strictly
    increasing, at least ``step`` apart, and unchanged where there was no collision.
    """
    sign = np.where(amount < 0, -1, 1)
    by = keys.columns
    frame = keys.with_columns(pl.Series("_mag", np.abs(amount)), pl.Series("_row", np.arange(len(amount))))
    frame = (
        frame.sort([*by, "_mag", "_row"])
        .with_columns(_i=pl.int_range(pl.len()).over(by).cast(pl.Int64) * step)
        .with_columns(_new=(pl.col("_mag") - pl.col("_i")).cum_max().over(by) + pl.col("_i"))
        .sort("_row")
    )
    return frame["_new"].to_numpy() * sign


# --------------------------------------------------------------------------------------------
# parties
# --------------------------------------------------------------------------------------------
def _sample_space(rng: np.random.Generator, size: int, k: int) -> np.ndarray:
    if k <= size:
        return rng.choice(size, size=k, replace=False)
    return np.concatenate([rng.permutation(size), rng.integers(0, size, k - size)])


def _companies(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """``n`` distinct company names: (English base, Chinese name, legal form)."""
    nr, ne, ni = len(_ROMAN_WORDS), len(_ENGLISH_WORDS), len(_INDUSTRIES)
    spaces = [nr * (nr - 1) * ni, ne * (ne - 1) * ni, nr * (nr - 1) * (nr - 2) * ni]
    want = [min(int(n * 0.45), spaces[0]), min(int(n * 0.25), spaces[1])]
    want.append(n - sum(want) + max(20, n // 50))  # a margin for dropping Chinese collisions
    parts = []
    for segment, (size, k) in enumerate(zip(spaces, want, strict=True)):
        idx = _sample_space(rng, size, k)
        industry, rest = idx % ni, idx // ni
        words = _ENGLISH_WORDS if segment == 1 else _ROMAN_WORDS
        m = len(words)
        if segment < 2:
            w1, w2 = rest // (m - 1), rest % (m - 1)
            w2 = w2 + (w2 >= w1)
            tokens = [w1, w2]
        else:
            w1, r2 = rest // ((m - 1) * (m - 2)), rest % ((m - 1) * (m - 2))
            w2, w3 = r2 // (m - 2), r2 % (m - 2)
            w2 = w2 + (w2 >= w1)
            low, high = np.minimum(w1, w2), np.maximum(w1, w2)
            w3 = w3 + (w3 >= low)
            w3 = w3 + (w3 >= high)
            tokens = [w1, w2, w3]
        en = np.array([w[0] for w in words], dtype=object)
        zh = np.array([w[1] for w in words], dtype=object)
        ind_en = np.array([w[0] for w in _INDUSTRIES], dtype=object)
        ind_zh = np.array([w[1] for w in _INDUSTRIES], dtype=object)
        base = en[tokens[0]]
        chinese = zh[tokens[0]]
        for t in tokens[1:]:
            base = base + " " + en[t]
            chinese = chinese + zh[t]
        parts.append(pl.DataFrame({
            "base": (base + " " + ind_en[industry]).tolist(),
            "zh": (chinese + ind_zh[industry] + "有限公司").tolist(),
        }, schema={"base": pl.Utf8, "zh": pl.Utf8}))
    names = pl.concat(parts).unique(subset="zh", keep="first", maintain_order=True)
    names = names.unique(subset="base", keep="first", maintain_order=True)
    if names.height < n:
        raise ValueError(f"only {names.height} distinct company names for {n} companies")
    names = names.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(2**31))).head(n)
    legal = np.where(rng.random(n) < 0.6, "co", "ltd")
    return names.with_columns(pl.Series("legal", legal, dtype=pl.Utf8), pl.lit("company").alias("kind"))


def _people(rng: np.random.Generator, n: int, distinct: bool = True) -> pl.DataFrame:
    """``n`` people (distinct names unless ``distinct`` is False) with an optional English name."""
    ns, ng = len(_SURNAMES), len(_GIVEN)
    size = ns * ng * (ng - 1)
    idx = _sample_space(rng, size, n) if distinct else rng.integers(0, size, n)
    surname, rest = idx // (ng * (ng - 1)), idx % (ng * (ng - 1))
    g1, g2 = rest // (ng - 1), rest % (ng - 1)
    g2 = g2 + (g2 >= g1)
    sur_en = np.array([s[0] for s in _SURNAMES], dtype=object)
    sur_zh = np.array([s[1] for s in _SURNAMES], dtype=object)
    giv_en = np.array([g[0] for g in _GIVEN], dtype=object)
    giv_zh = np.array([g[1] for g in _GIVEN], dtype=object)
    english = np.where(rng.random(n) < 0.25, np.array(_ENGLISH_FIRST, dtype=object)[rng.integers(0, len(_ENGLISH_FIRST), n)], None)
    return pl.DataFrame({
        "name_index": idx.astype(np.int64),
        "surname": sur_en[surname].tolist(), "given1": giv_en[g1].tolist(), "given2": giv_en[g2].tolist(),
        "zh": (sur_zh[surname] + giv_zh[g1] + giv_zh[g2]).tolist(),
        "english": english.tolist(),
    }, schema={"name_index": pl.Int64, "surname": pl.Utf8, "given1": pl.Utf8, "given2": pl.Utf8,
               "zh": pl.Utf8, "english": pl.Utf8}).with_columns(pl.lit("person").alias("kind"))


_COMPANY_BANK_FORMS = {"upper_abbr": 0.50, "upper_full": 0.15, "mixed": 0.15, "zh": 0.20}
_COMPANY_LEDGER_FORMS = {"full": 0.45, "abbr": 0.25, "upper": 0.10, "zh": 0.20}
_PERSON_BANK_FORMS = {"roman": 0.55, "roman_english": 0.10, "zh": 0.25, "initials": 0.10}
_PERSON_LEDGER_FORMS = {"title": 0.50, "hyphen": 0.20, "western": 0.10, "zh": 0.20}


def _company_forms(df: pl.DataFrame) -> pl.DataFrame:
    base = pl.col("base")
    upper = base.str.to_uppercase()
    co = pl.col("legal") == "co"
    bank = pl.col("bank_form")
    ledger = pl.col("ledger_form")
    return df.with_columns(
        bank_name=pl.when(bank == "zh").then(pl.col("zh"))
        .when(bank == "upper_full").then(upper + pl.when(co).then(pl.lit(" CO LIMITED")).otherwise(pl.lit(" LIMITED")))
        .when(bank == "mixed").then(base + pl.when(co).then(pl.lit(" Co Ltd")).otherwise(pl.lit(" Ltd")))
        .otherwise(upper + pl.when(co).then(pl.lit(" CO LTD")).otherwise(pl.lit(" LTD"))),
        ledger_name=pl.when(ledger == "zh").then(pl.col("zh"))
        .when(ledger == "abbr").then(base + pl.when(co).then(pl.lit(" Co., Ltd.")).otherwise(pl.lit(" Ltd.")))
        .when(ledger == "upper").then(upper + pl.when(co).then(pl.lit(" COMPANY LIMITED")).otherwise(pl.lit(" LIMITED")))
        .otherwise(base + pl.when(co).then(pl.lit(" Company Limited")).otherwise(pl.lit(" Limited"))),
    )


def _person_forms(df: pl.DataFrame) -> pl.DataFrame:
    roman = pl.concat_str([pl.col("surname"), pl.col("given1"), pl.col("given2")], separator=" ")
    title = roman.str.to_titlecase()
    bank = pl.col("bank_form")
    ledger = pl.col("ledger_form")
    has_english = pl.col("english").is_not_null()
    return df.with_columns(
        bank_name=pl.when(bank == "zh").then(pl.col("zh"))
        .when(bank == "initials").then(pl.concat_str([pl.col("surname"), pl.col("given1").str.head(1), pl.col("given2").str.head(1)], separator=" "))
        .when((bank == "roman_english") & has_english).then(pl.concat_str([roman, pl.col("english")], separator=" "))
        .otherwise(roman),
        ledger_name=pl.when(ledger == "zh").then(pl.col("zh"))
        .when(ledger == "hyphen").then(pl.concat_str([
            pl.col("surname").str.to_titlecase(), pl.lit(" "), pl.col("given1").str.to_titlecase(), pl.lit("-"),
            pl.col("given2").str.to_lowercase()]))
        .when((ledger == "western") & has_english).then(pl.concat_str([pl.col("english").str.to_titlecase(), title], separator=" "))
        .otherwise(title),
    )


def _assign_forms(rng: np.random.Generator, df: pl.DataFrame, bank_forms: Mapping[str, float],
                  ledger_forms: Mapping[str, float], same_script: bool) -> pl.DataFrame:
    n = df.height
    bank = _choice(rng, bank_forms, n)
    ledger = _choice(rng, ledger_forms, n)
    if same_script:
        latin = [f for f in ledger_forms if f != "zh"]
        ledger = np.where(bank == "zh", "zh", np.where(ledger == "zh", _choice(rng, latin, n), ledger))
    return df.with_columns(
        pl.Series("bank_form", bank, dtype=pl.Utf8), pl.Series("ledger_form", ledger, dtype=pl.Utf8)
    )


#: the parts a name is made of (companies: base, legal; people: surname, given names, English
#: name), kept with the party so that variation profiles can print the name other ways
_NAME_PARTS = ("base", "legal", "surname", "given1", "given2", "english")


def _with_name_parts(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.select(*columns, *[pl.col(c) if c in frame.columns else pl.lit(None, dtype=pl.Utf8).alias(c)
                                    for c in _NAME_PARTS])


def _build_parties(month: _Month, n_bank: int) -> pl.DataFrame:
    """Customers, cash customers, unknown payers, suppliers and payees: every name distinct."""
    rng = month.rng
    roles = {  # role: (how many, share of people)
        "customer": (max(30, n_bank // 20), 0.35),
        "cash_customer": (max(10, n_bank // 100), 0.60),
        "unknown_payer": (max(10, n_bank // 60), 0.50),
        "supplier": (max(15, n_bank // 100), 0.0),
        "payee": (max(5, n_bank // 250), 0.0),
    }
    n_people = {r: int(round(k * share)) for r, (k, share) in roles.items()}
    n_companies = {r: roles[r][0] - n_people[r] for r in roles}
    companies = _companies(rng, sum(n_companies.values()))
    people = _people(rng, sum(n_people.values()))
    frames = []
    c0 = p0 = 0
    for role in roles:
        nc, np_ = n_companies[role], n_people[role]
        same_script = role in ("cash_customer", "supplier", "payee")
        comp = _assign_forms(
            rng, companies.slice(c0, nc),
            {k: v for k, v in _COMPANY_BANK_FORMS.items() if not (same_script and k == "mixed")},
            _COMPANY_LEDGER_FORMS, same_script,
        )
        pers = _assign_forms(
            rng, people.slice(p0, np_),
            {k: v for k, v in _PERSON_BANK_FORMS.items() if not (same_script and k == "initials")},
            _PERSON_LEDGER_FORMS, same_script,
        )
        c0 += nc
        p0 += np_
        cols = ["kind", "bank_form", "ledger_form", "bank_name", "ledger_name", "zh"]
        both = pl.concat([_with_name_parts(_company_forms(comp), cols), _with_name_parts(_person_forms(pers), cols)])
        both = both.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(2**31)))
        frames.append(both.with_columns(pl.lit(role).alias("role")))
    parties = pl.concat(frames)
    utilities = pl.DataFrame({
        "kind": "company", "bank_form": "fixed", "ledger_form": "fixed",
        "bank_name": [u[0] for u in _UTILITIES], "ledger_name": [u[1] for u in _UTILITIES],
        "zh": None, "role": "utility",
    }, schema={c: parties.schema[c] for c in (*cols, "role")})
    parties = pl.concat([parties, utilities], how="diagonal").with_row_index("party_id").with_columns(
        pl.col("party_id").cast(pl.Int64))
    script_bank = pl.col("bank_form") == "zh"
    script_ledger = pl.col("ledger_form") == "zh"
    return parties.with_columns(name_ok=(script_bank == script_ledger) & (pl.col("bank_form") != "initials"))


_OVERSEAS_WORDS = [
    "Northwind", "Bluewater", "Redwood", "Silverline", "Maple", "Atlas", "Nordic", "Alpine",
    "Coastal", "Evergreen", "Granite", "Horizon", "Ironbridge", "Keystone", "Lakeside", "Meridian",
    "Oakridge", "Pinnacle", "Riverside", "Sterling", "Brightwater", "Copperfield", "Fairway", "Westbrook",
]
_OVERSEAS_TRADES = ["Trading", "Imports", "Supply", "Retail", "Foods", "Textiles", "Electronics",
                    "Distribution", "Industries", "Brands"]
_LEGAL_FORMS = {"USD": ["Inc.", "LLC", "Corp."], "EUR": ["GmbH", "B.V.", "S.A.S.", "S.r.l."]}
_CN_CITIES = [("Shenzhen", "深圳市"), ("Guangzhou", "广州市"), ("Dongguan", "东莞市"), ("Shanghai", "上海"),
              ("Xiamen", "厦门"), ("Foshan", "佛山市"), ("Ningbo", "宁波"), ("Zhuhai", "珠海市")]
_CN_WORDS = [("Huaxing", "华兴"), ("Jinlong", "金龙"), ("Hengtai", "恒泰"), ("Xinda", "鑫达"),
             ("Tianyi", "天翼"), ("Mingyang", "明阳"), ("Baoli", "宝利"), ("Kaida", "凯达"),
             ("Ruifeng", "瑞丰"), ("Yongsheng", "永盛")]
_CN_TRADES = [("Electronics", "电子"), ("Trading", "贸易"), ("Technology", "科技"), ("Garment", "服装"),
              ("Plastics", "塑胶"), ("Packaging", "包装")]


def _overseas(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """``n`` overseas customers with distinct names, each invoiced in one foreign currency.

    USD / EUR companies are printed upper-case by the bank (``NORTHWIND TRADING INC``) and kept
    in proper case in the ledger (``Northwind Trading Inc.``); mainland companies are printed in
    pinyin (``SHENZHEN HUAXING ELECTRONICS CO LTD``) and kept in pinyin or in simplified Chinese.
    Names have one or two words before the trade (``Northwind Alpine Trading Inc.``), which gives
    ~5,800 western and ~4,800 mainland names.
    """
    currency = _choice(rng, FX_CURRENCIES, n)
    western = np.flatnonzero(currency != "CNY")
    chinese = np.flatnonzero(currency == "CNY")
    names = np.empty(n, dtype=object)
    zh = np.full(n, None, dtype=object)
    words, trades = len(_OVERSEAS_WORDS), len(_OVERSEAS_TRADES)
    idx = _sample_space(rng, words * words * trades, len(western))  # second word == first: none
    for row, i in zip(western, idx, strict=True):
        first, second, trade = i // (words * trades), (i // trades) % words, i % trades
        middle = "" if second == first else f" {_OVERSEAS_WORDS[second]}"
        legal = _LEGAL_FORMS[currency[row]][int(rng.integers(0, len(_LEGAL_FORMS[currency[row]])))]
        names[row] = f"{_OVERSEAS_WORDS[first]}{middle} {_OVERSEAS_TRADES[trade]} {legal}"
    cities, cn_words, cn_trades = len(_CN_CITIES), len(_CN_WORDS), len(_CN_TRADES)
    idx = _sample_space(rng, cities * cn_words * cn_words * cn_trades, len(chinese))
    for row, i in zip(chinese, idx, strict=True):
        city, rest = _CN_CITIES[i // (cn_words * cn_words * cn_trades)], i % (cn_words * cn_words * cn_trades)
        first, second, trade = rest // (cn_words * cn_trades), (rest // cn_trades) % cn_words, _CN_TRADES[rest % cn_trades]
        word = _CN_WORDS[first] if second == first else (
            f"{_CN_WORDS[first][0]} {_CN_WORDS[second][0]}", _CN_WORDS[first][1] + _CN_WORDS[second][1])
        names[row] = f"{city[0]} {word[0]} {trade[0]} Co., Ltd."
        zh[row] = f"{city[1]}{word[1]}{trade[1]}有限公司"
    frame = pl.DataFrame({"ledger_name": names.tolist(), "zh": zh.tolist(), "currency": currency.tolist()},
                         schema={"ledger_name": pl.Utf8, "zh": pl.Utf8, "currency": pl.Utf8})
    frame = frame.unique("ledger_name", keep="first", maintain_order=True)  # only when the space ran out
    chinese_ledger = pl.col("zh").is_not_null() & pl.Series(rng.random(frame.height) < 0.3)
    bank_name = pl.col("ledger_name").str.replace_all(r"[.,]", "").str.to_uppercase()
    return frame.select(
        kind=pl.lit("company"), bank_form=pl.lit("upper"),
        ledger_form=pl.when(chinese_ledger).then(pl.lit("zh")).otherwise(pl.lit("proper")),
        bank_name=bank_name,
        ledger_name=pl.when(chinese_ledger).then(pl.col("zh")).otherwise(pl.col("ledger_name")),
        zh="zh", currency="currency", name_ok=~chinese_ledger,
    )


# --------------------------------------------------------------------------------------------
# cases: each appends bank rows, ledger rows and truth groups
# --------------------------------------------------------------------------------------------
_RECEIPT_CHANNELS = {"FPS CR": 0.40, "CHQ DEP": 0.15, "CR TRF": 0.12, "IBT CR": 0.10, "TT IN": 0.10, "AUTOPAY CR": 0.13}
_BUSINESS_DAY_CHANNELS = ("CHQ DEP", "IBT CR", "TT IN", "AUTOPAY CR", "TT OUT", "IBT DR", "AUTOPAY DR", "CHQ")
_ALWAYS_CUT_CHANNELS = ("TT IN", "CR TRF", "IBT CR", "TT OUT")


def _cut_lengths(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    always = np.isin(channel, _ALWAYS_CUT_CHANNELS)
    sometimes = (channel == "FPS CR") & (rng.random(len(channel)) < 0.30)
    return np.where(always | sometimes, DESCRIPTION_CUT, NO_CUT).astype(np.int32)


def _invoice_payments(month: _Month, case: str, party: np.ndarray, bank_day: np.ndarray,
                      invoice_day: np.ndarray, amount: np.ndarray) -> None:
    """One invoice per bank line, paid in full: the building block of the receipt cases."""
    rng = month.rng
    n = len(party)
    channel = _choice(rng, _RECEIPT_CHANNELS, n)
    business = np.isin(channel, _BUSINESS_DAY_CHANNELS)
    bank_day = np.where(business, month.business_day(bank_day), bank_day).astype(np.int32)
    invoice_day = np.clip(invoice_day, bank_day - MAX_PAYMENT_LAG_DAYS, bank_day).astype(np.int32)
    variant = _choice(rng, INVOICE_REF_VARIANTS, n)
    decisive = np.isin(variant, DECISIVE_VARIANTS)
    layout = np.where(decisive & (rng.random(n) < 0.3), "ref_first", "name_first")
    cheque_no = np.char.zfill(rng.integers(0, 1_000_000, n).astype(str), 6).astype(object)
    bank_name, ledger_name, name_ok = month.party_columns(party, "bank_name", "ledger_name", "name_ok")
    terms = rng.choice(np.array([7, 14, 30, 30, 30, 60]), size=n)
    ledger_uid = month.uids("ledger", n)
    bank_uid = month.uids("bank", n)
    month.add_ledger(
        n, uid=ledger_uid, prefix="INV", type="invoice", day=invoice_day, amount_minor=amount,
        counterparty=ledger_name, description=_choice(rng, _GOODS, n),
        due_day=invoice_day + terms, party_key=party, case=case,
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=amount, channel=channel,
        detail=np.where(channel == "CHQ DEP", cheque_no, None), payer=bank_name,
        ref_kind="invoice", ref_uid=ledger_uid, ref_variant=variant,
        trunc_k=rng.integers(1, 4, n), layout=layout, cut_at=_cut_lengths(rng, channel),
        show_counterparty=rng.random(n) < np.where(channel == "FPS CR", 0.4, 0.1),
        show_reference=rng.random(n) < 0.2, name_ok=name_ok, party_key=party,
        ledger_type="invoice", case=case, variant=variant,
    )
    month.add_one_to_one(case, bank_uid, ledger_uid)


def invoice_receipt(month: _Month, n: int) -> None:
    """A customer pays one invoice, 0-60 days after its date."""
    rng = month.rng
    party = month.pick(month.party_ids("customer"), n)
    bank_day = month.days(n)
    amount = month.amounts(n, median=6_000, sigma=1.2, low=50, high=500_000)
    _invoice_payments(month, "invoice_receipt", party, bank_day, bank_day - _payment_lags(rng, n), amount)


def _group_sizes(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    sizes = rng.integers(low, high + 1, n // low + 1)
    sizes = sizes[np.cumsum(sizes) <= n]
    rest = n - int(sizes.sum())
    if rest >= 2 or (rest and not len(sizes)):
        sizes = np.append(sizes, rest)
    elif rest:
        sizes[-1] += rest
    return sizes


def same_amount_receipts(month: _Month, n: int) -> None:
    """Several customers pay invoices of the same round amount in the same week."""
    if n == 0:
        return
    rng = month.rng
    sizes = _group_sizes(rng, n, 3, 6)
    group = np.repeat(np.arange(len(sizes)), sizes)
    member = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    customers = rng.permutation(month.party_ids("customer"))
    first = rng.integers(0, len(customers), len(sizes))
    party = customers[(first[group] + member) % len(customers)]
    amount = (_ROUND_AMOUNTS_HKD[rng.integers(0, len(_ROUND_AMOUNTS_HKD), len(sizes))] * month.minor_per_major)[group]
    week_start = rng.integers(0, max(1, month.n_days - 6), len(sizes))[group]
    bank_day = np.minimum(week_start + rng.integers(0, 6, n), month.n_days - 1).astype(np.int32)
    _invoice_payments(month, "same_amount_receipts", party, bank_day, bank_day - _payment_lags(rng, n), amount)


def repeat_invoice(month: _Month, n: int) -> None:
    """One customer, two invoices of identical amount, paid by two bank lines."""
    pairs = n // 2
    if pairs == 0:
        return
    rng = month.rng
    party = month.pick(month.party_ids("customer"), pairs)
    amount = month.amounts(pairs, median=3_000, sigma=1.0, low=100, high=200_000)
    day1 = month.days(pairs)
    day2 = np.minimum(day1 + rng.integers(0, 8, pairs), month.n_days - 1)
    invoice1 = day1 - _payment_lags(rng, pairs)
    invoice2 = np.minimum(invoice1 + rng.integers(0, 11, pairs), day2)
    order = np.column_stack([np.arange(pairs), np.arange(pairs)]).ravel()
    _invoice_payments(
        month, "repeat_invoice", party[order], np.column_stack([day1, day2]).ravel(),
        np.column_stack([invoice1, invoice2]).ravel(), amount[order],
    )


def cash_book_receipt(month: _Month, n: int) -> None:
    """Money in booked straight into the cash book (no invoice), a few days either side."""
    if n == 0:
        return
    rng = month.rng
    party = month.pick(month.party_ids("cash_customer"), n)
    bank_day = month.days(n)
    amount = month.amounts(n, median=1_500, sigma=1.0, low=50, high=80_000, round_to=(0.2, 0.6, 0.1, 0.08, 0.02))
    amount = _bump_until_unique(pl.DataFrame({"party": party}), amount, month.minor_per_major)
    channel = _choice(rng, {"FPS CR": 0.6, "CR TRF": 0.2, "IBT CR": 0.2}, n)
    bank_day = np.where(channel == "IBT CR", month.business_day(bank_day), bank_day)
    bank_name, ledger_name = month.party_columns(party, "bank_name", "ledger_name")
    ledger_uid = month.uids("ledger", n)
    bank_uid = month.uids("bank", n)
    month.add_ledger(
        n, uid=ledger_uid, prefix="RCPT", type="receipt", day=bank_day + _near_days(rng, n),
        amount_minor=amount, counterparty=ledger_name,
        description=_choice(rng, _CASH_RECEIPT_DESCRIPTIONS, n), party_key=party, case="cash_book_receipt",
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=amount, channel=channel, payer=bank_name,
        cut_at=_cut_lengths(rng, channel), show_counterparty=rng.random(n) < 0.3,
        always_decisive=True, name_ok=True, case="cash_book_receipt", variant="no_reference",
    )
    month.add_one_to_one("cash_book_receipt", bank_uid, ledger_uid)


def _supplier_invoice_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    number = rng.integers(0, 1_000_000, n)
    style = rng.integers(0, 3, n)
    six = np.char.zfill(number.astype(str), 6)
    five = np.char.zfill((number % 100_000).astype(str), 5)
    four = np.char.zfill((number % 10_000).astype(str), 4)
    yymm = np.char.zfill(rng.integers(2501, 2613, n).astype(str), 4)
    return np.where(style == 0, np.char.add("SI-", five),
                    np.where(style == 1, six, np.char.add(np.char.add(yymm, "-"), four))).astype(object)


def _bills(month: _Month, n: int, paid_day: np.ndarray | None) -> tuple[np.ndarray, ...]:
    rng = month.rng
    party = month.pick(month.party_ids("supplier"), n)
    amount = -month.amounts(n, median=12_000, sigma=1.2, low=50, high=500_000, round_to=(0.5, 0.3, 0.1, 0.07, 0.03))
    if paid_day is None:  # open bill: dated in the last 60 days
        bill_day = rng.integers(month.n_days - MAX_PAYMENT_LAG_DAYS, month.n_days, n).astype(np.int32)
    else:
        bill_day = (paid_day - _payment_lags(rng, n)).astype(np.int32)
    terms = rng.choice(np.array([30, 30, 60]), size=n)
    return party, amount, bill_day, bill_day + terms, _supplier_invoice_numbers(rng, n)


def supplier_bill(month: _Month, n: int) -> None:
    """We pay a supplier's bill by transfer, autopay or cheque."""
    if n == 0:
        return
    rng = month.rng
    channel = _choice(rng, {"TT OUT": 0.2, "AUTOPAY DR": 0.3, "CHQ": 0.25, "IBT DR": 0.25}, n)
    bank_day = month.days(n, business_only=True)
    party, amount, bill_day, due_day, supplier_ref = _bills(month, n, bank_day)
    # our cheques are numbered in the order we write them
    is_cheque = channel == "CHQ"
    cheque_no = np.full(n, None, dtype=object)
    order = np.argsort(bill_day[is_cheque], kind="stable")
    numbers = np.empty(int(is_cheque.sum()), dtype=np.int64)
    numbers[order] = 100_001 + np.arange(len(order))
    cheque_no[is_cheque] = numbers.astype(str)
    bank_name, ledger_name, name_ok = month.party_columns(party, "bank_name", "ledger_name", "name_ok")
    goods = _choice(rng, _GOODS, n)
    description = np.where(is_cheque, goods + "; chq " + cheque_no.astype(str), goods)
    shown = rng.random(n) < 0.6
    ledger_uid = month.uids("ledger", n)
    bank_uid = month.uids("bank", n)
    month.add_ledger(
        n, uid=ledger_uid, prefix="BILL", type="bill", day=bill_day, amount_minor=amount,
        counterparty=ledger_name, description=description, reference=supplier_ref,
        due_day=due_day, party_key=party, case="supplier_bill",
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=amount, channel=channel,
        detail=cheque_no, payer=np.where(is_cheque, None, bank_name.to_numpy()),
        ref_kind=np.where(is_cheque, None, "text"), ref_text=supplier_ref,
        ref_variant=np.where(shown & ~is_cheque, "shown", "none"),
        layout=np.where(shown & (rng.random(n) < 0.3), "ref_first", "name_first"),
        cut_at=_cut_lengths(rng, channel), always_decisive=is_cheque, name_ok=name_ok,
        party_key=np.where(is_cheque, None, party), ledger_type="bill", case="supplier_bill",
        variant=np.where(is_cheque, "cheque", None),  # others: labelled once rendered
    )
    month.add_one_to_one("supplier_bill", bank_uid, ledger_uid)


def cash_book_payment(month: _Month, n: int) -> None:
    """Utilities, rent, tax, courier: paid and booked in the cash book, no bill."""
    if n == 0:
        return
    rng = month.rng
    utilities = month.party_ids("utility")
    payees = month.party_ids("payee")
    use_utility = rng.random(n) < 0.6
    party = np.where(use_utility, rng.choice(utilities, n), month.pick(payees, n))
    median = np.full(n, 1_500.0)
    util_index = party - utilities.min()
    median[use_utility] = np.array([u[3] for u in _UTILITIES], dtype=float)[util_index[use_utility]]
    amount = -month.amounts(n, median=median, sigma=0.5, low=50, high=300_000, round_to=(0.7, 0.2, 0.05, 0.05, 0.0))
    amount = _bump_until_unique(pl.DataFrame({"party": party}), amount, 1)
    channel = np.where(use_utility, np.array([u[4] for u in _UTILITIES], dtype=object)[np.where(use_utility, util_index, 0)],
                       _choice(rng, {"FPS DR": 0.4, "AUTOPAY DR": 0.3, "IBT DR": 0.3}, n))
    bank_day = month.days(n)
    bank_day = np.where(channel == "FPS DR", bank_day, month.business_day(bank_day))
    bank_name, ledger_name = month.party_columns(party, "bank_name", "ledger_name")
    what = np.where(use_utility, np.array([u[2] for u in _UTILITIES], dtype=object)[np.where(use_utility, util_index, 0)],
                    _choice(rng, _GOODS, n))
    previous = (month.start.replace(day=1).toordinal() - 1)
    period = date.fromordinal(previous).strftime("%b %Y")
    ledger_uid = month.uids("ledger", n)
    bank_uid = month.uids("bank", n)
    month.add_ledger(
        n, uid=ledger_uid, prefix="PAY", type="payment", day=bank_day + _near_days(rng, n),
        amount_minor=amount, counterparty=ledger_name, description=what + " " + period,
        party_key=party, case="cash_book_payment",
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=amount, channel=channel, payer=bank_name,
        always_decisive=True, name_ok=True, case="cash_book_payment", variant="no_reference",
    )
    month.add_one_to_one("cash_book_payment", bank_uid, ledger_uid)


def payroll(month: _Month, n: int) -> None:
    """One AUTOPAY DR per employee: a month-end run and a mid-month (commission) run."""
    if n == 0:
        return
    rng = month.rng
    people = _assign_forms(rng, _people(rng, n, distinct=False), {"roman": 1.0}, {"title": 0.7, "hyphen": 0.3}, True)
    people = _person_forms(people)
    month_end = rng.random(n) < 0.8
    run_day = np.where(month_end, month.last_business_day(month.n_days - 1), month.last_business_day(14))
    bank_day = np.minimum(run_day + (rng.random(n) < 0.1), month.n_days - 1).astype(np.int32)
    gross = _NET_SALARY_GROSS_HKD[rng.integers(0, len(_NET_SALARY_GROSS_HKD), n)] * month.minor_per_major
    net = gross - np.minimum(gross * 5 // 100, 1_500 * month.minor_per_major)  # employee MPF share
    extra = np.where(rng.random(n) < 0.15, rng.integers(1, 300_000, n), 0)  # overtime, with cents
    amount = -(np.where(month_end, net, gross // 4) + extra)
    employee_no = np.char.add("E", np.char.zfill((np.arange(n) + 1).astype(str), max(5, len(str(n))))).astype(object)
    shown = rng.random(n) < 0.75
    label = pl.Series(np.where(month_end, "Salary ", "Commission ")) + month.start.strftime("%b %Y")
    ledger_uid = month.uids("ledger", n)
    bank_uid = month.uids("bank", n)
    party_key = people["name_index"].to_numpy() + _EMPLOYEE_KEY_OFFSET
    month.add_ledger(
        n, uid=ledger_uid, prefix="PRL", type="payroll", day=run_day, amount_minor=amount,
        counterparty=people["ledger_name"], description=label, reference=employee_no,
        party_key=party_key, case="payroll",
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=amount, channel="AUTOPAY DR", detail="SALARY",
        payer=people["bank_name"], ref_kind="text", ref_text=employee_no,
        ref_variant=np.where(shown, "shown", "none"), layout=np.where(shown, "ref_first", "name_first"),
        name_ok=True, party_key=party_key, ledger_type="payroll", case="payroll",
    )
    month.add_one_to_one("payroll", bank_uid, ledger_uid)


def bank_charge(month: _Month, n: int) -> None:
    """Fees the bank takes; 60% are journalled on the same date, the rest are not booked."""
    if n == 0:
        return
    rng = month.rng
    fee = rng.integers(0, len(_FEES), n)
    names = np.array([f[0] for f in _FEES], dtype=object)[fee]
    amount = np.zeros(n, dtype=np.int64)
    for i, (_, amounts) in enumerate(_FEES):
        rows = fee == i
        if amounts:
            amount[rows] = np.array(amounts)[rng.integers(0, len(amounts), rows.sum())] * month.minor_per_major
        else:  # TT commission: 0.125% of the transfer, HKD 200 minimum, HKD 500 maximum
            transfer = rng.integers(10_000, 5_000_000, rows.sum()) * month.minor_per_major
            amount[rows] = np.clip(transfer // 800, 200 * month.minor_per_major, 500 * month.minor_per_major)
    bank_day = month.days(n, business_only=True)
    amount = -_bump_until_unique(pl.DataFrame({"day": bank_day}), amount, month.minor_per_major)
    journal = rng.random(n) < 0.6
    bank_uid = month.uids("bank", n)
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=amount, channel=names, always_decisive=True,
        case="bank_charge", variant=np.where(journal, "journal", "no_ledger_item"),
    )
    k = int(journal.sum())
    ledger_uid = month.uids("ledger", k)
    month.add_ledger(
        k, uid=ledger_uid, prefix="JNL", type="journal", day=bank_day[journal], amount_minor=amount[journal],
        description="Bank charges - " + pl.Series(names[journal], dtype=pl.Utf8).str.to_lowercase(),
        case="bank_charge",
    )
    month.add_one_to_one("bank_charge", bank_uid[journal], ledger_uid)


def unknown_deposit(month: _Month, n: int) -> None:
    """Money in that nobody booked: stays unmatched."""
    if n == 0:
        return
    rng = month.rng
    party = month.pick(month.party_ids("unknown_payer"), n, skew=0.3)
    channel = _choice(rng, {"FPS CR": 0.5, "CR TRF": 0.2, "CASH DEP": 0.2, "TT IN": 0.1}, n)
    (bank_name,) = month.party_columns(party, "bank_name")
    bank_day = month.days(n)
    bank_day = np.where(channel == "FPS CR", bank_day, month.business_day(bank_day))
    month.add_bank(
        n, uid=month.uids("bank", n), day=bank_day,
        amount_minor=month.amounts(n, median=3_000, sigma=1.3, low=50, high=300_000),
        channel=channel, payer=np.where(channel == "CASH DEP", None, bank_name.to_numpy()),
        cut_at=_cut_lengths(rng, channel), case="unknown_deposit", variant=channel,
    )


def open_invoice(month: _Month, n: int) -> None:
    """Invoices issued in the last 60 days and not paid yet: ledger only."""
    if n == 0:
        return
    rng = month.rng
    party = month.pick(month.party_ids("customer"), n)
    day = rng.integers(month.n_days - MAX_PAYMENT_LAG_DAYS, month.n_days, n).astype(np.int32)
    (ledger_name,) = month.party_columns(party, "ledger_name")
    month.add_ledger(
        n, uid=month.uids("ledger", n), prefix="INV", type="invoice", day=day,
        amount_minor=month.amounts(n, median=6_000, sigma=1.2, low=50, high=500_000),
        counterparty=ledger_name, description=_choice(rng, _GOODS, n),
        due_day=day + rng.choice(np.array([7, 14, 30, 30, 30, 60]), size=n), party_key=party,
        case="open_invoice",
    )


def open_bill(month: _Month, n: int) -> None:
    """Supplier bills not paid yet: ledger only."""
    if n == 0:
        return
    party, amount, bill_day, due_day, supplier_ref = _bills(month, n, None)
    (ledger_name,) = month.party_columns(party, "ledger_name")
    month.add_ledger(
        n, uid=month.uids("ledger", n), prefix="BILL", type="bill", day=bill_day, amount_minor=amount,
        counterparty=ledger_name, description=_choice(month.rng, _GOODS, n), reference=supplier_ref,
        due_day=due_day, party_key=party, case="open_bill",
    )


def sales_order(month: _Month, n: int) -> None:
    """Sales orders: ledger only, never cash; half repeat an invoice's customer and amount."""
    if n == 0:
        return
    rng = month.rng
    invoices = (pl.concat(month.ledger).filter((pl.col("type") == "invoice") & pl.col("currency").is_null())
                if month.ledger else None)
    party = month.pick(month.party_ids("customer"), n)
    amount = month.amounts(n, median=6_000, sigma=1.2, low=50, high=500_000)
    day = rng.integers(-MAX_PAYMENT_LAG_DAYS, month.n_days, n).astype(np.int32)
    if invoices is not None and invoices.height:
        copy = rng.random(n) < 0.5
        source = invoices[rng.integers(0, invoices.height, n)]
        party = np.where(copy, source["party_key"].to_numpy(), party)
        amount = np.where(copy, source["amount_minor"].to_numpy(), amount)
        day = np.where(copy, source["day"].to_numpy() - rng.integers(1, 15, n), day).astype(np.int32)
    (ledger_name,) = month.party_columns(party, "ledger_name")
    month.add_ledger(
        n, uid=month.uids("ledger", n), prefix="SO", type="order", day=day, amount_minor=amount,
        counterparty=ledger_name, description="Sales order - " + pl.Series(_choice(rng, _GOODS, n), dtype=pl.Utf8),
        party_key=party, case="sales_order",
    )


# --------------------------------------------------------------------------------------------
# compound cases (issue 3): several items per line, several lines per item, payouts, FX, short
# --------------------------------------------------------------------------------------------
_BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
_INVOICE_LIST_STYLES = {"list_numbers": 0.30, "list_full_then_numbers": 0.20, "list_full": 0.15, "none": 0.35}
_DECISIVE_INVOICE_REFS = {"full": 0.5, "compact": 0.2, "spaced": 0.1, "number": 0.2}
_SHOP_PRODUCTS = ["Tea", "Paws", "Brew", "Skin", "Home", "Bakery", "Toys", "Wear", "Gifts", "Beauty",
                  "Optics", "Books", "Florist", "Kitchen", "Outdoor", "Crafts", "Snacks", "Audio"]
_STRIPE_FEE_DESCRIPTIONS = ["Radar for Fraud Teams", "Billing - Usage Fee", "Stripe Tax - Transactions"]
_GATEWAYS = ("Shopify Payments", "PayPal")
_ORDERS_PER_DAY = {"stripe": 7.0, "Shopify Payments": 6.0, "PayPal": 2.0}
#: per-order processor fee: (per mille of the order, fixed HKD cents)
_ORDER_FEES = {"stripe": (34, 235), "stripe_international": (44, 235), "Shopify Payments": (33, 235), "PayPal": (34, 235)}


def _group_index(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each member, index of each group's first member) for consecutive groups."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return np.repeat(np.arange(len(sizes)), sizes), np.cumsum(sizes) - sizes


def _random_ids(rng: np.random.Generator, prefix: str, n: int, length: int = 23) -> np.ndarray:
    """Stripe-like ids: ``prefix`` + ``length`` base-62 characters."""
    chars = _BASE62[rng.integers(0, len(_BASE62), (n, length))]
    return np.char.add(prefix, chars.view(f"<U{length}").ravel()).astype(object)


def _sum_by(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Integer sums of ``values`` per ``index`` in 0..n-1 (exact: no float weights)."""
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, np.asarray(index, dtype=np.int64), np.asarray(values, dtype=np.int64))
    return out


def _order_fees(amount: np.ndarray, per_mille: np.ndarray | int, fixed_cents: int, minor_per_major: int) -> np.ndarray:
    return (amount * per_mille + 500) // 1000 + fixed_cents * minor_per_major // 100


def _shoppers(month: _Month, n: int) -> pl.Series:
    """Names of online shoppers as the shop's order system keeps them."""
    people = _assign_forms(month.rng, _people(month.rng, n, distinct=False), {"roman": 1.0},
                           {"title": 0.6, "western": 0.2, "zh": 0.2}, False)
    return _person_forms(people)["ledger_name"]


def _money_text(minor: np.ndarray, currency: np.ndarray | str) -> pl.Series:
    frame = pl.DataFrame({"m": np.asarray(minor, dtype=np.int64), "c": np.broadcast_to(np.asarray(currency, dtype=object), len(minor)).tolist()},
                         schema={"m": pl.Int64, "c": pl.Utf8})
    return frame.select(format_minor_expr(pl.col("m"), pl.col("c")).alias("text"))["text"]


def multi_invoice_payment(month: _Month, n: int) -> None:
    """One transfer from a customer pays 2-4 of its invoices; the numbers may be listed."""
    if n == 0:
        return
    rng = month.rng
    party = month.pick(month.party_ids("customer"), n, skew=0.5)
    k = rng.choice(np.array([2, 3, 4]), size=n, p=[0.5, 0.3, 0.2])
    g, starts = _group_index(k)
    m = int(k.sum())
    channel = _choice(rng, {"FPS CR": 0.40, "CR TRF": 0.20, "IBT CR": 0.15, "CHQ DEP": 0.15, "AUTOPAY CR": 0.10}, n)
    bank_day = month.days(n)
    bank_day = np.where(np.isin(channel, _BUSINESS_DAY_CHANNELS), month.business_day(bank_day), bank_day).astype(np.int32)
    invoice_day = (bank_day[g] - _payment_lags(rng, m)).astype(np.int32)
    amount = month.amounts(m, median=4_000, sigma=1.1, low=50, high=300_000)
    total = np.add.reduceat(amount, starts)
    style = np.where(channel == "CHQ DEP", "none", _choice(rng, _INVOICE_LIST_STYLES, n))  # a cheque lists nothing
    cheque_no = np.char.zfill(rng.integers(0, 1_000_000, n).astype(str), 6).astype(object)
    bank_name, name_ok = month.party_columns(party, "bank_name", "name_ok")
    (ledger_name,) = month.party_columns(party[g], "ledger_name")
    ledger_uid = month.uids("ledger", m)
    bank_uid = month.uids("bank", n)
    case = "multi_invoice_payment"
    month.add_ledger(
        m, uid=ledger_uid, prefix="INV", type="invoice", day=invoice_day, amount_minor=amount,
        counterparty=ledger_name, description=_choice(rng, _GOODS, m),
        due_day=invoice_day + rng.choice(np.array([14, 30, 30, 60]), size=m), party_key=party[g], case=case,
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=total, channel=channel,
        detail=np.where(channel == "CHQ DEP", cheque_no, None), payer=bank_name, ref_kind="list",
        ref_variant=np.where(style == "none", "none", "shown"),
        layout=np.where(rng.random(n) < 0.3, "ref_first", "name_first"),
        show_counterparty=rng.random(n) < 0.3, name_ok=name_ok, party_key=party, ledger_type="invoice",
        own_check=True, case=case, label=style,
    )
    month.lists.append(_frame(_LISTS, m, {"bank_uid": bank_uid[g], "ledger_uid": ledger_uid}))
    month.add_groups(case, "one_to_many", n, (np.arange(n), bank_uid), (g, ledger_uid))


def supplier_batch(month: _Month, n: int) -> None:
    """One payment to a supplier settles 2-4 of its bills; their numbers may be listed."""
    if n == 0:
        return
    rng = month.rng
    party = month.pick(month.party_ids("supplier"), n, skew=0.5)
    k = rng.choice(np.array([2, 3, 4]), size=n, p=[0.5, 0.3, 0.2])
    g, starts = _group_index(k)
    m = int(k.sum())
    channel = _choice(rng, {"TT OUT": 0.2, "AUTOPAY DR": 0.5, "IBT DR": 0.3}, n)
    bank_day = month.days(n, business_only=True)
    amount = -month.amounts(m, median=8_000, sigma=1.1, low=50, high=300_000, round_to=(0.5, 0.3, 0.1, 0.07, 0.03))
    bill_day = (bank_day[g] - _payment_lags(rng, m)).astype(np.int32)
    supplier_ref = _supplier_invoice_numbers(rng, m)
    listed = (
        pl.DataFrame({"g": g, "ref": supplier_ref.tolist()}, schema={"g": pl.Int64, "ref": pl.Utf8})
        .group_by("g", maintain_order=True).agg(pl.col("ref").str.join(" "))["ref"]
    )
    style = np.where(rng.random(n) < 0.55, "list_refs", "none")
    bank_name, name_ok = month.party_columns(party, "bank_name", "name_ok")
    (ledger_name,) = month.party_columns(party[g], "ledger_name")
    ledger_uid = month.uids("ledger", m)
    bank_uid = month.uids("bank", n)
    case = "supplier_batch"
    month.add_ledger(
        m, uid=ledger_uid, prefix="BILL", type="bill", day=bill_day, amount_minor=amount,
        counterparty=ledger_name, description=_choice(rng, _GOODS, m), reference=supplier_ref,
        due_day=bill_day + rng.choice(np.array([30, 30, 60]), size=m), party_key=party[g], case=case,
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=np.add.reduceat(amount, starts), channel=channel,
        payer=bank_name, ref_kind="list", ref_text=listed, ref_variant=np.where(style == "none", "none", "shown"),
        name_ok=name_ok, party_key=party, ledger_type="bill", own_check=True, case=case, label=style,
    )
    month.add_groups(case, "one_to_many", n, (np.arange(n), bank_uid), (g, ledger_uid))


def payroll_batch(month: _Month, n: int) -> None:
    """A payroll service debits one batch for 5-40 employees (weekly wages of shop staff)."""
    if n == 0:
        return
    rng = month.rng
    k = rng.integers(5, 41, n)
    g, starts = _group_index(k)
    m = int(k.sum())
    monthly_runs = [month.last_business_day(month.n_days - 1), month.last_business_day(14)]
    run_days = np.setdiff1d(month.business_days(), monthly_runs)
    run_day = np.sort(rng.choice(run_days, size=n)).astype(np.int32)
    batch_ref = np.char.add(f"PB{month.start:%y%m}-", np.char.zfill((np.arange(n) + 1).astype(str), 3)).astype(object)
    # one batch per run day may leave the batch reference out of the ledger: the day decides
    alone = pl.DataFrame({"d": run_day}).select(pl.len().over("d") == 1).to_series().to_numpy()
    ref_in_ledger = ~(alone & (rng.random(n) < 0.5))
    bank_day = np.minimum(run_day + (rng.random(n) < 0.1), month.n_days - 1).astype(np.int32)
    people = _person_forms(_assign_forms(rng, _people(rng, m, distinct=False), {"roman": 1.0},
                                         {"title": 0.7, "hyphen": 0.3}, True))
    wages = -month.amounts(m, median=6_500, sigma=0.5, low=1_500, high=40_000, round_to=(0.5, 0.3, 0.1, 0.1, 0.0))
    label = f"Wages {month.start:%b %Y}"
    description = np.where(ref_in_ledger[g], np.char.add(f"{label} - batch ", batch_ref[g].astype(str)), label).astype(object)
    employee_no = np.char.add("P", np.char.zfill((np.arange(m) + 1).astype(str), max(5, len(str(m))))).astype(object)
    ledger_uid = month.uids("ledger", m)
    bank_uid = month.uids("bank", n)
    case = "payroll_batch"
    month.add_ledger(
        m, uid=ledger_uid, prefix="PRL", type="payroll", day=run_day[g], amount_minor=wages,
        counterparty=people["ledger_name"], description=description, reference=employee_no,
        party_key=people["name_index"].to_numpy() + _EMPLOYEE_KEY_OFFSET, case=case,
    )
    shown_ref = np.where(rng.random(n) < 0.5, batch_ref, np.char.replace(batch_ref.astype(str), "-", "").astype(object))
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=np.add.reduceat(wages, starts), channel="AUTOPAY DR",
        detail="PAYROLL BATCH", ref_kind="text", ref_text=shown_ref, ref_variant="shown", always_decisive=True,
        case=case, label=np.where(ref_in_ledger, "batch_ref_in_ledger", "run_day_only"),
    )
    month.add_groups(case, "one_to_many", n, (np.arange(n), bank_uid), (g, ledger_uid))


def instalment(month: _Month, n: int) -> None:
    """An invoice paid by 2-3 transfers within the month; 40% are not fully paid yet."""
    if n < 2:
        return
    rng = month.rng
    sizes = _group_sizes(rng, n, 2, 3)
    groups = len(sizes)
    g, starts = _group_index(sizes)
    last = starts + sizes - 1
    party = month.pick(month.party_ids("customer"), groups)
    in_full = rng.random(groups) < 0.6
    mpm = month.minor_per_major
    invoice = month.amounts(groups, median=25_000, sigma=0.9, low=2_000, high=800_000, round_to=(0.2, 0.4, 0.2, 0.15, 0.05))
    unit = np.where(invoice >= 10_000 * mpm, 100 * mpm, mpm)
    weight = rng.uniform(0.5, 1.5, n)
    unpaid = np.where(in_full, 0.0, rng.uniform(0.5, 1.5, groups))  # the instalment still to come
    share = weight / (np.add.reduceat(weight, starts) + unpaid)[g]
    paid = (np.floor(invoice[g] * share / unit[g]) * unit[g]).astype(np.int64)
    paid = np.maximum(paid, unit[g])
    rest = invoice - np.add.reduceat(paid, starts) + paid[last]
    paid[last] = np.where(in_full, rest, paid[last])
    open_minor = invoice - np.add.reduceat(paid, starts)
    first_day = rng.integers(0, max(1, month.n_days - 10 * 3), groups)
    step = np.where(np.arange(n) == starts[g], 0, rng.integers(3, 11, n))
    bank_day = np.minimum(first_day[g] + np.cumsum(step) - np.cumsum(step)[starts][g], month.n_days - 1).astype(np.int32)
    channel = _choice(rng, _RECEIPT_CHANNELS, n)
    bank_day = np.where(np.isin(channel, _BUSINESS_DAY_CHANNELS), month.business_day(bank_day), bank_day).astype(np.int32)
    invoice_day = (first_day - rng.integers(0, 29, groups)).astype(np.int32)
    cheque_no = np.char.zfill(rng.integers(0, 1_000_000, n).astype(str), 6).astype(object)
    note = _choice(rng, ["PART PYT", "INSTALMENT", "DEPOSIT", "PART PAYMENT"], n)
    detail = np.where(channel == "CHQ DEP", cheque_no, np.where(rng.random(n) < 0.5, note, None))
    bank_name, ledger_name, name_ok = month.party_columns(party, "bank_name", "ledger_name", "name_ok")
    ledger_uid = month.uids("ledger", groups)
    bank_uid = month.uids("bank", n)
    case = "instalment"
    month.add_ledger(
        groups, uid=ledger_uid, prefix="INV", type="invoice", day=invoice_day, amount_minor=invoice,
        counterparty=ledger_name, description=_choice(rng, _GOODS, groups), due_day=invoice_day + 30,
        party_key=party, case=case,
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=paid, channel=channel, detail=detail,
        payer=bank_name.to_numpy()[g], ref_kind="invoice", ref_uid=ledger_uid[g],
        ref_variant=_choice(rng, _DECISIVE_INVOICE_REFS, n), layout="ref_first",
        show_counterparty=rng.random(n) < 0.3, show_reference=rng.random(n) < 0.2,
        name_ok=name_ok.to_numpy()[g], party_key=party[g], ledger_type="invoice", case=case,
        label=np.where(in_full[g], "paid_in_full", "partly_paid"),
    )
    group = month.add_groups(case, "many_to_one", groups, (g, bank_uid), (np.arange(groups), ledger_uid))
    partly = ~in_full
    month.opens.append(_frame(_OPEN, int(partly.sum()), {"group": group[partly], "open_minor": open_minor[partly]}))


def _single_invoice_receipts(month: _Month, case: str, party: np.ndarray, bank_day: np.ndarray,
                             invoice_amount: np.ndarray, bank_amount: np.ndarray, channel: np.ndarray,
                             label: np.ndarray, currency: np.ndarray | None = None,
                             detail: np.ndarray | None = None, cut_at: np.ndarray | int | None = None) -> np.ndarray:
    """One invoice paid by one line whose amount differs (short payment, FX): returns the groups."""
    rng = month.rng
    n = len(party)
    business = np.isin(channel, _BUSINESS_DAY_CHANNELS)
    bank_day = np.where(business, month.business_day(bank_day), bank_day).astype(np.int32)
    invoice_day = (bank_day - _payment_lags(rng, n)).astype(np.int32)
    variant = _choice(rng, INVOICE_REF_VARIANTS, n)
    decisive = np.isin(variant, DECISIVE_VARIANTS)
    bank_name, ledger_name, name_ok = month.party_columns(party, "bank_name", "ledger_name", "name_ok")
    ledger_uid = month.uids("ledger", n)
    bank_uid = month.uids("bank", n)
    month.add_ledger(
        n, uid=ledger_uid, prefix="INV", type="invoice", day=invoice_day, amount_minor=invoice_amount,
        counterparty=ledger_name, description=_choice(rng, _GOODS, n), currency=currency,
        due_day=invoice_day + rng.choice(np.array([14, 30, 30, 60]), size=n), party_key=party, case=case,
    )
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=bank_amount, channel=channel, detail=detail,
        payer=bank_name, ref_kind="invoice", ref_uid=ledger_uid, ref_variant=variant,
        trunc_k=rng.integers(1, 4, n), layout=np.where(decisive & (rng.random(n) < 0.3), "ref_first", "name_first"),
        cut_at=_cut_lengths(rng, channel) if cut_at is None else cut_at,
        show_counterparty=rng.random(n) < 0.2, show_reference=rng.random(n) < 0.2, name_ok=name_ok,
        party_key=party, ledger_type="invoice", own_check=True, case=case, label=label,
    )
    return month.add_groups(case, "one_to_one", n, (np.arange(n), bank_uid), (np.arange(n), ledger_uid))


def short_payment(month: _Month, n: int) -> None:
    """A customer pays an invoice short: the remitting bank's charge, a discount or dropped cents."""
    if n == 0:
        return
    rng = month.rng
    mpm = month.minor_per_major
    party = month.pick(month.party_ids("customer"), n, skew=0.5)
    bank_day = month.days(n)
    invoice = month.amounts(n, median=8_000, sigma=1.1, low=300, high=400_000)
    cause = _choice(rng, {"bank_charge": 0.60, "discount": 0.25, "rounding": 0.15}, n)
    rounding = invoice % (10 * mpm)  # paid down to whole tens of dollars
    cause = np.where((cause == "rounding") & (rounding == 0), "discount", cause)
    charge = np.array(SHORT_PAYMENT_CHARGES_HKD, dtype=np.int64)[rng.integers(0, len(SHORT_PAYMENT_CHARGES_HKD), n)] * mpm
    discount = invoice * rng.choice(np.array([1, 2]), size=n) // 100
    short = np.where(cause == "bank_charge", charge, np.where(cause == "discount", discount, rounding))
    channel = np.where(cause == "bank_charge", _choice(rng, {"TT IN": 0.4, "CR TRF": 0.3, "IBT CR": 0.3}, n),
                       _choice(rng, _RECEIPT_CHANNELS, n))
    group = _single_invoice_receipts(month, "short_payment", party, bank_day, invoice, invoice - short, channel, cause)
    is_charge = cause == "bank_charge"
    month.add_adjustments(group[is_charge], "bank_charge", -short[is_charge])
    month.add_adjustments(group[~is_charge], "short_payment", -short[~is_charge])


def fx_receipt(month: _Month, n: int) -> None:
    """An overseas customer pays a USD / CNY / EUR invoice into the HKD account (TT IN)."""
    if n == 0:
        return
    rng = month.rng
    mpm = month.minor_per_major
    ids = month.overseas_parties(max(8, n // 3))
    party = month.pick(ids, n, skew=0.6)
    currency = month.party_columns(party, "currency")[0].to_numpy().astype(object)
    bank_day = month.business_day(month.days(n))
    median = np.select([currency == "USD", currency == "EUR"], [3_000.0, 2_500.0], 20_000.0)
    high = np.where(currency == "CNY", 1_500_000.0, 200_000.0)
    amount = month.amounts(n, median=median, sigma=1.0, low=100, high=high)
    mid = month.rate_on(currency, bank_day)
    low_spread = np.array([FX_SPREADS[c][0] for c in currency.tolist()])
    high_spread = np.array([FX_SPREADS[c][1] for c in currency.tolist()])
    spread = rng.uniform(low_spread, high_spread)
    bank_rate = mid - np.ceil(mid * spread).astype(np.int64)
    exponent = currency_exponent(month.currency)
    converted = _convert(amount, mid, 2, exponent)
    credited = _convert(amount, bank_rate, 2, exponent)
    charge = np.where(rng.random(n) < FX_CHARGE_SHARE,
                      np.array(FX_CHARGES_HKD, dtype=np.int64)[rng.integers(0, len(FX_CHARGES_HKD), n)] * mpm, 0)
    shown = rng.random(n) < 0.6
    detail = np.where(shown, (pl.Series(currency.tolist(), dtype=pl.Utf8) + _money_text(amount, currency)).to_numpy(), None)
    label = np.where(charge > 0, np.char.add(currency.astype(str), "+bank_charge"), currency.astype(str)).astype(object)
    group = _single_invoice_receipts(
        month, "fx_receipt", party, bank_day, amount, credited - charge, np.full(n, "TT IN", dtype=object),
        label, currency=currency, detail=detail, cut_at=NO_CUT,
    )
    month.add_adjustments(group, "fx_difference", credited - converted)
    month.add_adjustments(group, "bank_charge", -charge)


def open_fx_invoice(month: _Month, n: int) -> None:
    """Foreign-currency invoices not paid yet: ledger only."""
    if n == 0:
        return
    rng = month.rng
    ids = month.overseas_parties(max(8, n))
    party = month.pick(ids, n, skew=0.6)
    currency = month.party_columns(party, "currency")[0].to_numpy().astype(object)
    (ledger_name,) = month.party_columns(party, "ledger_name")
    day = rng.integers(month.n_days - MAX_PAYMENT_LAG_DAYS, month.n_days, n).astype(np.int32)
    median = np.select([currency == "USD", currency == "EUR"], [3_000.0, 2_500.0], 20_000.0)
    month.add_ledger(
        n, uid=month.uids("ledger", n), prefix="INV", type="invoice", day=day,
        amount_minor=month.amounts(n, median=median, sigma=1.0, low=100, high=np.where(currency == "CNY", 1_500_000.0, 200_000.0)),
        counterparty=ledger_name, description=_choice(rng, _GOODS, n), currency=currency,
        due_day=day + 30, party_key=party, case="open_fx_invoice",
    )


def stripe_payout(month: _Month, n: int) -> None:
    """Daily Stripe payouts: the net of card charges, refunds and fees (itemized report rows)."""
    if n == 0:
        return
    rng = month.rng
    mpm = month.minor_per_major
    bdays = month.business_days()
    accounts = -(-n // len(bdays))
    slot_account = np.repeat(np.arange(accounts), len(bdays))
    slot_day = np.tile(bdays, accounts)
    keep = np.ones(len(slot_day), dtype=bool)
    surplus = len(slot_day) - n
    if surplus:  # the last account pays out on fewer days
        keep[(accounts - 1) * len(bdays) + rng.choice(len(bdays), size=surplus, replace=False)] = False
    account, payout_day = slot_account[keep], slot_day[keep].astype(np.int32)
    # settlement: charges of day D are paid out on the 2nd business day after D
    back = payout_day[:, None] - np.arange(1, 8, dtype=np.int32)[None, :]
    settles = month.business_days_after(back.ravel(), STRIPE_PAYOUT_DELAY_BUSINESS_DAYS).reshape(back.shape) == payout_day[:, None]
    pay_of_day, col = np.nonzero(settles)
    per_day = 1 + rng.poisson(_ORDERS_PER_DAY["stripe"], len(pay_of_day))
    order_payout = np.repeat(pay_of_day, per_day)
    order_day = np.repeat(back[pay_of_day, col], per_day).astype(np.int32)
    # orders of the last days are paid out next month: open in the ledger
    tail = np.arange(month.n_days - 7, month.n_days, dtype=np.int32)
    tail = tail[month.business_days_after(tail, STRIPE_PAYOUT_DELAY_BUSINESS_DAYS) >= month.n_days]
    tail_count = 1 + rng.poisson(_ORDERS_PER_DAY["stripe"], (accounts, len(tail)))
    unsettled_day = np.repeat(np.tile(tail, accounts), tail_count.ravel()).astype(np.int32)
    m, u = len(order_day), len(unsettled_day)
    amount = month.amounts(m + u, median=480, sigma=0.8, low=30, high=30_000, round_to=(0.3, 0.5, 0.15, 0.05, 0.0))
    order_uid = month.uids("ledger", m + u)
    shopper = _shoppers(month, m + u)
    month.add_ledger(
        m + u, uid=order_uid, prefix="SO", type="order", day=np.concatenate([order_day, unsettled_day]),
        amount_minor=amount, counterparty=shopper, description="Web shop order - card (Stripe)",
        case=np.where(np.arange(m + u) < m, "stripe_payout", "unsettled_order"),
    )
    amount, order_uid = amount[:m], order_uid[:m]
    international = rng.random(m) < 0.2
    fee = _order_fees(amount, np.where(international, _ORDER_FEES["stripe_international"][0], _ORDER_FEES["stripe"][0]),
                      _ORDER_FEES["stripe"][1], mpm)
    created = order_day.astype(np.int64) * 86_400 + rng.integers(0, 16 * 3_600, m)  # 08:00-24:00 HKT in UTC
    # refunds: debited at once, so the next payout of the account after the refund carries them
    refunded = np.flatnonzero(rng.random(m) < 0.04)
    refund_day = (order_day[refunded] + rng.integers(1, 11, len(refunded))).astype(np.int32)
    partial = rng.random(len(refunded)) < 0.3
    part = np.maximum(np.floor(amount[refunded] * rng.uniform(0.2, 0.8, len(refunded)) / mpm).astype(np.int64) * mpm, mpm)
    refund = np.where(partial, np.minimum(part, amount[refunded]), amount[refunded])
    in_month = refund_day < month.n_days
    refunded, refund_day, refund = refunded[in_month], refund_day[in_month], refund[in_month]
    key = account.astype(np.int64) * 10_000 + payout_day
    nxt = np.searchsorted(key, account[order_payout[refunded]].astype(np.int64) * 10_000 + refund_day, side="right")
    refund_payout = np.where((nxt < len(key)) & (account[np.minimum(nxt, len(key) - 1)] == account[order_payout[refunded]]), nxt, -1)
    fee_rows = np.flatnonzero(rng.random(n) < 0.25)
    fee_row_gross = -rng.integers(50, 5_000, len(fee_rows)).astype(np.int64) * mpm // 100
    net = _sum_by(order_payout, amount - fee, n) + _sum_by(fee_rows, fee_row_gross, n)
    with_refund = refund_payout >= 0
    too_much = net - _sum_by(refund_payout[with_refund], refund[with_refund], n) <= 0
    refund_payout = np.where(with_refund & ~too_much[np.maximum(refund_payout, 0)], refund_payout, -1)  # wait
    with_refund = refund_payout >= 0
    net -= _sum_by(refund_payout[with_refund], refund[with_refund], n)
    r = len(refunded)
    credit_uid = month.uids("ledger", r)
    month.add_ledger(
        r, uid=credit_uid, prefix="CN", type="credit_note", day=refund_day, amount_minor=-refund,
        counterparty=shopper.gather(refunded), description="Card refund (Stripe)",
        ref_uid=order_uid[refunded], case=np.where(with_refund, "stripe_payout", "open_credit_note"),
    )
    # the bank credit: the payout id is printed on most lines; the net amount decides the others
    bank_day = np.minimum(payout_day + (rng.random(n) < 0.15), month.n_days - 1).astype(np.int32)
    show_id = rng.random(n) < 0.7
    twins = (
        pl.DataFrame({"i": np.arange(n), "net": net, "day": bank_day})
        .join(pl.DataFrame({"j": np.arange(n), "net": net, "day_j": payout_day}), on="net")
        .filter((pl.col("i") != pl.col("j")) & ((pl.col("day") - pl.col("day_j")).abs() <= 3))["i"].unique()
    )
    show_id[twins.to_numpy()] = True
    payout_id = _random_ids(rng, "po_1", n)
    bank_uid = month.uids("bank", n)
    case = "stripe_payout"
    month.add_bank(
        n, uid=bank_uid, day=bank_day, amount_minor=net, channel="CR TRF",
        payer=np.where(show_id, "STRIPE PAYOUT", "STRIPE PAYMENTS UK LTD"), ref_kind="text", ref_text=payout_id,
        ref_variant=np.where(show_id, "shown", "none"), always_decisive=True, case=case,
        label=np.where(show_id, "payout_id_shown", "amount_only"),
    )
    group = month.add_groups(
        case, "payout", n, (np.arange(n), bank_uid),
        (np.concatenate([order_payout, refund_payout[with_refund]]), np.concatenate([order_uid, credit_uid[with_refund]])),
    )
    booked = _sum_by(order_payout, amount, n) - _sum_by(refund_payout[with_refund], refund[with_refund], n)
    month.add_adjustments(group, "processor_fee", net - booked)
    # the itemized payout reconciliation report
    rf = with_refund
    k = int(rf.sum())
    rows = len(order_payout) + k + len(fee_rows)
    payout_of_row = np.concatenate([order_payout, refund_payout[rf], fee_rows])
    metadata_shown = np.concatenate([rng.random(m) < 0.9, np.ones(k + len(fee_rows), dtype=bool)])
    description = np.concatenate([
        np.where(~metadata_shown[:m] | (rng.random(m) < 0.6), "order", "checkout"),
        np.full(k, "refund", dtype=object), np.array(_STRIPE_FEE_DESCRIPTIONS, dtype=object)[rng.integers(0, 3, len(fee_rows))],
    ])
    month.stripe.append(pl.DataFrame({
        "payout_id": payout_id[payout_of_row],
        "effective_day": payout_day[payout_of_row],
        "balance_transaction_id": _random_ids(rng, "txn_3", rows),
        "created_second": np.concatenate([
            created, refund_day[rf].astype(np.int64) * 86_400 + rng.integers(0, 16 * 3_600, k),
            (payout_day[fee_rows].astype(np.int64) - 1) * 86_400 + rng.integers(0, 86_400, len(fee_rows)),
        ]),
        "available_day": np.concatenate([payout_day[order_payout], refund_day[rf], payout_day[fee_rows]]),
        "gross_minor": np.concatenate([amount, -refund[rf], fee_row_gross]),
        "fee_minor": np.concatenate([fee, np.zeros(k + len(fee_rows), dtype=np.int64)]),
        "reporting_category": np.repeat(np.array(["charge", "refund", "fee"], dtype=object), [m, k, len(fee_rows)]),
        "source_id": np.concatenate([_random_ids(rng, "ch_3", m), _random_ids(rng, "re_3", k), np.full(len(fee_rows), "", dtype=object)]),
        "order_uid": np.concatenate([order_uid, order_uid[refunded][rf], np.full(len(fee_rows), -1)]),
        "description_kind": description,
        "metadata_shown": metadata_shown,
    }, schema_overrides={"effective_day": pl.Int32, "available_day": pl.Int32}))


def processor_payout(month: _Month, n: int) -> None:
    """Shopify Payments and PayPal credits without processor data: the gross of the orders of
    consecutive settlement days less a fee of 0-5% (ledger orders name the gateway)."""
    if n == 0:
        return
    rng = month.rng
    mpm = month.minor_per_major
    bdays = month.business_days()
    # (store, gateway, bank day, first settlement day, last settlement day)
    shop_back = bdays[:, None] - np.arange(1, 8, dtype=np.int32)[None, :]
    settles = month.business_days_after(shop_back.ravel(), SHOPIFY_PAYOUT_DELAY_BUSINESS_DAYS).reshape(shop_back.shape) == bdays[:, None]
    shop_first = np.where(settles, shop_back, 10_000).min(axis=1)
    shop_last = np.where(settles, shop_back, -10_000).max(axis=1)
    slots = []
    store = -1
    while sum(len(s) for s in slots) < n:  # add stores until there are enough payouts
        store += 1
        slots.append(np.column_stack([np.full(len(bdays), store), np.zeros(len(bdays)), bdays, shop_first, shop_last]))
        withdrawal = [int(bdays[int(rng.integers(0, 4))])]
        while True:
            nxt = month.business_days_after(np.array([withdrawal[-1]]), int(rng.integers(3, 6)))[0]
            if nxt >= month.n_days:
                break
            withdrawal.append(int(nxt))
        withdrawal = np.array(withdrawal, dtype=np.int32)
        arrival = month.business_days_after(withdrawal, 1)
        first = np.concatenate([[withdrawal[0] - int(rng.integers(3, 8))], withdrawal[:-1]])
        inside = arrival < month.n_days
        slots.append(np.column_stack([np.full(inside.sum(), store), np.ones(inside.sum()), arrival[inside],
                                      first[inside], withdrawal[inside] - 1]))
    stores = store + 1
    slot = np.concatenate(slots).astype(np.int64)
    if len(slot) > n:  # the last store sells on fewer days
        last_store = np.flatnonzero(slot[:, 0] == store)
        drop = rng.choice(last_store, size=len(slot) - n, replace=False)
        slot = np.delete(slot, drop, axis=0)
    store, gateway, bank_day, first, last = slot.T
    payouts = len(slot)
    # orders of each settlement day; the days after each gateway's last payout stay unsettled
    span = last - first + 1
    pay_of_day = np.repeat(np.arange(payouts), span)
    day = (np.repeat(first, span) + np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span)).astype(np.int32)
    key = store * 2 + gateway
    final = pl.DataFrame({"key": key, "last": last}).group_by("key").agg(pl.col("last").max()).sort("key")
    tail_span = np.maximum(month.n_days - 1 - final["last"].to_numpy(), 0)
    tail_key = np.repeat(final["key"].to_numpy(), tail_span)
    tail_day = (np.repeat(final["last"].to_numpy() + 1, tail_span) + np.arange(tail_span.sum())
                - np.repeat(np.cumsum(tail_span) - tail_span, tail_span)).astype(np.int32)
    lam = np.where(np.concatenate([gateway[pay_of_day], tail_key % 2]) == 0,
                   _ORDERS_PER_DAY["Shopify Payments"], _ORDERS_PER_DAY["PayPal"])
    per_day = 1 + rng.poisson(lam)
    day_key = np.concatenate([key[pay_of_day], tail_key])
    day_payout = np.concatenate([pay_of_day, np.full(len(tail_key), -1)])
    order_key = np.repeat(day_key, per_day)
    order_day = np.repeat(np.concatenate([day, tail_day]), per_day).astype(np.int32)
    order_payout = np.repeat(day_payout, per_day)
    m = len(order_day)
    amount = month.amounts(m, median=480, sigma=0.7, low=200, high=20_000, round_to=(0.3, 0.5, 0.15, 0.05, 0.0))
    per_mille = np.where(order_key % 2 == 0, _ORDER_FEES["Shopify Payments"][0], _ORDER_FEES["PayPal"][0])
    fee = _order_fees(amount, per_mille, _ORDER_FEES["PayPal"][1], mpm)
    settled = order_payout >= 0
    credit, amount, decided = _decidable_payouts(month, key, bank_day, first, order_key, order_day, order_payout, amount, fee)
    gross = _sum_by(order_payout[settled], amount[settled], payouts)
    names, prefixes = _stores(rng, stores)
    gateway_name = np.array(_GATEWAYS, dtype=object)
    order_uid = month.uids("ledger", m)
    month.add_ledger(
        m, uid=order_uid, prefix=prefixes[order_key // 2], type="order", day=order_day, amount_minor=amount,
        counterparty=_shoppers(month, m),
        description=np.char.add(np.char.add(names[order_key // 2].astype(str), " online order ("),
                                np.char.add(gateway_name[order_key % 2].astype(str), ")")).astype(object),
        case=np.where(settled, np.where(decided[np.maximum(order_payout, 0)], "processor_payout", "ambiguous_payout_order"),
                      "unsettled_order"),
    )
    upper = np.char.upper(names[store].astype(str))
    payer = np.where(gateway == 0, np.char.add("SHOPIFY PAYOUT ", upper), np.char.add("PAYPAL TRANSFER ", upper))
    bank_uid = month.uids("bank", payouts)
    case = "processor_payout"
    month.add_bank(
        payouts, uid=bank_uid, day=bank_day, amount_minor=credit, channel="CR TRF", payer=payer.astype(object),
        always_decisive=True, case=case,
        label=np.where(decided, np.where(gateway == 0, "shopify", "paypal"), "ambiguous_left_out"),
    )
    members = settled & decided[np.maximum(order_payout, 0)]
    kept = np.flatnonzero(decided)
    index = np.full(payouts, -1)
    index[kept] = np.arange(len(kept))
    group = month.add_groups(case, "payout", len(kept), (np.arange(len(kept)), bank_uid[kept]),
                             (index[order_payout[members]], order_uid[members]))
    month.add_adjustments(group, "processor_fee", credit[kept] - gross[kept])


def _stores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Web shop names and their order-number prefixes: the first store's orders are #1001..."""
    size = len(_ENGLISH_WORDS) * len(_SHOP_PRODUCTS)
    idx = _sample_space(rng, size, n)
    names, seen_names = [], set()
    for i in idx:
        name = base = f"{_ENGLISH_WORDS[i // len(_SHOP_PRODUCTS)][0]} {_SHOP_PRODUCTS[i % len(_SHOP_PRODUCTS)]}"
        k = 1
        while name in seen_names:  # only when there are more stores than names
            k += 1
            name = f"{base} {k}"
        seen_names.add(name)
        names.append(name)
    prefixes, seen = [], set()
    for i, name in enumerate(names):
        initials = "" if i == 0 else "".join(w[0] for w in name.split() if w.isalpha()).upper()
        candidate, k = initials, 1
        while candidate in seen or (i and not candidate):
            k += 1
            candidate = f"{initials}{k}"
        seen.add(candidate)
        prefixes.append("#" + candidate)
    return np.array(names, dtype=object), np.array(prefixes, dtype=object)


def _decidable_payouts(month: _Month, key: np.ndarray, bank_day: np.ndarray, first: np.ndarray,
                       order_key: np.ndarray, order_day: np.ndarray, order_payout: np.ndarray,
                       amount: np.ndarray, fee: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Credits such that each payout's orders are the only block that fits it.

    The payouts of one store and gateway settle its orders in consecutive blocks: a payout's block
    starts at the first order after the previous payout's block (the first payout's at the
    gateway's first order in the ledger) and ends on a day before the bank date. A block fits a
    credit when ``gross x (1 - 5%) <= credit <= gross``. When a longer or shorter block from the
    same start fits too, the credit moves to the nearest amount that only the true block fits
    (the fee stays within 0-5%); when there is none, the largest order of the block's last day
    grows by 5% of the block and the check runs again. Returns (credits, amounts, decided);
    ``decided`` is False only for a payout still ambiguous after that (not expected).
    """
    payouts = len(key)
    amount = amount.copy()
    settled = order_payout >= 0
    if payouts == 0:
        return np.zeros(0, dtype=np.int64), amount, np.zeros(0, dtype=bool)
    credit = _sum_by(order_payout[settled], (amount - fee)[settled], payouts)
    low = min(int(first.min()), int(order_day.min())) - 1
    width = month.n_days - low + 2
    keys = int(key.max()) + 1
    steps = np.arange(PAYOUT_MAX_SPAN_DAYS + PAYOUT_MAX_LAG_DAYS)
    k = key[:, None]
    end = (first - low)[:, None] + steps[None, :]
    inside = end <= (bank_day - 1 - low)[:, None]
    end = np.minimum(end, width - 1)
    true_last = None
    decided = np.ones(payouts, dtype=bool)
    for attempt in range(7):
        gross_grid = np.zeros((keys, width), dtype=np.int64)
        count = np.zeros((keys, width), dtype=np.int64)
        np.add.at(gross_grid, (order_key, order_day - low), amount)
        np.add.at(count, (order_key, order_day - low), 1)
        cum = np.concatenate([np.zeros((keys, 1), dtype=np.int64), np.cumsum(gross_grid, axis=1)], axis=1)
        prev_ne = np.maximum.accumulate(np.where(count > 0, np.arange(width), -1), axis=1)
        if true_last is None:
            last_order = np.full(payouts, -1)
            np.maximum.at(last_order, order_payout[settled], order_day[settled] - low)
            true_last = last_order
        block = prev_ne[k, end]  # the block ending on that day, named by its last order day
        total = cum[k, end + 1] - cum[k, (first - low)[:, None]]
        valid = inside & (block >= (first - low)[:, None])
        other = valid & (block != true_last[:, None])
        fits = other & ((100 - PROCESSOR_FEE_MAX_PCT) * total <= 100 * credit[:, None]) & (credit[:, None] <= total)
        ambiguous = np.flatnonzero(fits.any(axis=1))
        if len(ambiguous) == 0:
            return credit, amount, decided
        if attempt == 6:
            decided[ambiguous] = False
            return credit, amount, decided
        for p in ambiguous:
            own_total = int(amount[order_payout == p].sum())
            band = (-(-(100 - PROCESSOR_FEE_MAX_PCT) * own_total // 100), own_total)
            free = [band]
            for t in sorted({int(t) for t in total[p][other[p]]}):
                lo, hi = -(-(100 - PROCESSOR_FEE_MAX_PCT) * t // 100), t
                free = [part for f in free for part in ((f[0], min(f[1], lo - 1)), (max(f[0], hi + 1), f[1]))
                        if part[0] <= part[1]]
            target = int(credit[p])
            if free:
                credit[p] = min((min(max(target, f[0]), f[1]) for f in free), key=lambda x: (abs(x - target), x))
                continue
            members = np.flatnonzero((order_payout == p) & (order_day == true_last[p] + low))
            biggest = members[np.argmax(amount[members])]
            grow = -(-own_total * PROCESSOR_FEE_MAX_PCT // 100)
            amount[biggest] += grow
            credit[p] += grow
    return credit, amount, decided


#: case name -> function(month, count); bank cases first, ledger-only cases last
CASES: dict[str, Callable[[_Month, int], None]] = {
    "invoice_receipt": invoice_receipt,
    "same_amount_receipts": same_amount_receipts,
    "repeat_invoice": repeat_invoice,
    "cash_book_receipt": cash_book_receipt,
    "supplier_bill": supplier_bill,
    "cash_book_payment": cash_book_payment,
    "payroll": payroll,
    "bank_charge": bank_charge,
    "unknown_deposit": unknown_deposit,
    "multi_invoice_payment": multi_invoice_payment,
    "supplier_batch": supplier_batch,
    "payroll_batch": payroll_batch,
    "instalment": instalment,
    "short_payment": short_payment,
    "fx_receipt": fx_receipt,
    "stripe_payout": stripe_payout,
    "processor_payout": processor_payout,
    "open_invoice": open_invoice,
    "open_bill": open_bill,
    "open_fx_invoice": open_fx_invoice,
    "sales_order": sales_order,
}


# --------------------------------------------------------------------------------------------
# assembling the month
# --------------------------------------------------------------------------------------------
def _allocate(n_bank: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Rows per case; bank cases add up to exactly ``n_bank`` rows of bank.csv."""
    unknown = set(mix) - set(CASES) - {"duplicate_feed_line"}
    if unknown:
        raise ValueError(f"unknown case(s) {sorted(unknown)}; known: {sorted(CASE_MIX)}")
    counts = {case: int(n_bank * share) for case, share in mix.items()}
    counts["repeat_invoice"] = counts.get("repeat_invoice", 0) // 2 * 2
    if counts.get("instalment") == 1:  # instalments come in 2 lines or more
        counts["instalment"] = 0
    bank_cases = [c for c in counts if c not in LEDGER_ONLY_CASES]
    filler = "invoice_receipt" if "invoice_receipt" in counts else bank_cases[0]
    counts[filler] += n_bank - sum(counts[c] for c in bank_cases)
    return counts


#: how invoices may be numbered (``invoice_style``): ``default`` ``INV-2026-00123``, ``slash``
#: ``INV/26/123`` (two-digit year, no padding), ``numeric`` ``00000123`` (eight digits, no prefix)
INVOICE_ID_FORMATS = ("default", "slash", "numeric")
_NUMERIC_ID_WIDTH = 8


def _assign_ledger_ids(ledger: pl.DataFrame, start: date,
                       invoice_style: tuple[str, int] | None = None) -> pl.DataFrame:
    """Number each prefix in date order: INV-2026-00123 (more digits when needed).

    ``invoice_style`` (format in :data:`INVOICE_ID_FORMATS`, serial offset) numbers the invoices
    another way: serials continue from ``offset`` (the books did not start this month) in that
    format; without it every prefix counts from 1 in the default format.
    """
    start64 = np.datetime64(start, "D")
    fmt, offset = invoice_style or ("default", 0)
    if fmt not in INVOICE_ID_FORMATS:
        raise ValueError(f"unknown invoice id format {fmt!r}; known: {', '.join(INVOICE_ID_FORMATS)}")
    offset_of = pl.when(pl.col("prefix") == "INV").then(pl.lit(offset)).otherwise(pl.lit(0))
    widths = ledger.group_by("prefix").len().with_columns(
        width=pl.max_horizontal(pl.lit(5), (pl.col("len") + offset_of).cast(pl.Utf8).str.len_chars().cast(pl.Int64))
    )
    ledger = (
        ledger.with_columns(date=pl.Series(start64 + ledger["day"].to_numpy().astype("timedelta64[D]")))
        .sort(["prefix", "day", "uid"])
        .with_columns(seq=pl.int_range(1, pl.len() + 1).over("prefix"))
        .join(widths.select("prefix", "width"), on="prefix", how="left")
        .with_columns(year=pl.col("date").dt.year().cast(pl.Utf8))
        .with_columns(
            id=pl.concat_str([pl.col("prefix"), pl.col("year"), pl.col("seq").cast(pl.Utf8).str.zfill(pl.col("width"))], separator="-")
        )
    )
    if invoice_style is not None:
        styled = pl.col("prefix") == "INV"
        seq = pl.col("seq") + offset
        styled_id = {
            "default": pl.concat_str([pl.col("prefix"), pl.col("year"), seq.cast(pl.Utf8).str.zfill(pl.col("width"))], separator="-"),
            "slash": pl.concat_str([pl.col("prefix"), pl.col("year").str.slice(2), seq.cast(pl.Utf8)], separator="/"),
            "numeric": seq.cast(pl.Utf8).str.zfill(_NUMERIC_ID_WIDTH),
        }[fmt]
        ledger = ledger.with_columns(id=pl.when(styled).then(styled_id).otherwise(pl.col("id")),
                                     seq=pl.when(styled).then(seq).otherwise(pl.col("seq")))
    ledger = ledger.with_columns(reference=pl.when(pl.col("type") == "invoice").then(pl.col("id")).otherwise(pl.col("reference")))
    shop = pl.col("prefix").str.starts_with("#")
    if ledger.select(shop.any()).item():  # web shop orders are numbered like Shopify's: #1001, #JT1001
        ledger = ledger.with_columns(id=pl.when(shop).then(pl.col("prefix") + (pl.col("seq") + 1000).cast(pl.Utf8)).otherwise(pl.col("id")))
        ledger = ledger.with_columns(reference=pl.when(shop).then(pl.col("id")).otherwise(pl.col("reference")))
    if ledger["ref_uid"].is_not_null().any():  # a credit note names the order it refunds
        ids = ledger.select(ref_uid=pl.col("uid"), _ref_id=pl.col("id"))
        ledger = ledger.join(ids, on="ref_uid", how="left", maintain_order="left").with_columns(
            reference=pl.coalesce("reference", "_ref_id")).drop("_ref_id")
    return ledger


def _transpose_last_pair(seq: np.ndarray, width: int,
                         digits_shown: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Swap the right-most pair of different adjacent digits: 00123 -> 00132.

    ``digits_shown`` (per number) limits the swap to the digits actually written (a number
    written without leading zeros cannot swap one in).
    """
    power = 10 ** np.arange(width, dtype=np.int64)
    digits = (seq[:, None] // power) % 10
    differs = digits[:, :-1] != digits[:, 1:]
    if digits_shown is not None:
        differs &= np.arange(1, width)[None, :] < np.asarray(digits_shown)[:, None]
    possible = differs.any(axis=1)
    p = differs.argmax(axis=1)
    rows = np.arange(len(seq))
    low, high = digits[rows, p], digits[rows, p + 1]
    swapped = seq + (high - low) * power[p] + (low - high) * power[p] * 10
    return np.where(possible, swapped, seq), possible


def _invoice_ref_forms(invoices: pl.DataFrame, invoice_format: str = "default") -> pl.DataFrame:
    """How a customer may quote each invoice (the reference variants' texts), per id format.

    ``default`` ``INV-2026-00123``: compact ``INV202600123``, spaced ``inv 2026 00123``, number
    ``00123``, transposed ``INV-2026-00132``; ``slash`` ``INV/26/1069``: ``INV261069``,
    ``inv 26 1069``, ``1069``, ``INV/26/1096``; ``numeric`` ``00001069``: ``INV1069``,
    ``inv no 1069``, ``1069``, ``00001096``. ``_can_transpose`` is False for a number with no two
    different adjacent digits (it is truncated instead).
    """
    seq = invoices["seq"].to_numpy().astype(np.int64)
    prefix, year, uid = pl.col("prefix"), pl.col("year"), pl.col("uid")
    if invoice_format == "default":
        width = int(invoices["width"].max() or 5)
        transposed, possible = _transpose_last_pair(seq, width)
        number = pl.col("seq").cast(pl.Utf8).str.zfill(width)
        return invoices.select(
            ref_uid_=uid, ref_full=pl.col("id"), ref_compact=pl.concat_str([prefix, year, number]),
            ref_spaced=pl.concat_str([prefix.str.to_lowercase(), year, number], separator=" "),
            ref_number=number,
            ref_transposed=pl.concat_str([prefix, year, pl.Series(transposed).cast(pl.Utf8).str.zfill(width)], separator="-"),
            _can_transpose=pl.Series(possible),
        )
    shown = np.char.str_len(seq.astype(str))
    width = int(shown.max()) if len(seq) else 1
    transposed, possible = _transpose_last_pair(seq, width, shown)
    invoices = invoices.with_columns(_swapped=pl.Series(transposed), _shown=pl.Series(shown))
    number = pl.col("seq").cast(pl.Utf8)
    swapped = pl.col("_swapped").cast(pl.Utf8).str.zfill(pl.col("_shown"))
    if invoice_format == "slash":
        yy = year.str.slice(2)
        forms = {"ref_compact": pl.concat_str([prefix, yy, number]),
                 "ref_spaced": pl.concat_str([prefix.str.to_lowercase(), yy, number], separator=" "),
                 "ref_transposed": pl.concat_str([prefix, yy, swapped], separator="/")}
    else:
        forms = {"ref_compact": pl.concat_str([prefix, number]),
                 "ref_spaced": pl.concat_str([prefix.str.to_lowercase(), pl.lit("no"), number], separator=" "),
                 "ref_transposed": swapped.str.zfill(_NUMERIC_ID_WIDTH)}
    return invoices.select(
        ref_uid_=uid, ref_full=pl.col("id"), ref_compact=forms["ref_compact"], ref_spaced=forms["ref_spaced"],
        ref_number=number, ref_transposed=forms["ref_transposed"], _can_transpose=pl.Series(possible),
    )


def bank_description_expr(ref: pl.Expr) -> pl.Expr:
    """A bank line's description from its parts: channel, detail, then payer and reference in
    the line's ``layout`` order, cut at ``cut_at`` characters (columns of the internal rows)."""
    name_first = pl.col("layout") == "name_first"
    return pl.concat_str(
        [
            pl.col("channel"), pl.col("detail"),
            pl.when(name_first).then(pl.col("payer")).otherwise(ref),
            pl.when(name_first).then(ref).otherwise(pl.col("payer")),
        ],
        separator=" ", ignore_nulls=True,
    ).str.slice(0, pl.col("cut_at")).str.strip_chars_end()


def _render_bank(bank: pl.DataFrame, invoice_refs: pl.DataFrame) -> pl.DataFrame:
    """Write each bank description from its parts; label what the reader can actually see."""
    b = bank.join(invoice_refs, left_on="ref_uid", right_on="ref_uid_", how="left", maintain_order="left")
    variant = pl.col("ref_variant")
    full = pl.col("ref_full")
    invoice_ref = (
        pl.when(variant == "full").then(full)
        .when(variant == "compact").then(pl.col("ref_compact"))
        .when(variant == "spaced").then(pl.col("ref_spaced"))
        .when(variant == "number").then(pl.col("ref_number"))
        .when(variant == "transposed").then(pl.col("ref_transposed"))
        .when(variant == "truncated").then(full.str.slice(0, full.str.len_chars() - pl.col("trunc_k")))
    )
    ref = (
        pl.when(pl.col("ref_kind") == "invoice").then(invoice_ref)
        .when((pl.col("ref_kind") == "text") & (variant == "shown")).then(pl.col("ref_text"))
        .when((pl.col("ref_kind") == "list") & (variant == "shown")).then(pl.col("ref_text"))
    )
    b = b.with_columns(_ref=ref).with_columns(
        description=bank_description_expr(pl.col("_ref")),
        counterparty=pl.when(pl.col("show_counterparty")).then(pl.col("payer")),
        reference=pl.when(pl.col("show_reference")).then(pl.col("_ref")),
    )
    survived = pl.col("description").str.contains(pl.col("_ref"), literal=True).fill_null(False)
    seen = pl.when(pl.col("_ref").is_null() | survived).then(variant).otherwise(pl.lit("cut"))
    b = b.with_columns(_seen=seen).with_columns(
        _decisive=pl.col("always_decisive") | pl.col("_seen").is_in(DECISIVE_VARIANTS)
    )
    return b.drop("ref_full", "ref_compact", "ref_spaced", "ref_number", "ref_transposed")


def _make_decidable(bank: pl.DataFrame, ledger: pl.DataFrame, linked: pl.Series) -> pl.DataFrame:
    """Give a full reference to lines that name and amount cannot tie to one ledger item."""
    keys = ["ledger_type", "party_key", "amount_minor"]
    siblings = (
        ledger.filter(pl.col("party_key").is_not_null())
        .with_columns(_open=~pl.col("uid").is_in(linked.implode()))
        .group_by(["type", "party_key", "amount_minor"])
        .agg(_n_same=pl.len(), _n_open=pl.col("_open").sum())
        .rename({"type": "ledger_type"})
    )
    vague = ~pl.col("_decisive") & pl.col("party_key").is_not_null() & ~pl.col("own_check")
    b = (
        bank.join(siblings, on=keys, how="left", maintain_order="left")
        .with_columns(_vague=vague)
        .with_columns(_rank=pl.col("_vague").cast(pl.Int64).cum_sum().over(keys, order_by=["day", "uid"]) - 1)
    )
    alone = pl.col("_n_same").fill_null(1) == 1
    by_elimination = (pl.col("_n_open").fill_null(0) == 0) & (pl.col("_rank") == 0)
    fix = pl.col("_vague") & ~(pl.col("name_ok") & (alone | by_elimination))
    return b.with_columns(
        ref_variant=pl.when(fix & (pl.col("ref_kind") == "invoice")).then(pl.lit("full"))
        .when(fix & (pl.col("ref_kind") == "text")).then(pl.lit("shown"))
        .otherwise(pl.col("ref_variant")),
        layout=pl.when(fix).then(pl.lit("ref_first")).otherwise(pl.col("layout")),
    ).drop("_n_same", "_n_open", "_vague", "_rank")


def _duplicate_lines(month: _Month, bank: pl.DataFrame, n: int) -> pl.DataFrame:
    """Deliver ``n`` lines twice (same id), as overlapping statement downloads do."""
    order = ["_file_day", "_file_seq"]
    bank = bank.with_columns(_file_day=pl.col("day"), _file_seq=pl.int_range(pl.len()).cast(pl.Float64))
    if n <= 0 or bank.height == 0:
        return bank.sort(order)
    rows = np.sort(month.rng.choice(bank.height, size=min(n, bank.height), replace=False))
    copies = bank[rows].with_columns(
        _file_day=pl.min_horizontal(pl.col("day") + 1, pl.lit(month.n_days - 1)),
        _file_seq=pl.col("_file_seq") * 0 - 1.0 + pl.int_range(pl.len()).cast(pl.Float64) / (len(rows) + 1),
        variant=pl.lit("duplicate_of_earlier_line"),
        case=pl.lit("duplicate_feed_line"),
    )
    return pl.concat([bank, copies]).sort(order)


def _fill_lists(bank: pl.DataFrame, lists: pl.DataFrame, ledger: pl.DataFrame, invoice_refs: pl.DataFrame) -> pl.DataFrame:
    """The text of lines that list several invoices, in the line's style (lines that list none get
    the ``list_full_then_numbers`` text, used if the decidability check has to show it)."""
    members = (
        lists.join(ledger.select("uid", "seq"), left_on="ledger_uid", right_on="uid")
        .join(invoice_refs.select(ledger_uid="ref_uid_", id="ref_full", number="ref_number"), on="ledger_uid")
        .sort(["bank_uid", "seq"])
        .group_by("bank_uid", maintain_order=True)
        .agg(pl.col("id"), pl.col("number"))
        .select(
            "bank_uid",
            _t_numbers=pl.lit("INV ") + pl.col("number").list.join("/"),
            _t_full=pl.col("id").list.join(" "),
            _t_first=pl.concat_str([pl.col("id").list.first(), pl.col("number").list.slice(1).list.join(" ")], separator=" "),
        )
    )
    style = pl.col("label")
    return bank.join(members, left_on="uid", right_on="bank_uid", how="left", maintain_order="left").with_columns(
        ref_text=pl.when((pl.col("ref_kind") == "list") & pl.col("ref_text").is_null())
        .then(pl.when(style == "list_numbers").then(pl.col("_t_numbers"))
              .when(style == "list_full").then(pl.col("_t_full")).otherwise(pl.col("_t_first")))
        .otherwise(pl.col("ref_text"))
    ).drop("_t_numbers", "_t_full", "_t_first")


def _make_compound_decidable(bank: pl.DataFrame, ledger: pl.DataFrame, links: pl.DataFrame,
                             month: _Month) -> pl.DataFrame:
    """Show the references of compound and approximate lines that name and amount cannot decide.

    Applies to lines with ``own_check`` whose description does not identify their items: invoice
    lists without numbers (``multi_invoice_payment``, ``supplier_batch``) and short / FX payments
    whose reference is missing, transposed, truncated or cut. The candidates of such a line are
    the items of its party and type dated 0-60 days before it (foreign ones converted at the
    line's date), except items settled by a line that identifies them by reference (elimination,
    as for one-to-one twins). It is decidable when the payer is printed in the ledger's script and, among at
    most MAX_SUBSET_CANDIDATES candidates, exactly one explanation exists: for a list line one
    subset of 1-4 items summing exactly to the line and no single item within the short / FX
    band; for a short / FX line no exact subset and exactly one item within the band. Otherwise
    the line lists its invoice numbers (or shows the full reference at the front).
    """
    vague = pl.col("own_check") & ~pl.col("_decisive") & pl.col("party_key").is_not_null()
    lines = bank.filter(vague).select("uid", "day", "amount_minor", "party_key", "ledger_type", "name_ok", "ref_kind")
    if lines.height == 0:
        return bank
    decisive_groups = (
        links.filter(pl.col("side") == "bank").join(bank.select("uid", "_decisive"), on="uid")
        .group_by("group").agg(pl.col("_decisive").all()).filter(pl.col("_decisive"))["group"]
    )
    identified = links.filter((pl.col("side") == "ledger") & pl.col("group").is_in(decisive_groups.implode()))["uid"]
    items = ledger.filter(pl.col("party_key").is_not_null() & ~pl.col("uid").is_in(identified.implode())).select(
        "party_key", ledger_type="type", c_uid="uid", c_day="day", c_amount="amount_minor", c_currency="currency")
    cand = lines.join(items, on=["party_key", "ledger_type"]).filter(
        pl.col("c_day").is_between(pl.col("day") - MAX_PAYMENT_LAG_DAYS, pl.col("day"))
    )
    foreign = cand["c_currency"].is_not_null().to_numpy()
    conv = cand["c_amount"].to_numpy().copy()
    if foreign.any():
        rate = month.rate_on(cand["c_currency"].to_numpy()[foreign].astype(object), cand["day"].to_numpy()[foreign])
        conv[foreign] = _convert(conv[foreign], rate, 2, currency_exponent(month.currency))
    mpm = month.minor_per_major
    cand = cand.with_columns(
        c=pl.Series(np.abs(conv)), a=pl.col("amount_minor").abs(), _foreign=pl.Series(foreign),
    ).filter(pl.Series(np.sign(conv)) == pl.col("amount_minor").sign())
    tolerance = pl.when(pl.col("_foreign")).then((pl.col("c") * FX_TOLERANCE_PCT + 99) // 100 + FX_TOLERANCE_HKD * mpm).otherwise(
        pl.max_horizontal((pl.col("c") * SHORT_PAYMENT_TOLERANCE_PCT + 99) // 100, pl.lit(SHORT_PAYMENT_MIN_TOLERANCE_HKD * mpm)))
    cand = cand.with_columns(_band=(pl.col("a") < pl.col("c")) & (pl.col("a") >= pl.col("c") - tolerance))
    counts = cand.group_by("uid").agg(n=pl.len(), band=pl.col("_band").sum())
    small = cand.join(counts.filter(pl.col("n") <= MAX_SUBSET_CANDIDATES).select("uid"), on="uid").select(
        "uid", "a", "c", i=pl.col("c_uid").rank("ordinal").over("uid"))
    exact = [small.filter(pl.col("c") == pl.col("a")).select("uid")]
    level = small.select("uid", "a", last="i", total="c")
    for _ in range(MAX_SUBSET_SIZE - 1):
        level = level.join(small.select("uid", "i", "c"), on="uid").filter(pl.col("i") > pl.col("last")).select(
            "uid", "a", last="i", total=pl.col("total") + pl.col("c")).filter(pl.col("total") <= pl.col("a"))
        exact.append(level.filter(pl.col("total") == pl.col("a")).select("uid"))
    exact_n = pl.concat(exact).group_by("uid").agg(exact=pl.len())
    verdict = (
        lines.join(counts, on="uid", how="left").join(exact_n, on="uid", how="left")
        .with_columns(pl.col("n", "band", "exact").fill_null(0))
        .with_columns(ok=pl.col("name_ok") & (pl.col("n") <= MAX_SUBSET_CANDIDATES) & pl.when(pl.col("ref_kind") == "list")
                      .then((pl.col("exact") == 1) & (pl.col("band") == 0))
                      .otherwise((pl.col("exact") == 0) & (pl.col("band") == 1)))
    )
    fix = verdict.filter(~pl.col("ok")).select("uid", _fix=pl.lit(True))
    b = bank.join(fix, on="uid", how="left", maintain_order="left").with_columns(pl.col("_fix").fill_null(False))
    is_list = pl.col("ref_kind") == "list"
    return b.with_columns(
        ref_variant=pl.when(pl.col("_fix") & is_list).then(pl.lit("shown"))
        .when(pl.col("_fix")).then(pl.lit("full")).otherwise(pl.col("ref_variant")),
        layout=pl.when(pl.col("_fix") & ~is_list).then(pl.lit("ref_first")).otherwise(pl.col("layout")),
        label=pl.when(pl.col("_fix") & is_list)
        .then(pl.when(pl.col("ledger_type") == "bill").then(pl.lit("list_refs")).otherwise(pl.lit("list_full_then_numbers")))
        .otherwise(pl.col("label")),
    ).drop("_fix")


#: columns of ``stripe_payouts.csv``, as Stripe documents its itemized payout reconciliation report
STRIPE_COLUMNS = [
    "automatic_payout_id", "automatic_payout_effective_at", "balance_transaction_id", "created_utc",
    "available_on_utc", "currency", "gross", "fee", "net", "reporting_category", "source_id",
    "customer_facing_amount", "description", "payment_metadata[order_id]",
]
FX_COLUMNS = ["date", "base", "quote", "rate"]


def _stripe_report(rows: pl.DataFrame, ledger: pl.DataFrame, start: date, currency: str) -> pl.DataFrame:
    """The itemized payout reconciliation report (Stripe's column names and formats)."""
    start_dt = pl.lit(date(start.year, start.month, start.day)).cast(pl.Datetime("us"))
    order_id = pl.col("_order_id")
    money = [format_minor_expr(pl.col(f"{name}_minor"), pl.lit(currency)) for name in ("gross", "fee")]
    kind = pl.col("description_kind")
    return (
        rows.join(ledger.select(order_uid="uid", _order_id="id"), on="order_uid", how="left", maintain_order="left")
        .sort(["effective_day", "payout_id", "created_second", "balance_transaction_id"])
        .select(
            automatic_payout_id="payout_id",
            automatic_payout_effective_at=(start_dt + pl.duration(days=pl.col("effective_day"))).dt.strftime("%Y-%m-%d %H:%M:%S"),
            balance_transaction_id="balance_transaction_id",
            created_utc=(start_dt + pl.duration(seconds=pl.col("created_second"))).dt.strftime("%Y-%m-%d %H:%M:%S"),
            available_on_utc=(start_dt + pl.duration(days=pl.col("available_day"))).dt.strftime("%Y-%m-%d %H:%M:%S"),
            currency=pl.lit(currency.lower()),
            gross=money[0], fee=money[1],
            net=format_minor_expr(pl.col("gross_minor") - pl.col("fee_minor"), pl.lit(currency)),
            reporting_category="reporting_category",
            source_id="source_id",
            customer_facing_amount=pl.when(pl.col("reporting_category") != "fee").then(money[0]),
            description=pl.when(kind == "order").then(pl.lit("Order ") + order_id)
            .when(kind == "checkout").then(pl.lit("Web shop checkout"))
            .when(kind == "refund").then(pl.lit("Refund for order ") + order_id)
            .otherwise(kind),
            **{"payment_metadata[order_id]": pl.when(pl.col("metadata_shown")).then(order_id)},
        )
    )


def _fx_table(month: _Month) -> pl.DataFrame:
    """fx.csv: the published mid rates (units of the account currency per one foreign unit)."""
    frames = []
    start64 = np.datetime64(month.start, "D")
    for code in sorted(month.fx):
        rate_e4, published = month.rates(code)
        day = np.arange(-FX_HISTORY_DAYS, month.n_days)[published]
        frames.append(pl.DataFrame({
            "date": start64 + day.astype("timedelta64[D]"), "base": code, "quote": month.currency,
            "rate": [f"{r // 10_000}.{r % 10_000:04d}" for r in rate_e4[published].tolist()],
        }))
    return pl.concat(frames).sort(["date", "base"]) if frames else pl.DataFrame(schema=dict.fromkeys(FX_COLUMNS, pl.Utf8))


def resolve_mix(mix: str | Mapping[str, float] | None) -> dict[str, float]:
    """A mix by name (:data:`MIXES`) or as {case: share}; ``None`` is :data:`DEFAULT_MIX`."""
    if mix is None:
        return dict(MIXES[DEFAULT_MIX])
    if isinstance(mix, str):
        if mix not in MIXES:
            raise ValueError(f"unknown mix {mix!r}; known: {', '.join(MIXES)}")
        return dict(MIXES[mix])
    return dict(mix)


def generate(n_bank: int, seed: int = 0, start: date = DEFAULT_START, *, currency: str = "HKD",
             bank_account: str = DEFAULT_BANK_ACCOUNT,
             mix: str | Mapping[str, float] | None = None, profile=None,
             open_items_ratio: float | None = None) -> dict[str, pl.DataFrame]:
    """Generate one month of bank lines, ledger items and the true matches between them.

    Parameters
    ----------
    n_bank
        Rows of ``bank.csv``, duplicate deliveries included.
    seed
        Seed of the random stream; the same arguments give byte-identical output.
    start
        First day of the month (the statement runs to the same day of the next month, excl.).
    currency
        ISO 4217 code of the account; amounts get exactly its decimals.
    bank_account
        The account number printed on every bank line.
    mix
        ``"full"`` (default: every case, :data:`FULL_MIX`), ``"foundation"`` (the one-to-one
        month, :data:`FOUNDATION_MIX`, byte-identical to the foundation's generator) or a share
        per case (cases not named are left out).
    profile
        Variation profile(s) of :mod:`benchmarks.profiles` that make the month look like real
        data: a name (``"holdout"``), names joined by commas (``"name_forms,nameless"``), a
        list of names or a :class:`benchmarks.profiles.Profile`. ``None`` (default): the month
        exactly as without profiles.
    open_items_ratio
        Ledger rows per bank row (e.g. 2.7): the ledger-only cases (open invoices, sales orders,
        open bills) grow to make the ledger that large. Default: the profile's own ratio, or the
        mix's shares (~1.4 for ``full``).

    Returns
    -------
    dict
        ``bank`` (:data:`BANK_COLUMNS` + ``amount_minor``, ``case``, ``variant``), ``ledger``
        (:data:`LEDGER_COLUMNS` + ``amount_minor``, ``case``) and ``truth``
        (:data:`TRUTH_COLUMNS` + ``case``, and for a mix with compound cases ``adjustments``
        and ``open_amount``) polars frames; ``fx`` (:data:`FX_COLUMNS`) when the month has
        foreign-currency invoices and ``stripe`` (:data:`STRIPE_COLUMNS`) when it has Stripe
        payouts.

    Examples
    --------
    >>> month = generate(2_000, seed=1)
    >>> month["bank"].height
    2000
    >>> month["truth"].columns[:4]
    ['group_id', 'match_type', 'bank_ids', 'ledger_ids']
    >>> sorted(generate(2_000, seed=1, mix="foundation"))
    ['bank', 'ledger', 'truth']
    """
    if n_bank < 1:
        raise ValueError("n_bank must be at least 1")
    currency_exponent(currency)  # raises on an unknown code
    shares = resolve_mix(mix)
    extended = any(case not in FOUNDATION_MIX for case in shares)
    rng = np.random.default_rng(seed)
    year, month_no = start.year + (start.month // 12), start.month % 12 + 1
    end = date(year, month_no, min(start.day, calendar.monthrange(year, month_no)[1]))
    month = _Month(rng=rng, start=start, n_days=(end - start).days, currency=currency, bank_account=bank_account)
    counts = _allocate(n_bank, shares)
    month.parties = _build_parties(month, n_bank)
    variation = None
    if profile is not None or open_items_ratio is not None:
        from benchmarks import profiles  # the profiles build on this module

        variation = profiles.Variation(profiles.resolve_profile(profile, open_items_ratio=open_items_ratio), seed)
        variation.vary_parties(month)
    for case, fn in CASES.items():
        if variation is not None and case == LEDGER_ONLY_CASES[0]:
            counts.update(variation.open_item_counts(month, n_bank, counts))
        if counts.get(case):
            rows = sum(frame.height for frame in month.bank)
            fn(month, counts[case])
            added = sum(frame.height for frame in month.bank) - rows
            if case not in LEDGER_ONLY_CASES and added != counts[case]:
                raise AssertionError(f"case {case} wrote {added} bank rows, not {counts[case]}")

    bank = pl.concat(month.bank)
    ledger = pl.concat(month.ledger)
    invoice_format, invoice_style = "default", None
    if variation is not None:
        bank, ledger = variation.repeat_amounts(month, bank, ledger)
        invoice_style = variation.invoice_style()
        invoice_format = invoice_style[0] if invoice_style else "default"
    ledger = _assign_ledger_ids(ledger, start, invoice_style)
    links = pl.concat(month.links) if month.links else pl.DataFrame(schema=_LINKS)
    groups = pl.concat(month.groups) if month.groups else pl.DataFrame(schema=_GROUPS)
    one_to_one = groups.filter(pl.col("match_type") == "one_to_one")["group"]
    # items settled by a compound line do not count as identified for elimination
    linked = links.filter((pl.col("side") == "ledger") & pl.col("group").is_in(one_to_one.implode()))["uid"]
    invoice_refs = _invoice_ref_forms(ledger.filter(pl.col("type") == "invoice"), invoice_format)
    bank = bank.join(invoice_refs.select("ref_uid_", "_can_transpose"), left_on="ref_uid", right_on="ref_uid_",
                     how="left", maintain_order="left")
    bank = bank.with_columns(  # 11111 has no transposition: it gets truncated instead
        ref_variant=pl.when((pl.col("ref_variant") == "transposed") & ~pl.col("_can_transpose").fill_null(True))
        .then(pl.lit("truncated")).otherwise(pl.col("ref_variant"))
    ).drop("_can_transpose")
    invoice_refs = invoice_refs.drop("_can_transpose")
    if month.lists:
        bank = _fill_lists(bank, pl.concat(month.lists), ledger, invoice_refs)
    bank = _render_bank(bank, invoice_refs)
    bank = _make_decidable(bank, ledger, linked)
    if bank["own_check"].any():
        bank = _make_compound_decidable(bank, ledger, links, month)
    bank = bank.drop("description", "counterparty", "reference", "_seen", "_decisive", "_ref")
    bank = _render_bank(bank, invoice_refs)

    # bank ids follow statement order: by date, then as the bank happened to post them
    start64 = np.datetime64(start, "D")
    bank = bank.with_columns(_post=pl.Series(rng.permutation(bank.height))).sort(["day", "_post"])
    id_width = max(9, len(str(bank.height)))
    label = pl.col("label")
    bank = bank.with_columns(
        id=pl.lit("B") + (pl.int_range(1, pl.len() + 1)).cast(pl.Utf8).str.zfill(id_width),
        date=pl.Series(start64 + bank["day"].to_numpy().astype("timedelta64[D]")),
        variant=pl.when(label.is_not_null() & (pl.col("ref_kind") == "invoice")).then(label + pl.lit(":") + pl.col("_seen"))
        .when(label.is_not_null()).then(label)
        .when(pl.col("ref_kind") == "invoice").then(pl.col("_seen"))
        .when(pl.col("ref_kind") == "text").then(pl.col("_seen").replace({"shown": "reference", "none": "name_only"}))
        .otherwise(pl.col("variant")),
    )
    adjustments = pl.concat(month.adjustments) if month.adjustments else pl.DataFrame(schema=_ADJUSTMENTS)
    opens = pl.concat(month.opens) if month.opens else pl.DataFrame(schema=_OPEN)
    truth = _truth(groups, links, bank.select("uid", "id"), ledger.select("uid", "id"),
                   (adjustments, opens, currency) if extended else None)
    lines = bank  # each line once, with the parts it was written from (for the variation profiles)
    bank = _duplicate_lines(month, bank, counts.get("duplicate_feed_line", 0))
    bank_out = bank.select(
        "id", "date",
        amount=format_minor_expr(pl.col("amount_minor"), pl.lit(currency)),
        currency=pl.lit(currency), description="description", counterparty="counterparty",
        reference="reference", account=pl.lit(bank_account), amount_minor="amount_minor",
        case="case", variant="variant",
    )
    ledger_currency = pl.col("currency").fill_null(currency)
    ledger_out = ledger.sort(["date", "id"]).select(
        "id", "date",
        amount=format_minor_expr(pl.col("amount_minor"), ledger_currency),
        currency=ledger_currency, description="description", counterparty="counterparty",
        reference="reference", account="account", type="type",
        due_date=pl.when(pl.col("due_day").is_not_null()).then(
            pl.col("date") + pl.duration(days=pl.col("due_day") - pl.col("day"))
        ),
        amount_minor="amount_minor", case="case",
    )
    out = {"bank": bank_out, "ledger": ledger_out, "truth": truth}
    if month.fx:
        out["fx"] = _fx_table(month)
    if month.stripe:
        out["stripe"] = _stripe_report(pl.concat(month.stripe), ledger, start, currency)
    if variation is not None:
        out = variation.vary_month(month, out, lines, ledger, invoice_refs)
    return out


def _truth(groups: pl.DataFrame, links: pl.DataFrame, bank_ids: pl.DataFrame, ledger_ids: pl.DataFrame,
           extras: tuple[pl.DataFrame, pl.DataFrame, str] | None = None) -> pl.DataFrame:
    for side, ids in (("bank", bank_ids), ("ledger", ledger_ids)):
        joined = (  # sort first: a plain list aggregation is much faster than a sorting one
            links.filter(pl.col("side") == side).join(ids, on="uid", how="left").sort(["group", "id"])
            .group_by("group").agg(pl.col("id")).select("group", pl.col("id").list.join(ID_SEPARATOR).alias(f"{side}_ids"))
        )
        groups = groups.join(joined, on="group", how="left")
    columns = {}
    if extras is not None:
        adjustments, opens, currency = extras
        order = {cause: i for i, cause in enumerate(ADJUSTMENT_CAUSES)}
        listed = (
            adjustments.with_columns(_order=pl.col("cause").replace_strict(order, return_dtype=pl.Int64))
            .sort(["group", "_order"])
            .group_by("group", maintain_order=True)
            .agg(pl.concat_str([pl.lit('{"cause":"'), pl.col("cause"), pl.lit('","amount":"'),
                                format_minor_expr(pl.col("amount_minor"), pl.lit(currency)), pl.lit('"}')]).alias("_adj"))
            .select("group", _adj=pl.lit("[") + pl.col("_adj").list.join(",") + pl.lit("]"))
        )
        open_text = opens.select("group", _open=format_minor_expr(pl.col("open_minor"), pl.col("open_currency").fill_null(currency)))
        groups = groups.join(listed, on="group", how="left").join(open_text, on="group", how="left")
        columns = {"adjustments": pl.col("_adj").fill_null("[]"), "open_amount": pl.col("_open").fill_null("")}
    truth = groups.with_columns(pl.col("bank_ids", "ledger_ids").fill_null("")).sort(["bank_ids", "ledger_ids"])
    width = max(7, len(str(truth.height)))
    return truth.select(
        group_id=pl.lit("T") + pl.int_range(1, pl.len() + 1).cast(pl.Utf8).str.zfill(width),
        match_type="match_type", bank_ids="bank_ids", ledger_ids="ledger_ids", case="case", **columns,
    )


def labels(month: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per distinct id: the case and variant that produced it, and how many rows carry it.

    ``delivered`` is 2 for a bank line the feed delivered twice (case ``duplicate_feed_line``
    marks the second delivery in the bank frame; here the line keeps its own case).
    """
    bank = month["bank"]
    delivered = bank.group_by("id").len("delivered")
    originals = bank.filter(pl.col("case") != "duplicate_feed_line").join(delivered, on="id", how="left", maintain_order="left")
    return pl.concat([
        originals.select(side=pl.lit("bank"), id="id", case="case", variant="variant",
                         delivered=pl.col("delivered").cast(pl.Int64)),
        month["ledger"].select(side=pl.lit("ledger"), id="id", case="case",
                               variant=pl.col("variant") if "variant" in month["ledger"].columns
                               else pl.lit(None, dtype=pl.Utf8), delivered=pl.lit(1, dtype=pl.Int64)),
    ])


#: optional outputs: month key -> file name
EXTRA_FILES = {"fx": "fx.csv", "stripe": "stripe_payouts.csv"}


def save(month: Mapping[str, pl.DataFrame], out_dir: str | Path) -> dict[str, Path]:
    """Write a generated month as ``bank.csv``, ``ledger.csv``, ``truth.csv`` and ``labels.csv``,
    plus ``fx.csv`` and ``stripe_payouts.csv`` when the month has them.

    Returns
    -------
    dict
        Paths by name: ``bank``, ``ledger``, ``truth``, ``labels`` and, when written, ``fx`` and
        ``stripe``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.csv" for name in ("bank", "ledger", "truth", "labels")}
    month["bank"].select(BANK_COLUMNS).write_csv(paths["bank"])
    month["ledger"].select(LEDGER_COLUMNS).write_csv(paths["ledger"])
    truth = month["truth"]
    truth.select(TRUTH_COLUMNS + [c for c in TRUTH_EXTRA_COLUMNS if c in truth.columns]).write_csv(paths["truth"])
    labels(month).write_csv(paths["labels"])
    for name, file_name in EXTRA_FILES.items():
        frame = month.get(name)
        if frame is not None and frame.height:
            paths[name] = out / file_name
            frame.write_csv(paths[name])
    return paths


def write(out_dir: str | Path, n_bank: int, seed: int = 0, start: date = DEFAULT_START,
          **kwargs) -> dict[str, Path]:
    """Generate a month (see :func:`generate`) and :func:`save` it to ``out_dir``.

    Examples
    --------
    >>> import tempfile
    >>> paths = write(tempfile.mkdtemp(), 500, seed=3, mix="foundation")
    >>> sorted(paths)
    ['bank', 'labels', 'ledger', 'truth']
    """
    return save(generate(n_bank, seed=seed, start=start, **kwargs), out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write one synthetic month (bank.csv, ledger.csv, truth.csv, labels.csv, and "
                    "fx.csv / stripe_payouts.csv when the mix has FX invoices / Stripe payouts).",
    )
    parser.add_argument("--bank-lines", "--scale", dest="bank_lines", type=int, default=10_000,
                        help="rows of bank.csv (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START,
                        help="first day of the month, YYYY-MM-DD (default 2026-10-01)")
    parser.add_argument("--mix", choices=sorted(MIXES), default=DEFAULT_MIX,
                        help=f"case mix (default {DEFAULT_MIX}; 'foundation' is the one-to-one month)")
    parser.add_argument("--profile", metavar="NAME[,NAME]",
                        help="variation profile(s) of benchmarks/profiles.py: name_forms, reference_degradation, "
                             "nameless, amount_repetition, id_numbers, script_mix, ledger_style, all (the tuning "
                             "profile) or holdout (held out: never tune on it)")
    parser.add_argument("--open-items-ratio", type=float, metavar="R",
                        help="ledger rows per bank row (grows open invoices, orders, bills; 'all' uses 2.7, "
                             "'holdout' 3.0)")
    parser.add_argument("--adversarial", metavar="KIND",
                        help="write an adversarial month instead (no_true_pair: every amount 100.00, no bank "
                             "line has a ledger item, truth.csv empty)")
    parser.add_argument("--with-serials", action="store_true",
                        help="adversarial no_true_pair: invoice serials equal the bank lines' customer numbers")
    parser.add_argument("--ledger-lines", type=int, help="adversarial months: rows of ledger.csv (default 4x bank)")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.adversarial:
        from benchmarks.adversarial import adversarial

        try:
            month = adversarial(args.adversarial, args.bank_lines, args.ledger_lines or 4 * args.bank_lines,
                                seed=args.seed, start=args.start, with_serials=args.with_serials)
        except ValueError as exc:
            parser.error(str(exc))
        paths = save(month, args.out)
    else:
        if args.profile is not None or args.open_items_ratio is not None:
            from benchmarks.profiles import resolve_profile

            try:
                resolve_profile(args.profile, open_items_ratio=args.open_items_ratio)
            except ValueError as exc:
                parser.error(str(exc))
        paths = write(args.out, args.bank_lines, seed=args.seed, start=args.start, mix=args.mix,
                      profile=args.profile, open_items_ratio=args.open_items_ratio)
    elapsed = time.perf_counter() - started
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {elapsed:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
