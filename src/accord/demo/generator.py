"""A seeded, realistic enterprise customer base for demos, tests and benchmarks.

`ensure_demo` creates the demo users and teams and, for N customers, their contact points,
organisations, orders, interactions on every channel, lifecycle histories and custom field
values. It has to reach a million customers in minutes, so rows are built as plain tuples from
pre-drawn pools (see `pools`) with one `random.Random(seed)`, carry explicit ids (children refer to
parents without a round trip) and are written in chunks with the driver's bulk path: `executemany`
on SQLite, `COPY` on PostgreSQL. The same seed and `now` give the same rows.

Bulk seeding bypasses the service layer on purpose (a million audit entries and domain events
would describe no real business action); one audit entry records the generation itself.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import multiprocessing
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text

from accord.access import audit
from accord.access.passwords import hash_password
from accord.access.policy import SYSTEM
from accord.core.contact import fold
from accord.core.db import get_engine, session_scope
from accord.core.settings import get_settings
from accord.demo import catalog
from accord.demo.pools import COUNTRIES, CountryPools, ascii_key, build_pools
from accord.models import AuditEntry, Base, CustomFieldDefinition, Product, Team, User

DEMO_PASSWORD = "accord-demo"  # noqa: S105 - the published demo password
DEFAULT_CUSTOMERS = 2000
CHUNK = 5000  # customers per transaction: ~100k rows, flat memory at any size

DAY = 86400
YEAR = 365 * DAY
HISTORY = 3 * YEAR  # customers joined within the last three years
CHURN_AFTER = YEAR  # a buyer without an order for a year has churned

ProgressFn = Callable[[str, int, int], None]

# Columns of every bulk-written table, in the order the tuples are built.
COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": (
        "id", "name", "name_key", "domain", "industry", "employees", "annual_revenue",
        "annual_revenue_currency", "country", "value_tier", "owner_id", "team_id", "created_at",
        "updated_at", "version"),
    "customers": (
        "id", "title", "first_name", "last_name", "display_name", "name_key", "name_key_alt",
        "gender", "date_of_birth", "national_id", "notes", "lifecycle_stage", "value_tier",
        "lifetime_value", "preferred_channel", "preferred_language", "country", "account_id",
        "owner_id", "team_id", "created_at", "updated_at", "version"),
    "customer_emails": (
        "id", "customer_id", "email", "email_normalized", "kind", "is_primary", "verified"),
    "customer_phones": ("id", "customer_id", "phone", "e164", "kind", "is_primary"),
    "customer_addresses": (
        "id", "customer_id", "kind", "line1", "line2", "city", "region", "postcode", "country",
        "is_primary"),
    "contacts": (
        "id", "account_id", "customer_id", "first_name", "last_name", "job_title", "email",
        "phone", "is_primary", "created_at", "updated_at", "version"),
    "lifecycle_changes": (
        "id", "customer_id", "from_stage", "to_stage", "changed_at", "changed_by", "reason"),
    "orders": (
        "id", "customer_id", "number", "status", "currency", "total", "ordered_at", "channel",
        "created_at", "updated_at", "version"),
    "order_lines": (
        "id", "order_id", "product_id", "description", "quantity", "unit_price", "line_total"),
    "interactions": (
        "id", "customer_id", "channel", "direction", "department", "occurred_at", "subject",
        "body", "metadata", "source", "created_by", "created_at", "updated_at", "version"),
    "custom_field_values": (
        "id", "field_id", "record_id", "value_text", "value_number", "value_date"),
}
# Parents before children (the order chunks are written in).
BULK_TABLES = tuple(COLUMNS)

PRE_PURCHASE = ("awareness", "discovery", "evaluation", "intent")
STAGE_REASONS = {
    "awareness": "first seen", "discovery": "engaged with content",
    "evaluation": "compared products", "intent": "added items to basket",
    "purchase": "first order", "loyalty": "repeat order",
    "churned": "no order for 12 months",
}
CHANNEL_WEIGHTS = (("email", 40), ("app", 15), ("sms", 10), ("phone", 10), ("web", 10),
                   ("chat", 7), ("store", 5), ("social", 3))
ORDER_CHANNELS = (("web", 55), ("app", 25), ("store", 12), ("phone", 5), ("email", 3))


def _cumulative(pairs: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    total = float(sum(w for _, w in pairs))
    acc, out = 0.0, []
    for _, w in pairs:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return [v for v, _ in pairs], out


def _price(eur_cents: int, currency: str) -> int:
    """Regional list price: converted, ending in .99 (.00 for gift cards and big tickets)."""
    value = eur_cents * catalog.FX[currency]
    if eur_cents % 1000 == 0:
        return int(round(value / 100.0)) * 100
    return max(99, int(math.ceil(value / 100.0)) * 100 - 1)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass
class Stats:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


# --- progress ------------------------------------------------------------------------------------

class Progress:
    """One updating line per phase on a terminal, a line per 10% otherwise: long work shows
    that it is alive."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, phase: str, done: int, total: int) -> None:
        pct = 100 if total <= 0 else min(100, int(done * 100 / total))
        step = pct if self.tty else pct // 10 * 10
        if (phase, step) == self._last:
            return
        self._last = (phase, step)
        line = (f"  {phase:<24} {pct:3d}%  ({done:,}/{total:,})  "
                f"{time.perf_counter() - self.started:6.1f} s")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _quiet(_phase: str, _done: int, _total: int) -> None:
    return None


# --- bulk writing ------------------------------------------------------------------------------

class BulkWriter:
    """Writes tuples with the driver's bulk path: executemany on SQLite, COPY on PostgreSQL.

    Values arrive pre-converted (timestamps as UTC text, money as decimal text, booleans as 0/1),
    so no per-value type processing runs in Python."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.tz_suffix = "+00" if self.dialect == "postgresql" else ""
        self._raw: Any = None
        self.rows: dict[str, int] = {}

    def __enter__(self) -> BulkWriter:
        self._raw = self.engine.raw_connection()
        if self.dialect == "sqlite":
            cur = self._raw.cursor()
            # Consistent by construction (and tested); WAL with NORMAL cannot corrupt the file.
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-262144")
            cur.close()
        self._begin()
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                self.commit(begin=False)
            elif self.dialect == "sqlite":
                with contextlib.suppress(Exception):  # no transaction open: nothing to undo
                    self._exec("ROLLBACK")
            else:
                self._raw.rollback()
        finally:
            if self.dialect == "sqlite":
                cur = self._raw.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA synchronous={get_settings().sqlite_synchronous}")
                cur.execute("PRAGMA cache_size=-32000")
                cur.close()
            self._raw.close()

    def _exec(self, sql: str) -> None:
        cur = self._raw.cursor()
        cur.execute(sql)
        cur.close()

    def _begin(self) -> None:
        if self.dialect == "sqlite":
            self._exec("BEGIN IMMEDIATE")

    def commit(self, begin: bool = True) -> None:
        if self.dialect == "sqlite":
            self._exec("COMMIT")
            if begin:
                self._begin()
        else:
            self._raw.commit()

    def write(self, table: str, rows: list[tuple[Any, ...]],
              columns: tuple[str, ...] | None = None) -> None:
        if not rows:
            return
        cols = columns or COLUMNS[table]
        names = ", ".join(f'"{c}"' for c in cols)
        cur = self._raw.cursor()
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(cols))
            cur.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)  # noqa: S608
        else:
            with cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        cur.close()
        self.rows[table] = self.rows.get(table, 0) + len(rows)


# --- the generator -----------------------------------------------------------------------------

@dataclass
class Setup:
    """Ids of the reference rows the bulk rows point at."""

    team_ids: dict[str, int]
    user_ids: dict[str, int]  # by local part of the login
    products: dict[str, list[tuple[int, str, str, int]]]  # currency → (id, name, category, cents)
    loyalty_field: int
    shoe_field: int


class Generator:
    """Builds the rows of customers `[start, start + count)` for one chunk; keeps running ids."""

    def __init__(self, setup: Setup, seed: int, now: datetime, first_ids: dict[str, int],
                 tz_suffix: str = "") -> None:
        self.setup = setup
        self.rnd = random.Random(seed)
        self.pools: dict[str, CountryPools] = build_pools(seed)
        self.next_id = dict(first_ids)
        self.now = now
        self.tz = tz_suffix
        self.origin = now - timedelta(days=4 * 365)
        self.now_s = int((now - self.origin).total_seconds())
        self._days = [(self.origin.date() + timedelta(days=i)).isoformat() + " "
                      for i in range(self.now_s // DAY + 2)]
        self._tod = [f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}.000000{tz_suffix}"
                     for t in range(DAY)]
        self._ascii: dict[str, str] = {}
        self.countries, self.country_cum = _cumulative([(c.code, c.weight) for c in COUNTRIES])
        self.pref_channels, self.pref_cum = _cumulative(CHANNEL_WEIGHTS)
        self.order_channels, self.order_cum = _cumulative(ORDER_CHANNELS)
        self.accounts_by_country: dict[str, list[tuple[int, str, int | None, int]]] = {}
        self.account_has_primary: set[int] = set()
        self._fold: dict[str, str] = {}
        self.owner_plan = self._owner_plan()
        self.by_category = {
            cur: {cat: [p for p in prods if p[2] == cat] for cat in catalog.CATEGORIES}
            for cur, prods in setup.products.items()}
        self.meta_none = "{}"
        self.meta_campaign = {c: json.dumps({"campaign": c}) for c in catalog.CAMPAIGNS}

    # helpers
    def ts(self, sec: int) -> str:
        """Seconds since `origin` as text both engines read as UTC (no per-value processing)."""
        return self._days[sec // DAY] + self._tod[sec % DAY]

    def ascii_key(self, name: str) -> str:
        key = self._ascii.get(name)
        if key is None:
            key = self._ascii[name] = ascii_key(name)
        return key

    def take(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def folded(self, name: str) -> str:
        key = self._fold.get(name)
        if key is None:
            key = self._fold[name] = fold(name)
        return key

    def _owner_plan(self) -> dict[str, tuple[int, list[tuple[float, int | None]]]]:
        """Per team: its id and who owns its records (cumulative share, owner)."""
        u, t = self.setup.user_ids, self.setup.team_ids
        return {
            "Sales North": (t["Sales North"],
                            [(0.70, u["sales.north"]), (0.90, u["manager"]), (1.0, None)]),
            "Sales South": (t["Sales South"], [(0.85, u["sales.south"]), (1.0, None)]),
        }

    def owner_for(self, team: str) -> tuple[int | None, int]:
        team_id, plan = self.owner_plan[team]
        x = self.rnd.random()
        for share, owner in plan:
            if x < share:
                return owner, team_id
        return None, team_id

    # accounts
    def accounts(self, count: int) -> list[tuple[Any, ...]]:
        r = self.rnd.random
        rows = []
        used_domains: set[str] = set()
        for _ in range(count):
            code = self.countries[bisect.bisect(self.country_cum, r())]
            pools = self.pools[code]
            name = pools.companies[int(r() * len(pools.companies))]
            stem = ascii_key(name)[:24] or "company"
            domain = f"{stem}.{pools.country.tld}"
            n = 2
            while domain in used_domains:
                domain = f"{stem}{n}.{pools.country.tld}"
                n += 1
            used_domains.add(domain)
            aid = self.take("accounts")
            employees = int(10 ** (1 + r() * 3.7))
            revenue = employees * (60000 + int(r() * 140000))
            tier = ("bronze" if employees < 50 else "silver" if employees < 250
                    else "gold" if employees < 1000 else "platinum")
            owner, team_id = self.owner_for(pools.country.team)
            created = self.now_s - HISTORY - int(r() * YEAR)
            rows.append((aid, name, self.folded(name), domain,
                         catalog.INDUSTRIES[int(r() * len(catalog.INDUSTRIES))], employees,
                         f"{revenue}.00", pools.country.currency, code, tier, owner, team_id,
                         self.ts(created),
                         self.ts(created + int(r() * HISTORY)), 1))
            self.accounts_by_country.setdefault(code, []).append((aid, domain, owner, team_id))
        return rows

    # customers
    def chunk(self, count: int) -> dict[str, list[tuple[Any, ...]]]:
        """The rows of the next `count` customers, every table."""
        rnd = self.rnd
        r = rnd.random
        expo, gamma, beta = rnd.expovariate, rnd.gammavariate, rnd.betavariate
        ts, folded, ascii_key = self.ts, self.folded, self.ascii_key
        ids = self.next_id
        k_cu = ids["customers"] - 1
        k_or = ids["orders"] - 1
        k_ol = ids["order_lines"] - 1
        k_lc = ids["lifecycle_changes"] - 1
        k_em = ids["customer_emails"] - 1
        k_ph = ids["customer_phones"] - 1
        k_ad = ids["customer_addresses"] - 1
        k_co = ids["contacts"] - 1
        k_ix = ids["interactions"] - 1
        k_cf = ids["custom_field_values"] - 1
        now_s = self.now_s
        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in BULK_TABLES}
        customers, emails, phones = out["customers"], out["customer_emails"], out["customer_phones"]
        addresses, contacts = out["customer_addresses"], out["contacts"]
        changes = out["lifecycle_changes"]
        orders, lines, interactions = out["orders"], out["order_lines"], out["interactions"]
        cfv = out["custom_field_values"]
        users = self.setup.user_ids
        support_user, marketing_user = users["support"], users["marketing"]
        loyalty_field, shoe_field = self.setup.loyalty_field, self.setup.shoe_field
        now_day = self.origin.date().toordinal() + now_s // DAY

        for _ in range(count):
            cid = (k_cu := k_cu + 1)
            code = self.countries[bisect.bisect(self.country_cum, r())]
            P = self.pools[code]
            C = P.country
            g = r()
            gender = ("female" if g < 0.49 else "male" if g < 0.97
                      else "non_binary" if g < 0.985 else None)
            female = gender == "female" or (gender != "male" and r() < 0.5)
            names = P.first_f if female else P.first_m
            first = names[int(r() * len(names))]
            last = P.last[int(r() * len(P.last))]
            titles = C.titles_f if gender == "female" else C.titles_m if gender == "male" else ()
            title = titles[int(r() * len(titles))] if titles and r() < 0.45 else None
            fk, lk = folded(first), folded(last)
            age = 18 + int(rnd.triangular(0, 67, 20))
            dob = date.fromordinal(now_day - age * 365 - int(r() * 365)).isoformat()
            created = now_s - 60 - int(r() * HISTORY)

            # organisation (B2B) and ownership
            account = None
            accs = self.accounts_by_country.get(code)
            if accs and r() < 0.12:
                account = accs[int(r() * len(accs))]
                owner, team_id = account[2], account[3]
            else:
                owner, team_id = self.owner_for(C.team)

            # purchase behaviour: heterogeneous rates and drop-out (BG/NBD-like)
            order_times: list[int] = []
            if r() < (0.85 if account else 0.62):
                t = created + int(expo(1.0 / (25 * DAY)))
                if t < now_s:
                    rate = gamma(1.1, 2.6) * (2.0 if account else 1.0) / YEAR
                    drop = beta(1.0, 3.0)
                    while t < now_s and len(order_times) < 40:
                        order_times.append(t)
                        if r() < drop or rate <= 0:
                            break
                        t += int(expo(rate)) + 3600

            # orders and lines
            currency = C.currency
            products = self.setup.products[currency]
            by_cat = self.by_category[currency]
            favourite = by_cat[catalog.CATEGORIES[int(r() * 4)]]
            ltv = 0
            order_rows_start = len(orders)
            for ot in order_times:
                oid = (k_or := k_or + 1)
                n_lines = 1 if (x := r()) < 0.55 else 2 if x < 0.83 else 3 if x < 0.95 else 4
                total = 0
                for _l in range(n_lines):
                    prod = favourite[int(r() * len(favourite))] if r() < 0.6 else \
                        products[int(r() * len(products))]
                    qty = (5 + int(r() * 45)) if account and r() < 0.5 else (1 if r() < 0.85 else 2)
                    amount = prod[3] * qty
                    total += amount
                    lines.append(((k_ol := k_ol + 1), oid, prod[0], prod[1], qty, _money(prod[3]),
                                  _money(amount)))
                age_s = now_s - ot
                x = r()
                status = ("cancelled" if x < 0.03 else "refunded" if x < 0.05 and age_s > 7 * DAY
                          else "pending" if age_s < DAY else "paid" if age_s < 3 * DAY
                          else "shipped" if age_s < 10 * DAY else "delivered")
                if status not in ("cancelled", "refunded"):
                    ltv += total
                channel = self.order_channels[bisect.bisect(self.order_cum, r())]
                if account and r() < 0.5:
                    channel = "email"
                when = ts(ot)
                orders.append((oid, cid, f"D-{oid:09d}", status, currency, _money(total), when,
                               channel, when, ts(min(now_s, ot + 5 * DAY)), 1))

            # lifecycle: stage and a history consistent with the orders
            n_orders = len(order_times)
            history: list[tuple[str, int]] = [("awareness", created)]
            if n_orders:
                first_o = order_times[0]
                span = first_o - created
                steps = [s for s in PRE_PURCHASE[1:] if r() < 0.6]
                for i, stage in enumerate(steps):
                    history.append((stage, created + span * (i + 1) // (len(steps) + 1)))
                history.append(("purchase", first_o))
                if n_orders >= 2:
                    history.append(("loyalty", order_times[1]))
                if now_s - order_times[-1] > CHURN_AFTER:
                    history.append(("churned", order_times[-1] + CHURN_AFTER))
            else:
                x = r()
                target = 0 if x < 0.35 else 1 if x < 0.6 else 2 if x < 0.8 else 3
                span = now_s - created
                for i in range(1, target + 1):
                    history.append((PRE_PURCHASE[i], created + span * i // (target + 1)))
            stage = history[-1][0]
            prev = None
            for to_stage, at in history:
                by = owner if to_stage in ("evaluation", "intent") and owner and r() < 0.3 else None
                reason = "created" if prev is None else STAGE_REASONS[to_stage]
                changes.append(((k_lc := k_lc + 1), cid, prev, to_stage, ts(at), by, reason))
                prev = to_stage
            last_activity = max(history[-1][1], order_times[-1] if order_times else created)

            if n_orders:
                tier = ("bronze" if ltv < 25000 else "silver" if ltv < 80000
                        else "gold" if ltv < 250000 else "platinum")
                ltv_text: str | None = _money(ltv)
            else:
                tier, ltv_text = None, None

            # contact points
            local_first = ascii_key(first) or "customer"
            local_last = ascii_key(last) or "x"
            style = r()
            if style < 0.45:
                local = f"{local_first}.{local_last}{cid}"
            elif style < 0.7:
                local = f"{local_first[0]}{local_last}{cid}"
            elif style < 0.85:
                local = f"{local_last}.{local_first}{cid}"
            else:
                local = f"{local_first}{cid}"
            domain = C.mail_domains[int(r() * len(C.mail_domains))]
            normalized = f"{local}@{domain}"
            shown = normalized if r() < 0.9 else f"{local.title()}@{domain.capitalize()}"
            emails.append(((k_em := k_em + 1), cid, shown, normalized, "personal", 1,
                           1 if r() < 0.7 else 0))
            work_email = None
            if account:
                work_email = f"{local_first}.{local_last}@{account[1]}"
                emails.append(((k_em := k_em + 1), cid, work_email, work_email, "work", 0, 1))
            elif r() < 0.08:
                other = f"{local_last}{local_first[0]}{cid}@{C.mail_domains[int(r() * 5)]}"
                emails.append(((k_em := k_em + 1), cid, other, other, "other", 0, 0))
            mobile_e164 = None
            if r() < 0.92:
                nsn = P.mobile.national(rnd)
                mobile_e164 = P.mobile.e164(nsn)
                phones.append(((k_ph := k_ph + 1), cid, P.mobile.raw(nsn, int(r() * 3)),
                               mobile_e164, "mobile", 1))
            if r() < 0.2:
                nsn = P.landline.national(rnd)
                phones.append(((k_ph := k_ph + 1), cid, P.landline.raw(nsn, int(r() * 3)),
                               P.landline.e164(nsn), "work" if account else "home",
                               0 if mobile_e164 else 1))
            if r() < 0.95:
                city, postcode, region = P.places[int(r() * len(P.places))]
                street = P.streets[int(r() * len(P.streets))]
                number = 1 + int(r() * r() * 180)
                line1 = f"{number} {street}" if C.number_first else f"{street} {number}"
                line2 = f"Flat {1 + int(r() * 30)}" if r() < 0.08 else None
                addresses.append(((k_ad := k_ad + 1), cid, "home", line1, line2, city, region,
                                  postcode, code, 1))
                if n_orders and r() < 0.1:
                    city, postcode, region = P.places[int(r() * len(P.places))]
                    street = P.streets[int(r() * len(P.streets))]
                    line1 = f"{number} {street}" if C.number_first else f"{street} {number}"
                    addresses.append(((k_ad := k_ad + 1), cid, "shipping", line1, None, city,
                                      region, postcode, code, 0))

            if account:
                aid = account[0]
                primary = aid not in self.account_has_primary
                self.account_has_primary.add(aid)
                contacts.append(((k_co := k_co + 1), aid, cid, first, last,
                                 catalog.JOB_TITLES[int(r() * len(catalog.JOB_TITLES))], work_email,
                                 mobile_e164, 1 if primary else 0, ts(created), ts(created), 1))

            # interactions on every channel, from every department
            events: list[tuple[int, str, str, str, str, str, str, int | None]] = []
            tenure = now_s - created
            n_news = min(4, int(tenure / (200 * DAY) * (0.5 + r())))
            for _i in range(n_news):
                k = int(r() * len(catalog.NEWSLETTERS))
                camp = catalog.CAMPAIGNS[k % len(catalog.CAMPAIGNS)]
                events.append((created + int(r() * tenure), "email", "outbound", "marketing",
                               catalog.NEWSLETTERS[k],
                               "Newsletter sent" + (", opened" if r() < 0.35 else ""),
                               self.meta_campaign[camp], marketing_user))
            for _i in range(1 + int(r() * 2.2)):
                if r() < 0.65:
                    ch, subject = "web", catalog.WEB_EVENTS[int(r() * len(catalog.WEB_EVENTS))]
                else:
                    ch, subject = "app", catalog.APP_EVENTS[int(r() * len(catalog.APP_EVENTS))]
                events.append((created + int(r() * tenure), ch, "inbound", "marketing", subject, "",
                               self.meta_none, None))
            if r() < 0.12:
                camp = catalog.CAMPAIGNS[int(r() * len(catalog.CAMPAIGNS))]
                events.append((created + int(r() * tenure), "sms", "outbound", "marketing",
                               catalog.SMS_MARKETING[int(r() * 3)], "Campaign SMS delivered",
                               self.meta_campaign[camp], marketing_user))
            for j, ot in enumerate(order_times):
                number = orders[order_rows_start + j][2]
                if r() < 0.7:
                    events.append((ot + 60, "email", "outbound", "billing",
                                   f"Order {number} confirmed",
                                   "Order confirmation and invoice sent.", self.meta_none, None))
                if r() < 0.3 and now_s - ot > 2 * DAY:
                    events.append((ot + 2 * DAY, "sms", "outbound", "support",
                                   f"Your order {number} is on its way",
                                   "Dispatch notification with tracking link.", self.meta_none,
                                   None))
            if n_orders and r() < 0.12 + 0.06 * min(n_orders, 4):
                subject, body = catalog.SUPPORT[int(r() * len(catalog.SUPPORT))]
                x = r()
                ch = "chat" if x < 0.4 else "phone" if x < 0.7 else "email"
                at = order_times[int(r() * n_orders)] + int(r() * 20 * DAY)
                events.append((min(at, now_s - 1), ch, "inbound", "support", subject, body,
                               self.meta_none, support_user))
            if n_orders and r() < 0.06:
                subject, body = catalog.BILLING[int(r() * len(catalog.BILLING))]
                at = order_times[-1] + int(r() * 10 * DAY)
                events.append((min(at, now_s - 1), "email", "inbound", "billing", subject, body,
                               self.meta_none, None))
            if r() < 0.05:
                subject, body = catalog.SOCIAL[int(r() * len(catalog.SOCIAL))]
                events.append((created + int(r() * tenure), "social", "inbound", "marketing",
                               subject, body, self.meta_none, None))
            if r() < 0.1:
                events.append((created + int(r() * tenure), "store", "inbound", "sales",
                               catalog.STORE_VISITS[int(r() * len(catalog.STORE_VISITS))], "",
                               self.meta_none, None))
            if account:
                for _i in range(1 + int(r() * 2.5)):
                    subject, body = catalog.SALES_B2B[int(r() * len(catalog.SALES_B2B))]
                    events.append((created + int(r() * tenure), "phone" if r() < 0.6 else "email",
                                   "outbound", "sales", subject, body, self.meta_none, owner))
            events.sort()
            for at, ch, direction, dept, subject, body, meta, by in events:
                when = ts(at)
                interactions.append(((k_ix := k_ix + 1), cid, ch, direction, dept, when, subject,
                                     body, meta, "demo", by, when, when, 1))
            if events:
                last_activity = max(last_activity, events[-1][0])

            # custom fields
            if n_orders and r() < 0.75:
                member = "premium" if stage == "loyalty" and r() < 0.4 else "member"
                cfv.append(((k_cf := k_cf + 1), loyalty_field, cid, member, None, None))
            elif r() < 0.2:
                cfv.append(((k_cf := k_cf + 1), loyalty_field, cid, "none", None, None))
            if r() < 0.55:
                base = 36 if gender == "female" else 40
                size = base + int(r() * 7) + (0.5 if r() < 0.2 else 0)
                cfv.append(((k_cf := k_cf + 1), shoe_field, cid, None, str(size), None))

            # sensitive values and preferences
            national_id = _national_id(code, dob, rnd) if r() < 0.3 else None
            notes = catalog.NOTES[int(r() * len(catalog.NOTES))] if r() < 0.08 else None
            pref = self.pref_channels[bisect.bisect(self.pref_cum, r())]
            language = C.language if r() < 0.93 else "en-GB"
            customers.append((
                cid, title, first, last, f"{first} {last}", f"{lk} {fk}", f"{fk} {lk}", gender, dob,
                national_id, notes, stage, tier, ltv_text, pref, language, code,
                account[0] if account else None, owner, team_id, ts(created),
                ts(min(now_s, last_activity)), 1))
        ids["customers"] = k_cu + 1
        ids["orders"] = k_or + 1
        ids["order_lines"] = k_ol + 1
        ids["lifecycle_changes"] = k_lc + 1
        ids["customer_emails"] = k_em + 1
        ids["customer_phones"] = k_ph + 1
        ids["customer_addresses"] = k_ad + 1
        ids["contacts"] = k_co + 1
        ids["interactions"] = k_ix + 1
        ids["custom_field_values"] = k_cf + 1
        return out


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _national_id(code: str, dob: str, rnd: random.Random) -> str:
    """An identifier in the country's usual shape (not a real person's)."""
    digits = lambda n: str(int(rnd.random() * 10 ** n)).zfill(n)  # noqa: E731
    if code == "GB":
        return f"{_LETTERS[int(rnd.random() * 23)]}{_LETTERS[int(rnd.random() * 23)]}{digits(6)}" \
               f"{'ABCD'[int(rnd.random() * 4)]}"
    if code == "US":
        return f"{100 + int(rnd.random() * 565)}-{digits(2)}-{digits(4)}"
    if code == "ES":
        n = int(rnd.random() * 10 ** 8)
        return f"{n:08d}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"
    if code == "SE":
        return f"{dob[2:4]}{dob[5:7]}{dob[8:10]}-{digits(4)}"
    if code == "FR":
        return f"{1 + int(rnd.random() * 2)}{dob[2:4]}{dob[5:7]}{digits(10)}"
    if code == "IT":
        letters = "".join(_LETTERS[int(rnd.random() * 26)] for _ in range(6))
        return f"{letters}{dob[2:4]}A{dob[8:10]}H{digits(3)}X"
    return digits(11 if code == "DE" else 9)


# --- setup, wipe and the entry point ------------------------------------------------------------

def demo_logins() -> list[tuple[str, str]]:
    return [(f"{local}@{catalog.DEMO_DOMAIN}", role) for local, _, role, _ in catalog.DEMO_USERS]


class DemoIncomplete(RuntimeError):
    """Demo users exist but the generation that created them never finished."""


def demo_exists(engine: Engine) -> bool:
    """True once a generation has completed (its audit entry is the last thing it writes)."""
    admin_email = f"{catalog.DEMO_USERS[0][0]}@{catalog.DEMO_DOMAIN}"
    with engine.connect() as conn:
        done = conn.execute(select(AuditEntry.id).where(
            AuditEntry.resource == "demo", AuditEntry.action == "generate").limit(1)).first()
        if done is not None:
            return True
        if conn.execute(select(User.id).where(User.email == admin_email)).first() is not None:
            raise DemoIncomplete("an earlier demo generation did not finish; "
                                 "run `accord demo --fresh` to start again")
    return False


def wipe(engine: Engine) -> None:
    """Empty every table (the schema and its migration revision stay)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - names from the metadata


def _setup(url: str | None, now: datetime) -> Setup:
    """Teams, users (one argon2 hash for all), the product catalogue and custom fields."""
    password_hash = hash_password(DEMO_PASSWORD)
    with session_scope(url) as session:
        team_ids = {}
        for name, description in catalog.TEAMS:
            found = session.execute(select(Team.id).where(Team.name == name)).scalar()
            if found is None:
                found = session.execute(insert(Team).values(
                    name=name, description=description, created_at=now, updated_at=now, version=1
                ).returning(Team.id)).scalar_one()
            team_ids[name] = found
        user_ids = {}
        for local, full_name, role, team in catalog.DEMO_USERS:
            email = f"{local}@{catalog.DEMO_DOMAIN}"
            found = session.execute(select(User.id).where(User.email == email)).scalar()
            if found is None:
                found = session.execute(insert(User).values(
                    email=email, full_name=full_name, password_hash=password_hash, role=role,
                    team_id=team_ids[team] if team else None, is_active=True, locale="en_GB",
                    created_at=now, updated_at=now, version=1).returning(User.id)).scalar_one()
            user_ids[local] = found
        products: dict[str, list[tuple[int, str, str, int]]] = {}
        existing = {sku: pid for pid, sku in session.execute(select(Product.id, Product.sku))}
        for currency in ("EUR", "GBP", "USD"):
            products[currency] = []
            for stem, name, category, eur in catalog.PRODUCTS:
                sku = f"{stem}-{currency}"
                cents = _price(eur, currency)
                pid = existing.get(sku)
                if pid is None:
                    pid = session.execute(insert(Product).values(
                        sku=sku, name=name, category=category, price=_money(cents),
                        currency=currency, active=True, created_at=now, updated_at=now, version=1
                    ).returning(Product.id)).scalar_one()
                products[currency].append((pid, name, category, cents))
        fields = {}
        for key, label, type_, choices, help_text in (
            ("loyalty_member", "Loyalty programme", "choice", ["none", "member", "premium"],
             "Membership level in the loyalty programme"),
            ("shoe_size", "Shoe size (EU)", "number", [], "For fitting recommendations"),
        ):
            found = session.execute(select(CustomFieldDefinition.id).where(
                CustomFieldDefinition.entity == "customer",
                CustomFieldDefinition.key == key)).scalar()
            if found is None:
                found = session.execute(insert(CustomFieldDefinition).values(
                    entity="customer", key=key, label=label, type=type_, choices=choices,
                    required=False, sensitive=False, help_text=help_text, created_at=now,
                    updated_at=now, version=1).returning(CustomFieldDefinition.id)).scalar_one()
            fields[key] = found
    return Setup(team_ids, user_ids, products, fields["loyalty_member"], fields["shoe_size"])


def first_ids(engine: Engine, tables: tuple[str, ...]) -> dict[str, int]:
    """Explicit ids continue after whatever is already there."""
    out = {}
    with engine.connect() as conn:
        for table in tables:
            t = Base.metadata.tables[table]
            out[table] = (conn.execute(select(func.max(t.c.id))).scalar() or 0) + 1
    return out


def finish_tables(engine: Engine, tables: tuple[str, ...]) -> None:
    """Move PostgreSQL sequences past the explicit ids; refresh planner statistics."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in tables:
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM \"{table}\""))
            conn.execute(text("ANALYZE"))
        else:
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")


def default_now() -> datetime:
    """Midnight UTC today: the data is 'current' and stays identical for a day."""
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def _chunks(gen: Generator, customers: int, chunk: int, parallel: bool | None
            ) -> Iterator[tuple[int, dict[str, list[tuple[Any, ...]]]]]:
    """(customers done, rows) per chunk. In parallel mode a forked child builds the chunks (pure
    Python) while this process stores the previous one (mostly database C code): the same rows
    in the same order, in about the time of the slower half."""
    sizes = [(min(customers, s + chunk), min(chunk, customers - s))
             for s in range(0, customers, chunk)]
    if parallel is None:
        parallel = len(sizes) > 2
    if not parallel or "fork" not in multiprocessing.get_all_start_methods():
        for done, size in sizes:
            yield done, gen.chunk(size)
        return
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)

    def produce() -> None:
        receiver.close()
        try:
            for done, size in sizes:
                sender.send((done, gen.chunk(size)))
        except BaseException as exc:  # reported to the parent, which raises it
            sender.send(("error", repr(exc)))
        finally:
            sender.close()

    child = ctx.Process(target=produce, name="accord-demo-generator", daemon=True)
    child.start()
    sender.close()
    try:
        for _ in sizes:
            item = receiver.recv()
            if item[0] == "error":
                raise RuntimeError(f"demo generator process failed: {item[1]}")
            yield item
    finally:
        receiver.close()
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()


def generate(customers: int, seed: int, *, url: str | None = None, now: datetime | None = None,
             progress: ProgressFn | None = None, chunk: int = CHUNK,
             parallel: bool | None = None) -> Stats:
    """Write the demo data set; the database must be migrated. Returns row counts and time."""
    started = time.perf_counter()
    progress = progress or _quiet
    now = now or default_now()
    engine = get_engine(url)
    progress("reference data", 0, 1)
    setup = _setup(url, now)
    progress("reference data", 1, 1)
    writer = BulkWriter(engine)
    gen = Generator(setup, seed, now, first_ids(engine, BULK_TABLES), writer.tz_suffix)
    n_accounts = max(3, customers // 60)
    with writer:
        for start in range(0, n_accounts, chunk):
            writer.write("accounts", gen.accounts(min(chunk, n_accounts - start)))
        writer.commit()
        progress("customers", 0, customers)
        for done, rows in _chunks(gen, customers, chunk, parallel):
            for table in BULK_TABLES:
                writer.write(table, rows[table])
            writer.commit()
            progress("customers", done, customers)
    progress("indexes and statistics", 0, 1)
    finish_tables(engine, BULK_TABLES)
    with session_scope(url) as session:
        audit.record(session, SYSTEM, "generate", "demo", None, list(writer.rows),
                     {"customers": customers, "seed": seed, "rows": writer.rows})
    progress("indexes and statistics", 1, 1)
    return Stats(rows=dict(writer.rows), seconds=time.perf_counter() - started)


DEMO_SOURCE = "web"
DEMO_KEY_FILE = "demo-web-write-key"


def demo_write_key(url: str | None = None, key_file: Path | None = None) -> str:
    """The demo's tracking source `web` and its write key, the same on every `accord demo`.

    The database keeps only the key's hash, so the plaintext is kept beside the demo data (in
    the data directory, readable by its owner only) to be printed again. After `--fresh` the
    source is registered anew with the kept key; a key rotated since (through the API or admin
    page) cannot be printed, so a new one is minted and kept instead.
    """
    from accord.integration.sources import create_source, hash_key, mint_write_key
    from accord.models import Source

    key_file = key_file or get_settings().data_dir / DEMO_KEY_FILE
    kept = key_file.read_text().strip() if key_file.is_file() else ""
    with session_scope(url) as session:
        source = session.scalar(select(Source).where(Source.name == DEMO_SOURCE))
        if source is None:
            source = create_source(session, SYSTEM, name=DEMO_SOURCE, kind="tracking",
                                   trust_rank=60, description="The demo web site "
                                   "(Segment-compatible collection API)")
        if kept.startswith("wk_") and source.write_key_hash in (None, hash_key(kept)):
            if source.write_key_hash is None:
                source.write_key_hash, source.write_key_prefix = hash_key(kept), kept[:10]
                audit.record(session, SYSTEM, "rotate_key", "sources", source.id,
                             ("write_key",), {"via": "demo"})
            return kept
        key = mint_write_key(session, SYSTEM, source)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(key + "\n")
    return key


def ensure_demo(customers: int = DEFAULT_CUSTOMERS, seed: int = 42, fresh: bool = False, *,
                url: str | None = None, now: datetime | None = None,
                progress: ProgressFn | None = None) -> list[tuple[str, str]]:
    """Generate the demo customer base once (or again with `fresh`); return the demo logins."""
    engine = get_engine(url)
    if fresh:
        wipe(engine)
    if not demo_exists(engine):
        stats = generate(customers, seed, url=url, now=now, progress=progress or Progress())
        if progress is None:
            sys.stderr.write(f"  {stats.total_rows:,} rows in {stats.seconds:.1f} s\n")
    from accord.demo.sales import demo_sales
    from accord.demo.service import demo_service
    from accord.models import Deal, Ticket

    # each domain's demo also joins a demo made before that domain existed
    for marker, make in ((Deal.id, demo_sales), (Ticket.id, demo_service)):
        with session_scope(url) as session:
            present = session.execute(select(marker).limit(1)).first() is not None
        if not present:
            make(customers, seed, url=url, now=now, progress=progress)
    return demo_logins()

