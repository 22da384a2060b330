"""Seeded pools of locale-specific values, built once per run and sampled per row.

Calling Faker (or phonenumbers) for every one of a million rows would dominate the run time, so
each country's names, streets, cities and companies are drawn once into pools and combined per row
with a `random.Random`; phone numbers are made from random digits and checked against the
country's own numbering-plan patterns (the data phonenumbers validates with), which costs a regex
match instead of a parse.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from faker import Faker

from accord.core.contact import fold


@dataclass(frozen=True)
class Country:
    code: str
    locale: str
    currency: str
    language: str
    team: str
    weight: float
    titles_f: tuple[str, ...]
    titles_m: tuple[str, ...]
    mail_domains: tuple[str, ...]
    tld: str
    number_first: bool  # "12 Baker Street" rather than "Hauptstraße 12"
    name: str


COUNTRIES: tuple[Country, ...] = (
    Country("GB", "en_GB", "GBP", "en-GB", "Sales North", 0.20, ("Ms", "Mrs", "Miss", "Dr"),
            ("Mr", "Dr"),
            ("gmail.com", "outlook.com", "yahoo.co.uk", "btinternet.com", "hotmail.co.uk"),
            "co.uk", True, "United Kingdom"),
    Country("DE", "de_DE", "EUR", "de-DE", "Sales North", 0.20, ("Frau", "Dr."), ("Herr", "Dr."),
            ("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de"),
            "de", False, "Deutschland"),
    Country("FR", "fr_FR", "EUR", "fr-FR", "Sales South", 0.15, ("Mme",), ("M.",),
            ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"),
            "fr", True, "France"),
    Country("US", "en_US", "USD", "en-US", "Sales South", 0.15, ("Ms.", "Mrs.", "Dr."),
            ("Mr.", "Dr."), ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com"),
            "com", True, "United States"),
    Country("ES", "es_ES", "EUR", "es-ES", "Sales South", 0.10, ("Sra.",), ("Sr.",),
            ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"),
            "es", False, "España"),
    Country("IT", "it_IT", "EUR", "it-IT", "Sales South", 0.10, ("Sig.ra", "Dott.ssa"),
            ("Sig.", "Dott."), ("gmail.com", "libero.it", "virgilio.it", "alice.it", "tiscali.it"),
            "it", False, "Italia"),
    Country("NL", "nl_NL", "EUR", "nl-NL", "Sales North", 0.05, ("Mevr.",), ("Dhr.",),
            ("gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl", "outlook.com"),
            "nl", False, "Nederland"),
    Country("SE", "sv_SE", "EUR", "sv-SE", "Sales North", 0.05, (), (),
            ("gmail.com", "telia.com", "hotmail.se", "outlook.com", "live.se"),
            "se", False, "Sverige"),
)
BY_CODE = {c.code: c for c in COUNTRIES}

_ASCII = re.compile(r"[^a-z]")
_REGION_METHODS = ("administrative_unit", "state", "region", "county")


def ascii_key(text: str) -> str:
    """Letters only, accent-free, lower-case: the part of a name that can go into an e-mail."""
    return _ASCII.sub("", fold(text).replace("ß", "ss"))


class PhoneMaker:
    """Valid numbers of one country and type: random digits checked against its numbering plan."""

    def __init__(self, region: str, kind: str, rng: random.Random) -> None:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        desc = meta.mobile if kind == "mobile" else meta.fixed_line
        self.cc = str(meta.country_code)
        self.national_prefix = meta.national_prefix or ""
        self.region = region
        general = re.compile(meta.general_desc.national_number_pattern)
        typed = re.compile(desc.national_number_pattern)
        lengths = set(desc.possible_length or meta.general_desc.possible_length)
        example = desc.example_number
        self._ok = lambda nsn: (len(nsn) in lengths and typed.fullmatch(nsn) is not None
                                and general.fullmatch(nsn) is not None)
        # Prefixes of valid numbers, found once, so most random tails are valid at the first try.
        prefixes: set[str] = set()
        size = 3 if len(example) > 7 else 2
        for _ in range(20000):
            nsn = example[0] + "".join(rng.choice("0123456789") for _ in range(len(example) - 1))
            if self._ok(nsn):
                prefixes.add(nsn[:size])
            if len(prefixes) >= 40:
                break
        self.prefixes = sorted(prefixes) or [example[:size]]
        self.tail = len(example) - size
        self.example = example

    def national(self, rnd: random.Random) -> str:
        """A valid national significant number."""
        for _ in range(50):
            prefix = self.prefixes[int(rnd.random() * len(self.prefixes))]
            nsn = prefix + str(int(rnd.random() * 10 ** self.tail)).zfill(self.tail)
            if self._ok(nsn):
                return nsn
        return self.example

    def e164(self, nsn: str) -> str:
        return f"+{self.cc}{nsn}"

    def raw(self, nsn: str, style: int) -> str:
        """As people write it: international spaced (0), national (1), national grouped (2)."""
        if self.region == "US":
            if style == 0:
                return f"+1 {nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
            if style == 1:
                return f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}"
            return f"{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}"
        if style == 0:
            return f"+{self.cc} {group(nsn, self.region)}"
        national = self.national_prefix + nsn
        return national if style == 1 else group(national, self.region)


def group(digits: str, region: str) -> str:
    """Digits in the groups a country usually writes them in."""
    if region == "FR" and len(digits) == 10:
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    head = 5 if region == "GB" and digits.startswith("07") else (4 if len(digits) > 9 else 3)
    rest = digits[head:]
    return digits[:head] + " " + " ".join(rest[i:i + 4] for i in range(0, len(rest), 4))


@dataclass
class CountryPools:
    country: Country
    first_f: list[str]
    first_m: list[str]
    last: list[str]
    streets: list[str]
    places: list[tuple[str, str, str | None]]  # city, postcode, region
    companies: list[str]
    jobs: list[str]
    mobile: PhoneMaker
    landline: PhoneMaker
    extra: dict[str, list[str]] = field(default_factory=dict)


def _draw(fn, n: int) -> list[str]:
    """`n` draws (repeats kept, so frequent names stay frequent)."""
    return [fn() for _ in range(n)]


@lru_cache(maxsize=4)
def build_pools(seed: int, size: int = 400) -> dict[str, CountryPools]:
    """Pools for every demo country; identical for the same seed (and Faker version). Cached:
    callers only read them."""
    out: dict[str, CountryPools] = {}
    for index, country in enumerate(COUNTRIES):
        fake = Faker(country.locale)
        fake.seed_instance(seed * 1000 + index)
        region_fn = next((getattr(fake, m) for m in _REGION_METHODS if hasattr(fake, m)), None)
        places = [(fake.city(), fake.postcode(), region_fn() if region_fn else None)
                  for _ in range(size)]
        companies = sorted({c for c in _draw(fake.company, size // 2) if ascii_key(c)})
        rng = random.Random(seed * 7919 + index)
        out[country.code] = CountryPools(
            country=country,
            first_f=_draw(fake.first_name_female, size),
            first_m=_draw(fake.first_name_male, size),
            last=_draw(fake.last_name, size),
            streets=_draw(fake.street_name, size),
            places=places,
            companies=companies,
            jobs=_draw(fake.job, size // 4),
            mobile=PhoneMaker(country.code, "mobile", rng),
            landline=PhoneMaker(country.code, "fixed_line", rng),
        )
    return out
