"""Variation profiles: make a generated benchmark month look like real bank and ledger data.

Stage: benchmarks, outside the feeds -> engine -> adapters flow. :mod:`benchmarks.generate`
builds a month whose "Decidability" fix-ups encode our own assumptions (payers never printed as
initials only, references always identifying, ...). Independent months written by a different
generator broke those assumptions and recon did far worse on them. A *profile* is a named,
documented, seeded transformation of the month that brings back what real data has, while keeping
the truth exactly right: every truth group still balances (bank total = ledger total converted +
adjustments - open_amount) and ids are unchanged or the truth follows them.

``generate(n, seed, profile="name_forms,nameless")`` (or ``python -m benchmarks.generate
--profile name_forms,nameless``) applies the named profiles; without a profile the month is
byte-for-byte what it was before profiles existed.

How a profile is applied
------------------------
*Structural* variations act inside :func:`benchmarks.generate.generate` before the bank text is
written, so the generator's own decidability fix-ups see them: ``script_mix`` (names of parties,
before any case runs), the ledger size (``open_items_ratio``, when the ledger-only cases run),
``amount_repetition`` (amounts, before ids are given) and ``ledger_style`` (invoice ids).
*Surface* variations act on the written month: ``name_forms``, ``reference_degradation``,
``id_numbers`` and ``nameless`` rewrite bank lines from their parts (channel, detail, payer,
reference) and, for ``nameless``, move ledger dates and amounts and add adjustments to the truth.

Every step draws from its own random stream (seed, step name), so a profile is deterministic for
a seed and adding one profile does not reshuffle the others' choices. Surface steps change
one-to-one lines (one bank line, one ledger item) and, for names and id numbers, compound lines
whose reference decides them; the rates below are shares of those eligible lines.

Profiles (tuning)
-----------------
``name_forms``
    35% of the bank lines paid by a person printed in romanised Cantonese are printed surname
    last (``KWAN MING CHOW`` for ledger ``Chow Kwan Ming``), as initials (``HO H L``) or with an
    honorific (``MS KWOK HOI SIU``; MR / MRS / MS / DR), a third each; 30% of company lines get
    another legal suffix (``CO LTD``, ``LIMITED``, ``(HK) LTD``, ``CO., LIMITED``...) or, for a
    name in Chinese, a space before the suffix (``明珠物流 有限公司``).
``reference_degradation``
    30% of the one-to-one invoice receipts whose reference identifies the invoice get it
    damaged: truncated by one digit (``INV-2026-0106``), two adjacent different digits swapped
    anywhere in the serial (``INV-2026-10069``, ``INV-2026-01648``), one digit wrong, only the
    serial without leading zeros (``1163``), or no reference at all (25/25/15/20/15%).
``nameless``
    30% of the cash-book receipts on a weekday become ``CHEQUE DEPOSIT 28,808.15``: no name, the
    receipt booked (``Cheque received``) 5-20 days before the deposit; 4% of the invoice receipts
    on a weekday (invoices of HKD 2,000 or more) become ``TT IN 31,424.33``: the invoice booked
    the same day, the remitting bank's HKD 50.00 charge deducted (the truth gains a
    ``bank_charge`` adjustment).
``amount_repetition``
    10% of the customers are on a monthly retainer of HKD 3,800.00 or 2,500.00: every plain
    invoice they pay or owe this month is of that amount, and each has this month's retainer
    invoice open (case ``retainer_invoice``, dated in the first days of the month); name and
    (possibly damaged) reference must decide.
``id_numbers``
    35% of the credits with a payer print an id number before the name: a 10-digit FPS id on
    FPS lines (``FPS CR 9255227770 LO FUNG MAN``), the payer's account number on transfers
    (``CR TRF 024-318827-001 ...``), an 8-digit payer number on autopay credits; fixed per payer.
``script_mix``
    20% of the customers whose bank and ledger names share a script get the other script on
    one side: the ledger keeps the Chinese name while the bank prints the English one, or the
    reverse (half each). Such lines are decidable only by reference or a unique amount (the
    generator's fix-up shows the reference where neither would do).
``ledger_style``
    invoices numbered ``INV/26/1069`` (two-digit year, serial without padding), continuing from
    a serial of 800-1,500 (the books did not start this month).
``all``
    every profile above together, and a ledger 2.7x the bank (mostly open invoices and sales
    orders): the tuning profile.

The held-out profile
--------------------
``holdout`` tests the same kinds of variation with rates and forms no tuning profile uses; the
team never tunes the matcher on it (it measures generalisation; see ``benchmarks/RESULTS.md``):

* names (45% of person lines, 40% of company lines): English first name and surname
  (``PETER CHAN``), initials first (``T M CHAN``), surname and comma (``CHAN, TAI MAN``), cut at
  a 12-character field (``CHEUNG KA WA``); companies without legal suffix, with abbreviated
  trade words (``KAM WING TRDG CO LTD``) or cut at 18 characters; Chinese names without
  ``有限公司``;
* references (40%): two digits dropped (``INV-2026-010``), prefix changed (``IN2026-01069``,
  ``INV26-1069``), one inner digit dropped, one digit doubled, absent (20/25/20/15/20%);
* nameless lines: half of the weekday cash-book receipts as ``CHQ DEP`` / ``CASH DEP`` with
  the receipt booked 21-40 days earlier; 8% of invoice receipts as ``REMITTANCE`` / ``TT CR``
  less a charge of HKD 25, 65, 80, 120 or 150; amounts written ``31424.33`` or
  ``HKD31,424.33``;
* retainers of HKD 1,800 / 4,200 / 6,000 / 12,000 for 15% of the customers;
* ids: an FPS reference number per payment (``FRN20261005K3Q9TZ2M``), account numbers
  ``A/C 012-3-456789``, customer numbers ``CUST 004512`` (six digits, leading zeros), 45%;
* script mix for 30% of customers and suppliers, half of the Chinese bank names printed in
  simplified characters (``陈大文`` for ledger ``陳大文``);
* invoices numbered ``00004187`` (eight digits, no prefix) from a serial of 3,000-9,000;
* a ledger 3.0x the bank, open items weighted towards sales orders.

Decidability and labels
-----------------------
Most changed lines stay decidable by a careful human and some do not, as in real data. A changed
one-to-one line (one bank line, one HKD ledger item, no adjustments, not a short or FX payment)
is *decidable* when one of these holds after all profiles:

* its reference is visible and still identifies the item (full, compact, spaced, number,
  ``number_bare``, ``prefix_changed``, or a supplier / employee number);
* it is a cheque we wrote or a bank charge (decided by construction);
* the payer is visible and names the party (same script as the ledger; initials only when no
  other party in the ledger's items of that type has the same surname and initials; a cut name
  only when no other party's name starts the same way; an English first name only when the
  ledger shows it), and the party has no other item of that type and amount, or all others
  are settled by lines whose reference identifies them (elimination);
* its amount is unique among the ledger items of that sign dated 60 days before to 3 days after
  it (a line less a bank charge: no item of its amount and exactly one a round charge of
  HKD 5, 10, ... 200 above it).

A step that would leave a line undecidable keeps the change only with a small probability
(``undecidable_keep``: 25-40%) and otherwise leaves the line as it was; changes to compound lines
are kept only if a reference that decided them stays visible. ``labels.csv`` says what changed:
the bank line's ``variant`` gets ``|step=form`` per change (``full|name=initials|ref=transposed``)
and ``:undecidable`` at the end when the final check cannot decide it; changed ledger items get a
``variant`` too (``retainer``, ``script_mix``, ``nameless=cheque``...).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from benchmarks import generate as gen
from models.money import format_minor_expr
from models.schema import ID_SEPARATOR


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NameForms:
    """How bank lines print the payer's name (surface).

    ``person_forms`` apply to persons printed in romanised Cantonese, ``company_forms`` to
    companies printed in English, ``zh_company_forms`` to companies printed in Chinese.
    """

    person_rate: float
    person_forms: Mapping[str, float]
    company_rate: float
    company_forms: Mapping[str, float]
    zh_company_forms: Mapping[str, float]
    honorifics: Mapping[str, float] = field(default_factory=lambda: {"MR": 0.45, "MRS": 0.15, "MS": 0.30, "DR": 0.10})
    person_cut: int = 12
    company_cut: int = 18
    undecidable_keep: float = 0.3


@dataclass(frozen=True)
class ReferenceDamage:
    """Damage to identifying invoice references on one-to-one receipts (surface)."""

    rate: float
    forms: Mapping[str, float]
    undecidable_keep: float = 0.25


@dataclass(frozen=True)
class Nameless:
    """Lines that show the amount and no name: cheque deposits of cash-book receipts booked
    earlier, and transfers less the remitting bank's charge (surface; moves ledger dates)."""

    cheque_rate: float
    cheque_delay_days: tuple[int, int]
    cheque_words: Mapping[str, float]
    transfer_rate: float
    transfer_charges_hkd: tuple[int, ...]
    transfer_words: Mapping[str, float]
    amount_styles: Mapping[str, float]
    undecidable_keep: float = 0.3
    transfer_min_hkd: int = 2_000


@dataclass(frozen=True)
class AmountRepetition:
    """Customers on a monthly retainer of a common amount (structural)."""

    customer_share: float
    amounts_hkd: tuple[int, ...]


@dataclass(frozen=True)
class IdNumbers:
    """Id numbers printed in credit narratives: ``fps``, ``transfer`` and ``autopay`` styles."""

    rate: float
    fps: str
    transfer: str
    autopay: str
    undecidable_keep: float = 0.3


@dataclass(frozen=True)
class ScriptMix:
    """Parties whose bank name and ledger name are in different scripts (structural)."""

    party_share: float
    roles: tuple[str, ...]
    ledger_side_share: float = 0.5
    simplified_share: float = 0.0


@dataclass(frozen=True)
class LedgerStyle:
    """How the ledger numbers invoices (structural): a format of
    :data:`benchmarks.generate.INVOICE_ID_FORMATS` and the range of the first serial."""

    invoice_format: str
    serial_offset: tuple[int, int]


#: ledger-only cases that grow with ``open_items_ratio``, and their weights
OPEN_ITEM_WEIGHTS = {"open_invoice": 0.55, "sales_order": 0.30, "open_bill": 0.12, "open_fx_invoice": 0.03}


@dataclass(frozen=True)
class Profile:
    """A named set of variations; ``None`` leaves that kind of variation out."""

    name: str
    name_forms: NameForms | None = None
    reference_damage: ReferenceDamage | None = None
    nameless: Nameless | None = None
    amount_repetition: AmountRepetition | None = None
    id_numbers: IdNumbers | None = None
    script_mix: ScriptMix | None = None
    ledger_style: LedgerStyle | None = None
    open_items_ratio: float | None = None
    open_item_weights: Mapping[str, float] = field(default_factory=lambda: dict(OPEN_ITEM_WEIGHTS))
    held_out: bool = False


_VARIATIONS = ("name_forms", "reference_damage", "nameless", "amount_repetition", "id_numbers", "script_mix",
               "ledger_style", "open_items_ratio")

NAME_FORMS = NameForms(
    person_rate=0.35, person_forms={"surname_last": 1 / 3, "initials": 1 / 3, "honorific": 1 / 3},
    company_rate=0.30, company_forms={"suffix_variant": 1.0}, zh_company_forms={"zh_space": 1.0},
)
REFERENCE_DAMAGE = ReferenceDamage(
    rate=0.30, forms={"truncated": 0.25, "transposed": 0.25, "digit_wrong": 0.15, "number_bare": 0.20, "absent": 0.15},
)
NAMELESS = Nameless(
    cheque_rate=0.30, cheque_delay_days=(5, 20), cheque_words={"CHEQUE DEPOSIT": 1.0},
    transfer_rate=0.04, transfer_charges_hkd=(50,), transfer_words={"TT IN": 1.0}, amount_styles={"comma": 1.0},
)
AMOUNT_REPETITION = AmountRepetition(customer_share=0.10, amounts_hkd=(3_800, 2_500))
ID_NUMBERS = IdNumbers(rate=0.35, fps="fps_id", transfer="account", autopay="payer_no")
SCRIPT_MIX = ScriptMix(party_share=0.20, roles=("customer",))
LEDGER_STYLE = LedgerStyle(invoice_format="slash", serial_offset=(800, 1_500))

HOLDOUT = Profile(
    name="holdout",
    name_forms=NameForms(
        person_rate=0.45,
        person_forms={"english_first": 0.30, "initials_first": 0.25, "comma": 0.20, "field_cut": 0.25},
        company_rate=0.40, company_forms={"no_suffix": 0.40, "abbreviated": 0.35, "company_cut": 0.25},
        zh_company_forms={"zh_no_suffix": 1.0}, undecidable_keep=0.4,
    ),
    reference_damage=ReferenceDamage(
        rate=0.40, forms={"truncated2": 0.20, "prefix_changed": 0.25, "digit_dropped": 0.20, "digit_doubled": 0.15,
                          "absent": 0.20},
        undecidable_keep=0.35,
    ),
    nameless=Nameless(
        cheque_rate=0.50, cheque_delay_days=(21, 40), cheque_words={"CHQ DEP": 0.6, "CASH DEP": 0.4},
        transfer_rate=0.08, transfer_charges_hkd=(25, 65, 80, 120, 150),
        transfer_words={"REMITTANCE": 0.6, "TT CR": 0.4}, amount_styles={"plain": 0.5, "hkd": 0.5},
        undecidable_keep=0.4,
    ),
    amount_repetition=AmountRepetition(customer_share=0.15, amounts_hkd=(1_800, 4_200, 6_000, 12_000)),
    id_numbers=IdNumbers(rate=0.45, fps="frn", transfer="account_short", autopay="customer_no",
                         undecidable_keep=0.4),
    script_mix=ScriptMix(party_share=0.30, roles=("customer", "supplier"), simplified_share=0.5),
    ledger_style=LedgerStyle(invoice_format="numeric", serial_offset=(3_000, 9_000)),
    open_items_ratio=3.0,
    open_item_weights={"open_invoice": 0.45, "sales_order": 0.40, "open_bill": 0.15},
    held_out=True,
)

#: every named profile; ``all`` is the tuning profile, ``holdout`` the held-out one
PROFILES: dict[str, Profile] = {
    "name_forms": Profile("name_forms", name_forms=NAME_FORMS),
    "reference_degradation": Profile("reference_degradation", reference_damage=REFERENCE_DAMAGE),
    "nameless": Profile("nameless", nameless=NAMELESS),
    "amount_repetition": Profile("amount_repetition", amount_repetition=AMOUNT_REPETITION),
    "id_numbers": Profile("id_numbers", id_numbers=ID_NUMBERS),
    "script_mix": Profile("script_mix", script_mix=SCRIPT_MIX),
    "ledger_style": Profile("ledger_style", ledger_style=LEDGER_STYLE),
    "all": Profile("all", name_forms=NAME_FORMS, reference_damage=REFERENCE_DAMAGE, nameless=NAMELESS,
                   amount_repetition=AMOUNT_REPETITION, id_numbers=ID_NUMBERS, script_mix=SCRIPT_MIX,
                   ledger_style=LEDGER_STYLE, open_items_ratio=2.7),
    "holdout": HOLDOUT,
}
HOLDOUT_PROFILE = "holdout"
TUNING_PROFILE = "all"


def resolve_profile(profile: str | Sequence[str] | Profile | None, *,
                    open_items_ratio: float | None = None) -> Profile:
    """A profile by name, by names joined with commas or listed, or as given; composed.

    Profiles compose when they set different variations (``name_forms,nameless``); two that set
    the same one differently, or the held-out profile with any other, are refused.
    ``open_items_ratio`` overrides the profile's ledger size.

    Examples
    --------
    >>> resolve_profile("name_forms,nameless").name
    'name_forms,nameless'
    >>> resolve_profile("all").open_items_ratio
    2.7
    >>> resolve_profile(None, open_items_ratio=2.5).name_forms is None
    True
    """
    if isinstance(profile, Profile):
        parts = [profile]
    else:
        names = [] if profile is None else (profile.split(",") if isinstance(profile, str) else list(profile))
        names = [n.strip() for n in names if n.strip()]
        unknown = [n for n in names if n not in PROFILES]
        if unknown:
            raise ValueError(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(PROFILES)}")
        parts = [PROFILES[n] for n in dict.fromkeys(names)]
    if len(parts) > 1 and any(p.held_out for p in parts):
        raise ValueError(f"the held-out profile {HOLDOUT_PROFILE!r} is used alone")
    merged = Profile(",".join(p.name for p in parts) or "none", held_out=any(p.held_out for p in parts))
    for part in parts:
        for name in _VARIATIONS:
            value, current = getattr(part, name), getattr(merged, name)
            if value is None:
                continue
            if current is not None and current != value:
                raise ValueError(f"profiles {merged.name!r} set {name} differently")
            merged = replace(merged, **{name: value})
        if part.open_items_ratio is not None:
            merged = replace(merged, open_item_weights=part.open_item_weights)
    if open_items_ratio is not None:
        if open_items_ratio <= 0:
            raise ValueError("open_items_ratio must be positive")
        merged = replace(merged, open_items_ratio=float(open_items_ratio))
    return merged


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _draw(rng: np.random.Generator, options: Mapping[str, float], n: int) -> np.ndarray:
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _text(values: np.ndarray) -> pl.Series:
    """An object array of strings and None as a text series."""
    return pl.Series(np.asarray(values, dtype=object).tolist(), dtype=pl.Utf8)


def _hash_numbers(keys: np.ndarray, salt: int, modulus: int) -> np.ndarray:
    """A fixed pseudo-random number in [0, modulus) per key (splitmix64), vectorized."""
    with np.errstate(over="ignore"):
        x = (np.asarray(keys, dtype=np.int64).astype(np.uint64) + np.uint64(salt)) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x % np.uint64(modulus)).astype(np.int64)


_DAY_SPAN = 1 << 12  # day offsets in an (amount, day) key: -2048 .. 2047


def _amount_day_key(amount: np.ndarray, day: np.ndarray) -> np.ndarray:
    """One sortable integer per (amount, day): amount-major, so a day range is a key range."""
    return np.asarray(amount, dtype=np.int64) * _DAY_SPAN + (np.asarray(day, dtype=np.int64) + _DAY_SPAN // 2)


def _grouped_thousands(digits: pl.Expr) -> pl.Expr:
    """``"28808"`` -> ``"28,808"`` (digits only, vectorized)."""
    pad = (3 - digits.str.len_chars() % 3) % 3
    padded = digits.str.zfill(digits.str.len_chars() + pad)
    return padded.str.extract_all(r"\d{3}").list.join(",").str.slice(pad)


def amount_text(minor: pl.Expr, currency: str, style: pl.Expr) -> pl.Expr:
    """An amount as a narrative prints it: ``comma`` 28,808.15, ``plain`` 28808.15, ``hkd``
    HKD28,808.15 (the account's currency code)."""
    plain = format_minor_expr(minor, pl.lit(currency))
    whole, frac = plain.str.splitn(".", 2).struct[0], plain.str.splitn(".", 2).struct[1]
    comma = pl.concat_str([_grouped_thousands(whole), frac], separator=".", ignore_nulls=True)
    return (pl.when(style == "plain").then(plain).when(style == "hkd").then(pl.lit(currency) + comma)
            .otherwise(comma))


# traditional -> simplified for the characters the generator's Chinese names use
_SIMPLIFIED = dict(zip(
    "榮華興豐寶東龍廣業萬亞維騰鳳銀蓮頂貿電紡織築設計顧問製產運輸實發裝飾飲傢膠紙陳黃張劉吳楊鄧馮麥蘇葉謝羅鄭譚蕭陸趙偉詠輝傑樂儀瑩強賢啟軒車護東",
    "荣华兴丰宝东龙广业万亚维腾凤银莲顶贸电纺织筑设计顾问制产运输实发装饰饮家胶纸陈黄张刘吴杨邓冯麦苏叶谢罗郑谭萧陆赵伟咏辉杰乐仪莹强贤启轩车护东",
    strict=True,
))
_TRADE_ABBREVIATIONS = {
    "TRADING": "TRDG", "ENGINEERING": "ENGG", "DEVELOPMENT": "DEVT", "TECHNOLOGY": "TECH",
    "CONSTRUCTION": "CONSTN", "ELECTRONICS": "ELECT", "ENTERPRISE": "ENT", "HOLDINGS": "HLDGS",
    "INDUSTRIAL": "INDL", "GARMENT": "GMT", "JEWELLERY": "JLRY", "TRANSPORT": "TPT", "DECORATION": "DECOR",
    "FURNITURE": "FURN", "PRINTING": "PRTG", "LOGISTICS": "LOGIS", "CONSULTING": "CONSLT",
}
_SUFFIX_VARIANTS = {"co": [" CO LTD", " CO LIMITED", " CO., LIMITED", " (HK) CO LTD", " CO., LTD"],
                    "ltd": [" LTD", " LIMITED", " (HK) LTD", " (HK) LIMITED"]}
_BANK_CODES = np.array(["004", "012", "024", "003", "015", "009", "020", "039", "043", "250"], dtype=object)
#: reference forms that still identify the invoice on their own
IDENTIFYING_FORMS = (*gen.DECISIVE_VARIANTS, "number_bare", "prefix_changed")
_NAME_VISIBLE_CHARS = 10
_CHARGE_BAND_HKD = 200  # a line less a bank charge: a round charge of HKD 5, 10, ... 200
_CHARGE_STEP_HKD = 5
_CREDIT_ID_STYLE = {"FPS CR": "fps", "CR TRF": "transfer", "IBT CR": "transfer", "TT IN": "transfer",
                    "AUTOPAY CR": "autopay"}
_PLAIN_RECEIPT_CASES = ("invoice_receipt", "same_amount_receipts", "repeat_invoice")


# --------------------------------------------------------------------------------------------
# the variation of one month
# --------------------------------------------------------------------------------------------
class Variation:
    """A profile applied to one month: called by :func:`benchmarks.generate.generate`.

    Parameters
    ----------
    profile
        The resolved :class:`Profile`.
    seed
        The month's seed; each step draws from its own stream derived from it.
    """

    def __init__(self, profile: Profile, seed: int) -> None:
        self.profile = profile
        self.seed = seed
        self.script_parties = np.zeros(0, dtype=np.int64)
        self.retainer_bank_uids = np.zeros(0, dtype=np.int64)
        self.retainer_ledger_uids = np.zeros(0, dtype=np.int64)

    def rng(self, step: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(step.encode())])

    # ---- structural -----------------------------------------------------------------------
    def vary_parties(self, month) -> None:
        """``script_mix``: print a share of the parties in the other script on one side."""
        mix = self.profile.script_mix
        if mix is None:
            return
        rng = self.rng("script_mix")
        parties = month.parties
        eligible = (
            pl.col("role").is_in(list(mix.roles)) & pl.col("zh").is_not_null() & pl.col("name_ok")
            & pl.col("bank_form").is_in(["upper_abbr", "upper_full", "mixed", "zh", "roman", "roman_english"])
        )
        chosen_rows = np.flatnonzero(parties.select(eligible).to_series().to_numpy())
        chosen_rows = chosen_rows[rng.random(len(chosen_rows)) < mix.party_share]
        flag = np.zeros(parties.height, dtype=bool)
        flag[chosen_rows] = True
        ledger_side = rng.random(parties.height) < mix.ledger_side_share
        simplified = rng.random(parties.height) < mix.simplified_share
        chosen = pl.Series(flag)
        zh_both = pl.col("ledger_form") == "zh"
        # a name in the bank's English form: companies as the bank abbreviates them, people romanised
        english_bank = (
            pl.when(pl.col("kind") == "company")
            .then(pl.col("base").str.to_uppercase() + pl.when(pl.col("legal") == "co").then(pl.lit(" CO LTD")).otherwise(pl.lit(" LTD")))
            .otherwise(pl.concat_str([pl.col("surname"), pl.col("given1"), pl.col("given2")], separator=" "))
        )
        to_ledger_zh = chosen & ~zh_both & pl.Series(ledger_side)
        to_bank_zh = chosen & ~zh_both & ~pl.Series(ledger_side)
        to_bank_english = chosen & zh_both
        bank_zh_name = pl.when(pl.Series(simplified)).then(pl.col("zh").str.replace_many(_SIMPLIFIED)).otherwise(pl.col("zh"))
        parties = parties.with_columns(
            ledger_name=pl.when(to_ledger_zh).then(pl.col("zh")).otherwise(pl.col("ledger_name")),
            ledger_form=pl.when(to_ledger_zh).then(pl.lit("zh")).otherwise(pl.col("ledger_form")),
            bank_name=pl.when(to_bank_zh).then(bank_zh_name).when(to_bank_english).then(english_bank)
            .otherwise(pl.col("bank_name")),
            bank_form=pl.when(to_bank_zh).then(pl.lit("zh"))
            .when(to_bank_english).then(pl.when(pl.col("kind") == "company").then(pl.lit("upper_abbr")).otherwise(pl.lit("roman")))
            .otherwise(pl.col("bank_form")),
        ).with_columns(name_ok=pl.when(chosen).then(pl.lit(False)).otherwise(pl.col("name_ok")))
        month.parties = parties
        self.script_parties = parties["party_id"].to_numpy()[flag]

    def open_item_counts(self, month, n_bank: int, counts: Mapping[str, int]) -> dict[str, int]:
        """Ledger-only case sizes that make the ledger ``open_items_ratio`` x the bank."""
        ratio = self.profile.open_items_ratio
        if ratio is None:
            return {}
        current = sum(frame.height for frame in month.ledger)
        extra = max(0, int(round(ratio * n_bank)) - current)
        weights = {c: w for c, w in self.profile.open_item_weights.items()
                   if c in gen.LEDGER_ONLY_CASES and (c != "open_fx_invoice" or "open_fx_invoice" in counts)}
        total = sum(weights.values())
        return {case: int(round(extra * w / total)) for case, w in weights.items()}

    def repeat_amounts(self, month, bank: pl.DataFrame, ledger: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``amount_repetition``: retainer customers' plain invoices all of one common amount."""
        spec = self.profile.amount_repetition
        if spec is None:
            return bank, ledger
        rng = self.rng("amount_repetition")
        customers = month.party_ids("customer")
        chosen = customers[rng.random(len(customers)) < spec.customer_share]
        amount = np.array(spec.amounts_hkd, dtype=np.int64)[rng.integers(0, len(spec.amounts_hkd), len(chosen))]
        retainer = pl.DataFrame({"party_key": chosen, "_retainer": amount * month.minor_per_major},
                                schema={"party_key": pl.Int64, "_retainer": pl.Int64})
        lines = bank.join(retainer, on="party_key", how="left", maintain_order="left")
        paid = lines["_retainer"].is_not_null() & lines["case"].is_in(_PLAIN_RECEIPT_CASES) & (lines["ref_kind"] == "invoice")
        self.retainer_bank_uids = lines.filter(paid)["uid"].to_numpy()
        paid_items = lines.filter(paid).select(uid="ref_uid", _paid=pl.col("_retainer"))
        items = ledger.join(retainer, on="party_key", how="left", maintain_order="left").join(
            paid_items, on="uid", how="left", maintain_order="left")
        owed = (pl.col("case") == "open_invoice") & pl.col("_retainer").is_not_null() & pl.col("currency").is_null()
        items = items.with_columns(amount_minor=pl.coalesce(
            "_paid", pl.when(owed).then(pl.col("_retainer")), "amount_minor"))
        changed = items.filter(pl.col("_paid").is_not_null() | owed)["uid"].to_numpy()
        ledger = items.drop("_retainer", "_paid")
        bank = lines.with_columns(amount_minor=pl.when(paid).then(pl.col("_retainer")).otherwise(pl.col("amount_minor"))).drop("_retainer")
        # this month's retainer invoice, still open, for every retainer customer
        n = len(chosen)
        (ledger_name,) = month.party_columns(chosen, "ledger_name")
        day = rng.integers(0, 3, n).astype(np.int32)
        uid = month.uids("ledger", n)
        month_label = month.start.strftime("%b %Y")
        extra = gen.ledger_rows(
            n, uid=uid, prefix="INV", type="invoice", day=day, amount_minor=amount * month.minor_per_major,
            counterparty=ledger_name, description=f"Monthly retainer {month_label}", due_day=day + 30,
            party_key=chosen, case="retainer_invoice",
        )
        self.retainer_ledger_uids = np.concatenate([changed, uid])
        return bank, pl.concat([ledger, extra], how="diagonal_relaxed")

    def invoice_style(self) -> tuple[str, int] | None:
        """``ledger_style``: (invoice id format, serial offset) or None."""
        style = self.profile.ledger_style
        if style is None:
            return None
        low, high = style.serial_offset
        return style.invoice_format, int(self.rng("ledger_style").integers(low, high + 1))

    # ---- surface --------------------------------------------------------------------------
    def vary_month(self, month, out: dict[str, pl.DataFrame], lines: pl.DataFrame, ledger: pl.DataFrame,
                   invoice_refs: pl.DataFrame) -> dict[str, pl.DataFrame]:
        """Apply the surface variations to a written month; label every changed line."""
        month_view = _MonthView(month, lines, ledger, out["truth"])
        work = month_view.work
        steps = [
            ("name_forms", self.profile.name_forms, _vary_names),
            ("reference_degradation", self.profile.reference_damage, _damage_references),
            ("id_numbers", self.profile.id_numbers, _print_id_numbers),
            ("nameless", self.profile.nameless, _nameless_lines),
        ]
        for step, params, fn in steps:
            if params is not None:
                work = fn(month_view, work, params, self.rng(step))
        decidable = month_view.assess(work)
        work = work.with_columns(_decidable=decidable)
        return month_view.write_back(out, work, self)


class _MonthView:
    """The internal view a surface step works on: one row per bank line with its parts, the
    truth group it belongs to, the ledger items and the parties."""

    COLUMNS = ("id", "uid", "day", "amount_minor", "channel", "detail", "payer", "layout", "cut_at",
               "show_counterparty", "show_reference", "always_decisive", "name_ok", "party_key", "ledger_type",
               "case", "variant", "ref_kind", "own_check")

    def __init__(self, month, lines: pl.DataFrame, ledger: pl.DataFrame, truth: pl.DataFrame) -> None:
        self.month = month
        self.currency = month.currency
        self.mpm = month.minor_per_major
        self.parties = month.parties
        self.items = ledger.select("uid", "id", "type", "party_key", "amount_minor", "day", "currency", "date",
                                   "counterparty").with_columns(_day0=pl.col("day"),
                                                                _description=pl.lit(None, dtype=pl.Utf8))
        groups = truth.select(
            "group_id", "match_type", bank=pl.col("bank_ids").str.split(ID_SEPARATOR),
            ledger_ids="ledger_ids", n_ledger=pl.col("ledger_ids").str.split(ID_SEPARATOR).list.len(),
            adjustments=pl.col("adjustments") if "adjustments" in truth.columns else pl.lit("[]"),
        ).with_columns(n_bank=pl.col("bank").list.len()).explode("bank").rename({"bank": "id"})
        work = lines.select(*self.COLUMNS, ref=pl.col("_ref"), ref_form=pl.col("_seen"), base_decisive=pl.col("_decisive"))
        work = work.join(groups, on="id", how="left", maintain_order="left")
        foreign = self.items.filter(pl.col("currency").is_not_null()).select(ledger_ids="id", _foreign=pl.lit(True))
        work = work.join(foreign, on="ledger_ids", how="left", maintain_order="left")
        assessable = (
            (pl.col("match_type") == "one_to_one") & (pl.col("n_bank") == 1) & (pl.col("n_ledger") == 1)
            & (pl.col("adjustments") == "[]") & ~pl.col("case").is_in(["short_payment", "fx_receipt"])
            & pl.col("_foreign").is_null()
        ).fill_null(False)
        work = work.with_columns(assessable=assessable, ledger_id=pl.when(assessable).then(pl.col("ledger_ids")))
        # the type of the line's own item (a cash-book line names none): what its party's twins share
        own_item = self.items.select(ledger_id="id", _item_type="type", item_party="party_key",
                                     item_amount="amount_minor")
        work = work.join(own_item, on="ledger_id", how="left", maintain_order="left").with_columns(
            item_type=pl.coalesce("_item_type", "ledger_type")).drop("_item_type")
        # items per (type, party, amount): a line's twins (ledger amounts never change here)
        self.twins = (
            self.items.filter(pl.col("party_key").is_not_null())
            .group_by(item_type="type", item_party="party_key", item_amount="amount_minor")
            .agg(_n_items=pl.len())
        )
        self.work = work.with_columns(
            tags=pl.lit(""),
            name_resolves=pl.col("name_ok"),
            nameless=pl.lit(None, dtype=pl.Utf8),
            charge_minor=pl.lit(0, dtype=pl.Int64),
            amount_style=pl.lit(None, dtype=pl.Utf8),
        ).drop("_foreign")
        self.ledger_tags: dict[str, np.ndarray] = {}

    # ---- rendering and assessment ---------------------------------------------------------
    @staticmethod
    def render(work: pl.DataFrame) -> pl.DataFrame:
        return work.with_columns(
            description=gen.bank_description_expr(pl.col("ref")),
            counterparty=pl.when(pl.col("show_counterparty")).then(pl.col("payer")),
            reference=pl.when(pl.col("show_reference")).then(pl.col("ref")),
        )

    @staticmethod
    def ref_visible(rendered: pl.DataFrame) -> pl.Series:
        ref = pl.col("ref")
        return rendered.select(
            (ref.is_not_null() & (pl.col("description").str.contains(ref, literal=True)
                                  | (pl.col("reference") == ref))).fill_null(False)
        ).to_series()

    def assess(self, work: pl.DataFrame) -> pl.Series:
        """Per line: can a careful human decide it (see the module docstring)? Lines this
        check does not cover (compound, short / FX, no truth group) count as decidable."""
        r = self.render(work)
        ref_visible = self.ref_visible(r)
        r = r.with_columns(
            _ref_ok=ref_visible & pl.col("ref_form").is_in(IDENTIFYING_FORMS),
            _payer_visible=(pl.col("payer").is_not_null() & (
                pl.col("description").str.contains(pl.col("payer").str.slice(0, _NAME_VISIBLE_CHARS), literal=True)
                | (pl.col("counterparty") == pl.col("payer")))).fill_null(False),
        )
        construction = pl.col("always_decisive") & pl.col("payer").is_null() & pl.col("nameless").is_null()
        # the party's other items of the same type and amount, and those identified by reference
        keys = ["item_type", "item_party", "item_amount"]
        identified = r.filter(pl.col("assessable") & pl.col("_ref_ok")).group_by(keys).agg(_n_identified=pl.len())
        r = r.join(self.twins, on=keys, how="left", maintain_order="left").join(
            identified, on=keys, how="left", maintain_order="left")
        party_ok = (pl.col("_n_items") == 1) | (pl.col("_n_items") - pl.col("_n_identified").fill_null(0) == 1)
        r = r.with_columns(
            _decided=~pl.col("assessable") | pl.col("_ref_ok") | construction
            | (pl.col("_payer_visible") & pl.col("name_resolves") & party_ok.fill_null(False))
        )
        open_rows = r.with_row_index("_row").filter(~pl.col("_decided"))
        unique = self._amount_decides(open_rows)
        decided = r["_decided"].to_numpy().copy()
        decided[unique] = True
        return pl.Series("decidable", decided)

    def _amount_decides(self, rows: pl.DataFrame) -> np.ndarray:
        """Row numbers (``_row``) of lines whose amount alone finds their item: one HKD item of
        that amount dated 60 days before to 3 days after the line (a line less a bank charge:
        none of its amount and one a round charge above it). Counted with sorted searches over
        (amount, day) keys."""
        if rows.height == 0:
            return np.zeros(0, dtype=np.int64)
        items = self.items.filter(pl.col("currency").is_null())
        keys = np.sort(_amount_day_key(items["amount_minor"].to_numpy(), items["day"].to_numpy()))
        amount, day = rows["amount_minor"].to_numpy(), rows["day"].to_numpy()

        def count(amounts: np.ndarray, days: np.ndarray) -> np.ndarray:
            low = _amount_day_key(amounts, days - gen.MAX_PAYMENT_LAG_DAYS)
            high = _amount_day_key(amounts, days + 3)
            return np.searchsorted(keys, high, side="right") - np.searchsorted(keys, low, side="left")

        exact = count(amount, day)
        charge = rows["charge_minor"].to_numpy()
        ok = exact == 1
        less_charge = np.flatnonzero(charge > 0)
        if len(less_charge):  # an item a round bank charge (HKD 5, 10, ... 200) above the line
            steps = np.arange(_CHARGE_STEP_HKD, _CHARGE_BAND_HKD + 1, _CHARGE_STEP_HKD) * self.mpm
            near = count(amount[less_charge][:, None] + steps[None, :],
                         np.repeat(day[less_charge][:, None], len(steps), axis=1)).sum(axis=1)
            ok[less_charge] = (exact[less_charge] == 0) & (near == 1)
        return rows["_row"].to_numpy().astype(np.int64)[ok]

    def settle(self, before: pl.DataFrame, after: pl.DataFrame, picked: np.ndarray, tag: pl.Expr | str,
               keep_undecidable: float, rng: np.random.Generator) -> pl.DataFrame:
        """Keep a step's changes on the picked lines that stay decidable, a share of the others
        (``keep_undecidable``), and on compound lines only when a deciding reference stays
        visible; add the step's tag to the lines kept."""
        picked = pl.Series(picked)
        decidable = self.assess(after)
        still_seen = self.ref_visible(self.render(after)) | ~after["base_decisive"]
        lucky = pl.Series(rng.random(after.height) < keep_undecidable)
        keep = picked & ((after["assessable"] & (decidable | lucky)) | (~after["assessable"] & still_seen))
        tag_expr = pl.lit(tag) if isinstance(tag, str) else tag
        changed = [c for c in after.columns if c != "tags"]
        merged = after.select(
            *[pl.when(keep).then(pl.col(c)).otherwise(before[c]).alias(c) for c in changed],
            tags=pl.when(keep).then(pl.col("tags") + pl.lit("|") + tag_expr).otherwise(pl.col("tags")),
        )
        return merged.select(after.columns)

    # ---- writing the month ----------------------------------------------------------------
    def write_back(self, out: dict[str, pl.DataFrame], work: pl.DataFrame, variation: Variation) -> dict[str, pl.DataFrame]:
        out = dict(out)
        tags = pl.col("tags")
        if len(variation.script_parties):
            tags = tags + pl.when(pl.col("party_key").is_in(variation.script_parties.tolist())).then(
                pl.lit("|script_mix")).otherwise(pl.lit(""))
        if len(variation.retainer_bank_uids):
            tags = tags + pl.when(pl.col("uid").is_in(variation.retainer_bank_uids.tolist())).then(
                pl.lit("|retainer")).otherwise(pl.lit(""))
        work = self.render(work.with_columns(tags=tags))
        work = work.with_columns(
            variant=pl.col("variant") + pl.col("tags")
            + pl.when((pl.col("tags") != "") & ~pl.col("_decidable")).then(pl.lit(":undecidable")).otherwise(pl.lit("")),
        )
        changed = work.filter(pl.col("tags") != "").select(
            "id", _description="description", _counterparty="counterparty", _reference="reference",
            _amount_minor="amount_minor", _variant="variant",
        )
        bank = out["bank"].join(changed, on="id", how="left", maintain_order="left")
        hit = pl.col("_variant").is_not_null()
        bank = bank.with_columns(
            description=pl.when(hit).then(pl.col("_description")).otherwise(pl.col("description")),
            counterparty=pl.when(hit).then(pl.col("_counterparty")).otherwise(pl.col("counterparty")),
            reference=pl.when(hit).then(pl.col("_reference")).otherwise(pl.col("reference")),
            amount_minor=pl.when(hit).then(pl.col("_amount_minor")).otherwise(pl.col("amount_minor")),
            variant=pl.when(hit & (pl.col("case") != "duplicate_feed_line")).then(pl.col("_variant"))
            .otherwise(pl.col("variant")),
        ).with_columns(
            amount=format_minor_expr(pl.col("amount_minor"), pl.lit(self.currency)),
        ).drop("_description", "_counterparty", "_reference", "_amount_minor", "_variant")
        out["bank"] = bank.select(out["bank"].columns)
        out["ledger"] = self._ledger_out(out["ledger"], variation)
        out["truth"] = self._truth_out(out["truth"], work)
        return out

    def _ledger_out(self, ledger: pl.DataFrame, variation: Variation) -> pl.DataFrame:
        moved = self.items.filter(pl.col("day") != pl.col("_day0")).select(
            "id", _shift=(pl.col("day") - pl.col("_day0")).cast(pl.Int64), _description="_description")
        labels = []
        for tag, ids in self.ledger_tags.items():
            labels.append(pl.DataFrame({"id": ids, "_tag": tag}, schema={"id": pl.Utf8, "_tag": pl.Utf8}))
        uid_tags = []
        if len(variation.retainer_ledger_uids):
            uid_tags.append(pl.DataFrame({"uid": variation.retainer_ledger_uids, "_tag": "retainer"}))
        if len(variation.script_parties):
            script = self.items.filter(pl.col("party_key").is_in(variation.script_parties.tolist())).select("uid")
            uid_tags.append(script.with_columns(_tag=pl.lit("script_mix")))
        if variation.profile.ledger_style is not None:
            invoices = self.items.filter(pl.col("type") == "invoice").select("uid")
            uid_tags.append(invoices.with_columns(_tag=pl.lit(f"ledger_style={variation.profile.ledger_style.invoice_format}")))
        if uid_tags:
            by_uid = pl.concat(uid_tags, how="diagonal_relaxed").join(self.items.select("uid", "id"), on="uid")
            labels.append(by_uid.select("id", "_tag"))
        tagged = (pl.concat(labels).group_by("id", maintain_order=True).agg(pl.col("_tag").str.join("|"))
                  if labels else pl.DataFrame(schema={"id": pl.Utf8, "_tag": pl.Utf8}))
        ledger = ledger.join(moved, on="id", how="left", maintain_order="left").join(
            tagged, on="id", how="left", maintain_order="left")
        shift = pl.duration(days=pl.col("_shift").fill_null(0))
        ledger = ledger.with_columns(
            date=pl.col("date") + shift,
            due_date=pl.col("due_date") + shift,
            description=pl.coalesce("_description", "description"),
            variant=pl.col("_tag"),
        ).drop("_shift", "_description", "_tag")
        return ledger.sort(["date", "id"])

    def _truth_out(self, truth: pl.DataFrame, work: pl.DataFrame) -> pl.DataFrame:
        charged = work.filter(pl.col("charge_minor") > 0).select(
            "group_id",
            _adj=pl.concat_str([pl.lit('[{"cause":"bank_charge","amount":"'),
                                format_minor_expr(-pl.col("charge_minor"), pl.lit(self.currency)), pl.lit('"}]')]),
        )
        if "adjustments" not in truth.columns:
            truth = truth.with_columns(adjustments=pl.lit("[]"), open_amount=pl.lit(""))
        if charged.height == 0:
            return truth
        return truth.join(charged, on="group_id", how="left", maintain_order="left").with_columns(
            adjustments=pl.coalesce("_adj", "adjustments")).drop("_adj")


# --------------------------------------------------------------------------------------------
# surface steps: each returns the work frame with its changes settled
# --------------------------------------------------------------------------------------------
def _person_name(form: pl.Expr, params: NameForms, honorific: pl.Expr) -> pl.Expr:
    s, g1, g2, english = pl.col("surname"), pl.col("given1"), pl.col("given2"), pl.col("english")
    full = pl.concat_str([s, g1, g2], separator=" ")
    initials = [g1.str.slice(0, 1), g2.str.slice(0, 1)]
    return (
        pl.when(form == "surname_last").then(pl.concat_str([g1, g2, s], separator=" "))
        .when(form == "initials").then(pl.concat_str([s, *initials], separator=" "))
        .when(form == "honorific").then(pl.concat_str([honorific, full], separator=" "))
        .when(form == "english_first").then(pl.concat_str([english, s], separator=" "))
        .when(form == "initials_first").then(pl.concat_str([*initials, s], separator=" "))
        .when(form == "comma").then(pl.concat_str([s + pl.lit(","), g1, g2], separator=" "))
        .when(form == "field_cut").then(full.str.slice(0, params.person_cut).str.strip_chars_end())
    )


def _company_name(form: pl.Expr, params: NameForms, suffix: pl.Expr) -> pl.Expr:
    upper = pl.col("base").str.to_uppercase()
    own = upper + pl.when(pl.col("legal") == "co").then(pl.lit(" CO LTD")).otherwise(pl.lit(" LTD"))
    zh = pl.col("zh")
    return (
        pl.when(form == "suffix_variant").then(upper + suffix)
        .when(form == "no_suffix").then(upper)
        .when(form == "abbreviated").then(own.str.replace_many(_TRADE_ABBREVIATIONS))
        .when(form == "company_cut").then(own.str.slice(0, params.company_cut).str.strip_chars_end())
        .when(form == "zh_space").then(zh.str.replace("有限公司", " 有限公司", literal=True))
        .when(form == "zh_no_suffix").then(zh.str.replace("有限公司", "", literal=True))
    )


def _vary_names(view: _MonthView, work: pl.DataFrame, params: NameForms, rng: np.random.Generator) -> pl.DataFrame:
    parties = view.parties.select("party_id", "kind", "bank_form", "ledger_form", "bank_name", "zh", "base", "legal",
                                  "surname", "given1", "given2", "english", "name_ok")
    w = work.join(parties.rename({"party_id": "party_key", "name_ok": "_party_ok"}), on="party_key", how="left",
                  maintain_order="left")
    n = w.height
    own_name = (pl.col("payer") == pl.col("bank_name")).fill_null(False)
    may = own_name & (pl.col("assessable") | pl.col("base_decisive")) & pl.col("nameless").is_null()
    person = may & (pl.col("kind") == "person") & pl.col("bank_form").is_in(["roman", "roman_english"])
    latin_company = may & (pl.col("kind") == "company") & pl.col("bank_form").is_in(["upper_abbr", "upper_full", "mixed"])
    zh_company = may & (pl.col("kind") == "company") & (pl.col("bank_form") == "zh")
    kinds = w.select(person=person, latin=latin_company, zh=zh_company)
    draw = rng.random(n)
    person_pick = kinds["person"].to_numpy() & (draw < params.person_rate)
    latin_pick = kinds["latin"].to_numpy() & (draw < params.company_rate)
    zh_pick = kinds["zh"].to_numpy() & (draw < params.company_rate)
    form = np.full(n, None, dtype=object)
    form[person_pick] = _draw(rng, params.person_forms, int(person_pick.sum()))
    form[latin_pick] = _draw(rng, params.company_forms, int(latin_pick.sum()))
    form[zh_pick] = _draw(rng, params.zh_company_forms, int(zh_pick.sum()))
    no_english = w["english"].is_null().to_numpy()
    form[(form == "english_first") & no_english] = "initials_first"  # nobody to call PETER
    honorific = _draw(rng, params.honorifics, n)
    legal = w["legal"].fill_null("ltd").to_numpy()
    suffix = np.empty(n, dtype=object)
    for kind, options in _SUFFIX_VARIANTS.items():
        rows = legal == kind
        suffix[rows] = np.array(options, dtype=object)[rng.integers(0, len(options), int(rows.sum()))]
    w = w.with_columns(_form=_text(form), _hon=_text(honorific),
                       _suffix=_text(suffix))
    new_name = pl.when(pl.col("kind") == "person").then(_person_name(pl.col("_form"), params, pl.col("_hon"))).otherwise(
        _company_name(pl.col("_form"), params, pl.col("_suffix")))
    w = w.with_columns(_new=new_name)
    # a suffix variant equal to what the bank printed anyway: take the plain LIMITED form instead
    w = w.with_columns(_new=pl.when(pl.col("_new") == pl.col("payer")).then(
        pl.col("base").str.to_uppercase() + pl.lit(" LIMITED")).otherwise(pl.col("_new")))
    picked = w["_form"].is_not_null().to_numpy() & w["_new"].is_not_null().to_numpy()
    resolves = _names_resolve(view, w)
    after = w.with_columns(
        payer=pl.when(pl.Series(picked)).then(pl.col("_new")).otherwise(pl.col("payer")),
        name_resolves=pl.when(pl.Series(picked)).then(pl.Series(resolves) & pl.col("_party_ok").fill_null(False))
        .otherwise(pl.col("name_resolves")),
    ).select(work.columns)
    return view.settle(work, after, picked, pl.lit("name=") + w["_form"].fill_null(""), params.undecidable_keep, rng)


def _names_resolve(view: _MonthView, w: pl.DataFrame) -> np.ndarray:
    """Does the new printed name still point at one party among those in the ledger items of
    the line's type? Initials, cut names and English first names are checked; others do."""
    n = w.height
    resolves = np.ones(n, dtype=bool)
    form = w["_form"].to_numpy()
    parties = view.parties.select("party_id", "kind", "ledger_form", "surname", "given1", "given2", "base", "english")
    in_ledger = (
        view.items.filter(pl.col("party_key").is_not_null()).select(item_type="type", party_id="party_key").unique()
        .join(parties, on="party_id").filter(pl.col("ledger_form") != "zh")
    )
    initials_key = pl.concat_str([pl.col("surname"), pl.col("given1").str.slice(0, 1), pl.col("given2").str.slice(0, 1)],
                                 separator=" ")
    by_initials = (in_ledger.filter(pl.col("kind") == "person").with_columns(_key=initials_key)
                   .group_by("item_type", "_key").agg(_parties=pl.len()))
    rows = np.flatnonzero(np.isin(form, ["initials", "initials_first"]))
    if len(rows):
        found = (w[rows].with_columns(_key=initials_key).join(by_initials, on=["item_type", "_key"], how="left",
                                                              maintain_order="left"))
        resolves[rows] = (found["_parties"].fill_null(0) == 1).to_numpy()
    rows = np.flatnonzero(form == "english_first")
    if len(rows):
        resolves[rows] = (w[rows]["ledger_form"] == "western").fill_null(False).to_numpy()
    rows = np.flatnonzero(np.isin(form, ["field_cut", "company_cut"]))
    if len(rows):
        person_key = pl.concat_str([pl.col("surname"), pl.col("given1"), pl.col("given2")], separator=" ")
        key = pl.when(pl.col("kind") == "person").then(person_key).otherwise(pl.col("base").str.to_uppercase())
        keys = in_ledger.select("item_type", _key=key).drop_nulls()
        cut = w[rows].with_columns(_own=key).select(
            "item_type", _prefix=pl.when(pl.col("_new").str.len_chars() < pl.col("_own").str.len_chars())
            .then(pl.col("_new")).otherwise(pl.col("_own")))
        counts = np.zeros(len(rows), dtype=np.int64)
        for item_type in cut["item_type"].unique().drop_nulls().to_list():
            mine = (cut["item_type"] == item_type).fill_null(False).to_numpy()
            sorted_keys = np.sort(keys.filter(pl.col("item_type") == item_type)["_key"].to_numpy().astype(str))
            prefix = cut.filter(pl.col("item_type") == item_type)["_prefix"].to_numpy().astype(str)
            counts[mine] = (np.searchsorted(sorted_keys, np.char.add(prefix, "\U0010ffff"))
                            - np.searchsorted(sorted_keys, prefix))
        resolves[rows] = counts == 1
    return resolves


def _serial_parts(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(head, serial) of invoice ids: the trailing digits and what precedes them."""
    frame = pl.DataFrame({"id": ids}).with_columns(serial=pl.col("id").str.extract(r"(\d+)$", 1).fill_null(""))
    head = frame.select(pl.col("id").str.slice(0, pl.col("id").str.len_chars() - pl.col("serial").str.len_chars()))
    return head.to_series().to_numpy().astype(str), frame["serial"].to_numpy().astype(str)


def damaged_references(ids: pl.Series, years: pl.Series, forms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The invoice ids as a payer damaged them, per form (None for ``absent``).

    Forms: ``truncated`` / ``truncated2`` (last one / two characters lost), ``transposed`` (two
    adjacent different serial digits swapped, anywhere), ``digit_wrong``, ``digit_dropped``,
    ``digit_doubled``, ``number_bare`` (the serial without leading zeros), ``prefix_changed``
    (``IN2026-01069`` or ``INV26-1069``), ``absent``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> damaged_references(pl.Series(["INV-2026-01163"]), pl.Series(["2026"]), np.array(["number_bare"]), rng)
    array(['1163'], dtype=object)
    """
    n = len(ids)
    head, serial = _serial_parts(ids)
    length = np.char.str_len(serial)
    width = max(int(length.max()) if n else 1, 2)
    digits = np.array(serial, dtype=f"<U{width}").view("<U1").reshape(n, width)
    valid_pair = (digits[:, :-1] != digits[:, 1:]) & (digits[:, 1:] != "")
    pair = np.argmax(rng.random(valid_pair.shape) * valid_pair, axis=1)
    can_swap = valid_pair.any(axis=1)
    position = (rng.random(n) * np.maximum(length, 1)).astype(np.int64)
    current = digits[np.arange(n), np.minimum(position, width - 1)]
    wrong = (np.where(current == "", "0", current).astype(np.int64) + rng.integers(1, 10, n)) % 10
    frame = pl.DataFrame({
        "id": ids, "head": head, "serial": serial, "form": forms.astype(str), "pair": pair, "pos": position,
        "wrong": wrong.astype(str), "can_swap": can_swap, "yy": years.str.slice(2).to_numpy(), "short_year": rng.random(n) < 0.5,
    })
    s, head_col, id_col = pl.col("serial"), pl.col("head"), pl.col("id")
    p, j = pl.col("pos"), pl.col("pair")
    bare = s.str.strip_chars_start("0").replace("", "0")
    swapped = pl.concat_str([s.str.slice(0, j), s.str.slice(j + 1, 1), s.str.slice(j, 1), s.str.slice(j + 2)])
    form = pl.col("form")
    starts_inv = id_col.str.starts_with("INV")
    prefix_short = pl.when(starts_inv).then(pl.lit("IN") + id_col.str.slice(3).str.strip_chars_start("-/")).otherwise(
        pl.lit("IN") + bare)
    prefix_year = pl.concat_str([pl.lit("INV"), pl.col("yy"), pl.lit("-"), bare])
    out = frame.select(
        pl.when(form == "truncated").then(id_col.str.slice(0, id_col.str.len_chars() - 1))
        .when(form == "truncated2").then(id_col.str.slice(0, id_col.str.len_chars() - 2))
        .when((form == "transposed") & pl.col("can_swap")).then(head_col + swapped)
        .when(form == "transposed").then(id_col.str.slice(0, id_col.str.len_chars() - 1))
        .when(form == "digit_wrong").then(head_col + s.str.slice(0, p) + pl.col("wrong") + s.str.slice(p + 1))
        .when(form == "digit_dropped").then(head_col + s.str.slice(0, p) + s.str.slice(p + 1))
        .when(form == "digit_doubled").then(head_col + s.str.slice(0, p + 1) + s.str.slice(p))
        .when(form == "number_bare").then(bare)
        .when(form == "prefix_changed").then(pl.when(pl.col("short_year")).then(prefix_year).otherwise(prefix_short))
        .alias("ref")
    )
    return out["ref"].to_numpy()


def _damage_references(view: _MonthView, work: pl.DataFrame, params: ReferenceDamage,
                       rng: np.random.Generator) -> pl.DataFrame:
    n = work.height
    eligible = work.select(
        pl.col("assessable") & (pl.col("ref_kind") == "invoice") & pl.col("ref_form").is_in(["full", "compact", "spaced", "number"])
        & pl.col("nameless").is_null()
    ).to_series().to_numpy()
    picked = eligible & (rng.random(n) < params.rate)
    rows = np.flatnonzero(picked)
    forms = _draw(rng, params.forms, len(rows))
    chosen = work[rows].join(view.items.select(ledger_id="id", _year=pl.col("date").dt.year().cast(pl.Utf8)),
                             on="ledger_id", how="left", maintain_order="left")
    damaged = damaged_references(chosen["ledger_id"], chosen["_year"], forms, rng)
    ref = np.full(n, None, dtype=object)
    ref[rows] = damaged
    form = np.full(n, None, dtype=object)
    form[rows] = forms
    after = work.with_columns(
        ref=pl.when(pl.Series(picked)).then(_text(ref)).otherwise(pl.col("ref")),
        ref_form=pl.when(pl.Series(picked)).then(_text(form)).otherwise(pl.col("ref_form")),
    )
    return view.settle(work, after, picked, pl.lit("ref=") + _text(form).fill_null(""),
                       params.undecidable_keep, rng)


def _print_id_numbers(view: _MonthView, work: pl.DataFrame, params: IdNumbers, rng: np.random.Generator) -> pl.DataFrame:
    n = work.height
    kind = work["channel"].replace_strict(_CREDIT_ID_STYLE, default=None, return_dtype=pl.Utf8).to_numpy()
    eligible = (kind != None) & work["payer"].is_not_null().to_numpy() & work["party_key"].is_not_null().to_numpy()  # noqa: E711
    eligible &= work.select((pl.col("assessable") | pl.col("base_decisive")) & pl.col("nameless").is_null()).to_series().to_numpy()
    picked = eligible & (rng.random(n) < params.rate)
    style = np.select([kind == "fps", kind == "transfer", kind == "autopay"],
                      [params.fps, params.transfer, params.autopay], default="").astype(object)
    rows = np.flatnonzero(picked)
    salt = int(rng.integers(0, 2**31))
    number = _hash_numbers(work["party_key"].fill_null(0).to_numpy()[rows], salt, 10**12)  # fixed per payer
    alphabet = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"))
    chosen = pl.DataFrame({
        "style": style[rows].astype(str), "n": number, "bank": _BANK_CODES[number % len(_BANK_CODES)].astype(str),
        "date": np.datetime64(view.month.start, "D") + work["day"].to_numpy()[rows].astype("timedelta64[D]"),
        "frn": alphabet[rng.integers(0, len(alphabet), (len(rows), 8))].view("<U8").ravel(),
    })
    n_, style_col = pl.col("n"), pl.col("style")

    def digits(value: pl.Expr, width: int) -> pl.Expr:
        return value.cast(pl.Utf8).str.zfill(width)

    shown_text = chosen.select(
        pl.when(style_col == "fps_id").then(pl.lit("9") + digits(n_ % 10**9, 9))
        .when(style_col == "account").then(pl.concat_str([pl.col("bank"), digits(n_ // 10 % 10**6, 6),
                                                          digits(n_ // 10**7 % 1000, 3)], separator="-"))
        .when(style_col == "payer_no").then(pl.lit("PAYER ") + digits(n_ % 10**8, 8))
        .when(style_col == "frn").then(pl.lit("FRN") + pl.col("date").dt.strftime("%Y%m%d") + pl.col("frn"))
        .when(style_col == "account_short").then(pl.lit("A/C ") + pl.concat_str(
            [pl.col("bank"), (n_ // 10 % 10).cast(pl.Utf8), digits(n_ // 100 % 10**6, 6)], separator="-"))
        .when(style_col == "customer_no").then(pl.lit("CUST ") + digits(n_ % 10**6 // 10, 6))
    ).to_series()
    text = np.full(n, None, dtype=object)
    text[rows] = shown_text.to_numpy()
    picked &= text != None  # noqa: E711
    shown = _text(text)
    after = work.with_columns(
        detail=pl.when(pl.Series(picked)).then(pl.concat_str([shown, pl.col("detail")], separator=" ", ignore_nulls=True))
        .otherwise(pl.col("detail")),
    )
    return view.settle(work, after, picked, pl.lit("id=") + _text(style), params.undecidable_keep, rng)


def _nameless_lines(view: _MonthView, work: pl.DataFrame, params: Nameless, rng: np.random.Generator) -> pl.DataFrame:
    n = work.height
    weekday = view.month.weekday(work["day"].to_numpy()) < 5
    untouched = work.select(pl.col("assessable") & (pl.col("tags") == "") & (pl.col("amount_minor") > 0)).to_series().to_numpy()
    cheque = untouched & weekday & (work["case"] == "cash_book_receipt").to_numpy() & (rng.random(n) < params.cheque_rate)
    transfer = (untouched & weekday & work["case"].is_in(_PLAIN_RECEIPT_CASES).to_numpy()
                & (work["amount_minor"] >= params.transfer_min_hkd * view.mpm).to_numpy()
                & (rng.random(n) < params.transfer_rate) & ~cheque)
    words = np.full(n, None, dtype=object)
    words[cheque] = _draw(rng, params.cheque_words, int(cheque.sum()))
    words[transfer] = _draw(rng, params.transfer_words, int(transfer.sum()))
    charge = np.zeros(n, dtype=np.int64)
    charge[transfer] = np.array(params.transfer_charges_hkd, dtype=np.int64)[
        rng.integers(0, len(params.transfer_charges_hkd), int(transfer.sum()))] * view.mpm
    delay = rng.integers(params.cheque_delay_days[0], params.cheque_delay_days[1] + 1, n)
    style = _draw(rng, params.amount_styles, n)
    picked = cheque | transfer
    kind = np.where(cheque, "cheque", np.where(transfer, "transfer", None)).astype(object)
    p = pl.Series(picked)
    after = work.with_columns(
        channel=pl.when(p).then(_text(words)).otherwise(pl.col("channel")),
        amount_minor=pl.col("amount_minor") - pl.Series(charge),
        charge_minor=pl.Series(charge),
        payer=pl.when(p).then(pl.lit(None, dtype=pl.Utf8)).otherwise(pl.col("payer")),
        ref=pl.when(p).then(pl.lit(None, dtype=pl.Utf8)).otherwise(pl.col("ref")),
        ref_form=pl.when(p).then(pl.lit("none")).otherwise(pl.col("ref_form")),
        show_counterparty=pl.when(p).then(pl.lit(False)).otherwise(pl.col("show_counterparty")),
        show_reference=pl.when(p).then(pl.lit(False)).otherwise(pl.col("show_reference")),
        cut_at=pl.when(p).then(pl.lit(gen.NO_CUT)).otherwise(pl.col("cut_at")),
        layout=pl.when(p).then(pl.lit("name_first")).otherwise(pl.col("layout")),
        nameless=_text(kind),
        amount_style=_text(np.where(picked, style, None)),
    )
    after = after.with_columns(
        detail=pl.when(p).then(amount_text(pl.col("amount_minor"), view.currency, pl.col("amount_style")))
        .otherwise(pl.col("detail")))
    # the ledger side: a cheque receipt booked when it came in, an invoice on the day it was paid
    moves = after.filter(p).select(
        id="ledger_id", _new_day=pl.when(pl.col("nameless") == "cheque").then(
            pl.col("day") - pl.Series(delay).filter(p)).otherwise(pl.col("day")).cast(pl.Int32),
        _description=pl.when(pl.col("channel") == "CASH DEP").then(pl.lit("Cash received"))
        .when(pl.col("nameless") == "cheque").then(pl.lit("Cheque received")),
    )
    before_items = view.items
    view.items = _move_items(view.items, moves)
    settled = view.settle(work, after, picked, pl.lit("nameless=") + _text(kind).fill_null(""),
                          params.undecidable_keep, rng)
    kept = settled.filter(pl.col("nameless").is_not_null())
    view.items = _move_items(before_items, moves.filter(pl.col("id").is_in(kept["ledger_id"].implode())))
    for name in ("cheque", "transfer"):
        view.ledger_tags[f"nameless={name}"] = kept.filter(pl.col("nameless") == name)["ledger_id"].to_numpy()
    return settled


def _move_items(items: pl.DataFrame, moves: pl.DataFrame) -> pl.DataFrame:
    joined = items.join(moves.rename({"_description": "_new_description"}), on="id", how="left", maintain_order="left")
    return joined.with_columns(
        day=pl.coalesce("_new_day", "day"),
        _description=pl.coalesce("_new_description", "_description"),
    ).drop("_new_day", "_new_description")
