"""Which column of an import file means what: source columns -> canonical fields.

A `Mapping` says what one row of a file is (a profile, an order or an interaction), which
column holds its id in the source (`external_id`), which column names the person an order or
interaction is about (`subject`), and which canonical field each column fills. Several columns
may fill the same field: the first non-empty one wins (a HubSpot "Phone Number" before its
"Mobile Phone Number"). A column given a list of fields fills the first that is still empty, so
a second phone number is kept as a custom field instead of being dropped. Unmapped columns are
not lost: the whole row is kept as the raw payload.

Written by hand as YAML (or JSON)::

    kind: profile            # profile | order | interaction
    external_id: Record ID
    default_country: DE      # for phone numbers without a country code
    date_order: DMY          # how to read 01/02/1990 (DMY, MDY or YMD)
    columns:
      First Name: first_name
      Phone Number: phone
      Mobile Phone Number: [phone, cf.mobile_phone]
      Loyalty tier: cf.loyalty_tier
      Notes: null            # ignored on purpose (`ignore` too): kept in the raw record only

or detected from the header (`detect`): the known layouts of common CRM exports (HubSpot and
Salesforce contacts), the demo's billing, web shop and support extracts, and otherwise a
matcher of normalised names and synonyms ("FIRST_NAME", "given_name", "e-mail", "zip", "dob",
a JSON Lines `name.first`). A hand-written mapping need not name every column: `settle_mapping`
detects the columns it does not name.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml

from accord.core.errors import ValidationProblem

KINDS = ("profile", "order", "interaction")
# `address` is a whole address on one line ("12 Baker Street, NW1 6XE London"), which the
# standardiser splits into line 1, postcode and city where it can.
PROFILE_FIELDS = ("first_name", "last_name", "full_name", "email", "phone", "date_of_birth",
                  "address", "address_line1", "address_line2", "city", "region", "postcode",
                  "country", "national_id", "title", "gender", "company", "job_title",
                  "language", "currency")
ORDER_FIELDS = ("order.number", "order.total", "order.currency", "order.status",
                "order.ordered_at", "order.channel")
INTERACTION_FIELDS = ("interaction.channel", "interaction.direction", "interaction.department",
                      "interaction.occurred_at", "interaction.subject", "interaction.body",
                      "interaction.metadata")
DATE_ORDERS = ("DMY", "MDY", "YMD")
DATE_FIELDS = frozenset({"date_of_birth", "order.ordered_at", "interaction.occurred_at"})
CUSTOM_KEY = re.compile(r"^cf\.[a-z][a-z0-9_]{0,59}$")
# A column mapped to one of these (or to null) is ignored on purpose: it fills no field and
# is not detected either; it stays in the raw record.
IGNORE = frozenset({"", "ignore"})
_OPTION_KEYS = ("kind", "external_id", "subject", "default_country", "date_order", "columns",
                "layout")


def canonical_fields(kind: str) -> tuple[str, ...]:
    """The fields a column may fill in a file of this kind (custom fields `cf.<key>` besides)."""
    return {"profile": PROFILE_FIELDS, "order": ORDER_FIELDS,
            "interaction": INTERACTION_FIELDS}[kind]


def normalise(name: str) -> str:
    """`First Name`, `FIRST_NAME`, `first-name` and `Prénom` compare as `firstname`/`prenom`."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", text.casefold())


# --- the mapping -------------------------------------------------------------------------------


@dataclass
class Mapping:
    kind: str = "profile"
    external_id: str | None = None
    subject: str | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    default_country: str | None = None
    date_order: str | None = None
    layout: str | None = None  # how it was made: hubspot, salesforce, demo-billing, generic, ...
    # column -> further fields its value fills, in turn, when its own field is already filled
    overflow: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        columns: dict[str, Any] = {c: [f, *self.overflow[c]] if f and c in self.overflow else f
                                   for c, f in self.columns.items()}
        out: dict[str, Any] = {"kind": self.kind, "external_id": self.external_id,
                               "subject": self.subject, "columns": columns}
        for key in ("default_country", "date_order", "layout"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    @property
    def mapped_fields(self) -> dict[str, str]:
        return {c: f for c, f in self.columns.items() if f}

    def unmapped(self, columns: Iterable[str]) -> list[str]:
        """File columns that fill no field: they travel in the raw payload only."""
        used = {c for c, f in self.columns.items() if f} | {self.external_id, self.subject}
        return [c for c in columns if c not in used]

    def compile(self) -> Callable[[dict[str, Any]], tuple[str | None, str | None, dict[str, Any]]]:
        """A fast row -> (external id, subject key, canonical fields) function for the hot path.

        Values are stripped; empty ones fill nothing. A column that is absent from a JSON row
        but written `a.b` reads the nested value. A value whose field is filled already goes to
        the column's first free overflow field, unless it repeats the value there (a mobile
        number that is also the main one). With `date_order`, numeric dates such as
        `01/02/1990` are rewritten in ISO 8601 in the fields (the payload keeps what was sent).
        """
        pairs = [(c, f, self.overflow.get(c, ())) for c, f in self.columns.items() if f]
        ext_col, subject_col = self.external_id, self.subject
        order = self.date_order
        targets = {f for _, f, _ in pairs} | {f for _, _, more in pairs for f in more}
        dates = frozenset(targets & DATE_FIELDS) if order else frozenset()

        def extract(row: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
            fields: dict[str, Any] = {}
            for column, name, more in pairs:
                if name in fields and not more:
                    continue
                value = row.get(column)
                if value is None:
                    if "." not in column or column in row:
                        continue
                    value = _nested(row, column)
                    if value is None:
                        continue
                if value.__class__ is str:
                    value = value.strip()
                    if not value:
                        continue
                else:
                    value = _scalar(value, name)
                    if value is None:
                        continue
                if name in fields:  # a second phone number, say: the first free overflow field
                    if value == fields[name]:
                        continue
                    spare = next((n for n in more if n not in fields), None)
                    if spare is None:
                        continue
                    name = spare
                fields[name] = value
            if dates:
                for name in dates & fields.keys():
                    fields[name] = reorder_date(fields[name], order)  # type: ignore[arg-type]
            return (_key(row, ext_col) if ext_col else None,
                    _key(row, subject_col) if subject_col else None, fields)

        return extract


def _nested(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _scalar(value: Any, name: str) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        if name == "interaction.metadata" and isinstance(value, dict):
            return value
        return json.dumps(value, ensure_ascii=False, default=str) if value else None
    return str(value).strip() or None


def column_value(row: dict[str, Any], column: str) -> Any:
    """A column's value, or for a JSON row a nested one written `a.b`, as extraction reads it."""
    value = row.get(column)
    if value is None and "." in column and column not in row:
        return _nested(row, column)
    return value


def as_written(value: Any, name: str = "") -> str:
    """A value as text, as extraction takes it (booleans true/false, objects as JSON)."""
    return _scalar(value, name) or ""


def _key(row: dict[str, Any], column: str) -> str | None:
    value = row.get(column)
    if value is None and "." in column:
        value = _nested(row, column)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = (("true" if value else "false") if isinstance(value, bool) else str(value)).strip()
    return text or None


_DATE = re.compile(r"^\s*(\d{1,4})[./\-\s](\d{1,2})[./\-\s](\d{1,4})(?:([T\s,]+)(.*))?$")


def reorder_date(text: str, order: str) -> str:
    """`01/02/1990` read in the declared order, as ISO 8601 (a time part is kept). Anything that
    is not a plausible numeric date is returned unchanged for the standardiser to judge."""
    m = _DATE.match(text)
    if not m:
        return text
    a, b, c, sep, rest = m.groups()
    if len(a) == 4:
        y, mo, d = a, b, c
    elif order == "DMY":
        d, mo, y = a, b, c
    elif order == "MDY":
        mo, d, y = a, b, c
    else:
        y, mo, d = a, b, c
    if len(y) == 2:
        yy = int(y)
        y = str(2000 + yy if 2000 + yy <= date.today().year else 1900 + yy)
    elif len(y) != 4:
        return text
    try:
        iso = date(int(y), int(mo), int(d)).isoformat()
    except ValueError:
        return text
    return f"{iso}T{rest.strip()}" if rest and rest.strip() else iso


# --- loading and validating ------------------------------------------------------------------


def _problem(errors: list[dict[str, str]]) -> ValidationProblem:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ValidationProblem(f"the mapping is not valid: {detail}", field=errors[0]["field"],
                             errors=errors)


def parse_mapping(data: Any) -> Mapping:
    """A mapping from its dict form (YAML/JSON, or a source's stored mapping), validated.

    Without a `columns` key the whole dict is read as `column: field` pairs.
    """
    if not isinstance(data, dict):
        raise _problem([{"field": "mapping", "message": "must be a mapping of options and "
                                                        "columns"}])
    if "columns" not in data:  # flat: column -> field, options where the value is no field
        known = set(PROFILE_FIELDS + ORDER_FIELDS + INTERACTION_FIELDS)
        options = {k: v for k, v in data.items()
                   if k in _OPTION_KEYS and not (isinstance(v, str) and (
                       v in known or v.startswith("cf.")))}
        data = {**options, "columns": {k: v for k, v in data.items() if k not in options}}
    errors: list[dict[str, str]] = []
    for key in data:
        if key not in _OPTION_KEYS:
            errors.append({"field": f"mapping.{key}",
                           "message": f"unknown option {key!r} (allowed: "
                                      f"{', '.join(_OPTION_KEYS)})"})
    kind = data.get("kind") or "profile"
    if kind not in KINDS:
        errors.append({"field": "mapping.kind",
                       "message": f"unknown kind {kind!r} (allowed: {', '.join(KINDS)})"})
        kind = "profile"
    columns = data.get("columns") or {}
    if not isinstance(columns, dict):
        errors.append({"field": "mapping.columns", "message": "must map column names to fields"})
        columns = {}
    allowed = canonical_fields(kind)
    clean: dict[str, str | None] = {}
    overflow: dict[str, tuple[str, ...]] = {}
    for column, target in columns.items():
        column = str(column)
        if target is None or (isinstance(target, str) and target.strip() in IGNORE):
            clean[column] = None
            continue
        names = list(target) if isinstance(target, list) else [target]
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            errors.append({"field": f"mapping.columns.{column}",
                           "message": "the target must be a field name or a list of them"})
            continue
        names = [n.strip() for n in names]
        wrong = [n for n in names if n not in allowed and not CUSTOM_KEY.match(n)]
        if not wrong:
            clean[column] = names[0]
            if len(names) > 1:
                overflow[column] = tuple(names[1:])
            continue
        target = wrong[0]
        if target.startswith("cf."):
            message = (f"custom field {target!r} must be cf. followed by a lower-case key "
                       "(letters, digits, _)")
        elif target in PROFILE_FIELDS + ORDER_FIELDS + INTERACTION_FIELDS:
            message = f"field {target!r} does not belong in a {kind} file"
        else:
            message = f"unknown field {target!r}"
        errors.append({"field": f"mapping.columns.{column}", "message": message})
    external_id = _optional_text(data, "external_id", errors)
    subject = _optional_text(data, "subject", errors)
    if kind != "profile" and not subject:
        errors.append({"field": "mapping.subject",
                       "message": f"a {kind} file needs the column that names the customer "
                                  "(their id in this source)"})
    country = _optional_text(data, "default_country", errors)
    if country is not None:
        country = country.upper()
        if not re.fullmatch(r"[A-Z]{2}", country):
            errors.append({"field": "mapping.default_country",
                           "message": "must be a two-letter ISO 3166 country code"})
    date_order = _optional_text(data, "date_order", errors)
    if date_order is not None:
        date_order = date_order.upper()
        if date_order not in DATE_ORDERS:
            errors.append({"field": "mapping.date_order",
                           "message": f"must be one of {', '.join(DATE_ORDERS)}"})
    if errors:
        raise _problem(errors)
    return Mapping(kind=kind, external_id=external_id, subject=subject, columns=clean,
                   default_country=country, date_order=date_order,
                   layout=_optional_text(data, "layout", []) or "file", overflow=overflow)


def _optional_text(data: dict[str, Any], key: str, errors: list[dict[str, str]]) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.append({"field": f"mapping.{key}", "message": "must be a text value"})
        return None
    return value.strip() or None


def load_mapping(text: str) -> Mapping:
    """A mapping written as YAML (JSON is valid YAML too)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise _problem([{"field": "mapping",
                         "message": f"not valid YAML or JSON{line}"}]) from None
    return parse_mapping(data)


def check_columns(mapping: Mapping, columns: list[str], *, strict: bool = True) -> list[str]:
    """Compare a mapping with a file's header. The id and subject columns must exist (a missing
    id column would silently key every row by its content); mapped columns that are missing
    are returned as warnings. JSON Lines files are not strict: their columns are a sample."""
    present = set(columns)
    errors: list[dict[str, str]] = []
    for key in ("external_id", "subject"):
        column = getattr(mapping, key)
        if column and column not in present and strict:
            errors.append({"field": f"mapping.{key}",
                           "message": f"the file has no column {column!r}"})
    if errors:
        raise _problem(errors)
    return [f"the file has no column {c!r}" for c in mapping.mapped_fields if c not in present]


# --- detection ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A known export layout: its id column and what its own columns mean (normalised names).
    Columns it does not list fall to the generic matcher."""

    name: str
    id_columns: tuple[str, ...]
    columns: dict[str, str]
    signature: frozenset[str]  # normalised names that must all be present
    # ... and at least one of these (if any): names only this layout uses. A report need not
    # have every column of the full export, so no single one of them is required.
    markers: frozenset[str] = frozenset()

    def fits(self, present: set[str]) -> bool:
        return self.signature <= present and (not self.markers or bool(self.markers & present))


HUBSPOT = Layout(
    "hubspot", ("recordid", "contactid"),
    {"firstname": "first_name", "lastname": "last_name", "email": "email",
     "phonenumber": "phone", "phone": "phone", "mobilephonenumber": "phone", "mobilephone": "phone",
     "streetaddress": "address_line1", "city": "city", "stateregion": "region",
     "postalcode": "postcode", "countryregion": "country", "companyname": "company",
     "jobtitle": "job_title", "salutation": "title", "dateofbirth": "date_of_birth",
     "preferredlanguage": "language", "gender": "gender",
     "lifecyclestage": "cf.lifecycle_stage", "leadstatus": "cf.lead_status"},
    frozenset({"firstname", "lastname"}),
    frozenset({"recordid", "lifecyclestage"}),
)
SALESFORCE = Layout(
    "salesforce", ("contactid", "id"),
    {"salutation": "title", "firstname": "first_name", "lastname": "last_name", "email": "email",
     "phone": "phone", "mobile": "phone", "mobilephone": "phone", "homephone": "phone",
     "otherphone": "phone", "mailingstreet": "address_line1", "mailingcity": "city",
     "mailingstateprovince": "region", "mailingstate": "region", "mailingzippostalcode": "postcode",
     "mailingpostalcode": "postcode", "mailingcountry": "country", "birthdate": "date_of_birth",
     "title": "job_title", "accountname": "company", "gender": "gender",
     "genderidentity": "gender", "leadsource": "cf.lead_source"},
    frozenset({"firstname", "lastname"}),
    # a report of a few columns (Contact ID, Name, Title, Account Name, Phone, Email) is still
    # Salesforce, whose "Title" is the job and not Mr/Ms
    frozenset({"contactid", "accountname", "mailingcity", "mailingstreet", "mailingcountry",
               "mailingpostalcode", "mailingzippostalcode", "mailingstateprovince"}),
)
DEMO_BILLING = Layout(
    "demo-billing", ("billingaccountno",),
    {"firstname": "first_name", "lastname": "last_name", "dob": "date_of_birth",
     "phone": "phone", "email": "email", "street": "address_line1", "postcode": "postcode",
     "city": "city", "country": "country"},
    frozenset({"billingaccountno", "firstname", "lastname"}),
)
DEMO_WEBSHOP = Layout(
    "demo-webshop", ("shopcustomerid",),
    {"email": "email", "firstname": "first_name", "lastname": "last_name",
     "birthdate": "date_of_birth", "phone": "phone", "address": "address",
     "country": "country"},
    frozenset({"shopcustomerid", "email"}),
)
DEMO_SUPPORT = Layout(
    "demo-support", ("contactref",),
    {"fullname": "full_name", "phone": "phone", "email": "email", "city": "city",
     "country": "country"},
    frozenset({"contactref", "fullname"}),
)
LAYOUTS = (HUBSPOT, SALESFORCE, DEMO_BILLING, DEMO_WEBSHOP, DEMO_SUPPORT)

# Generic synonyms (normalised) -> field. Earlier names of the same field win over later ones
# when a file has several (a "phone" before a "mobile").
_PROFILE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "first", "givenname", "forename", "fname", "vorname", "prenom",
                   "nombre", "voornaam", "christianname"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname", "nachname", "nom",
                  "apellido", "apellidos", "achternaam", "secondname"),
    "full_name": ("fullname", "name", "contactname", "customername", "displayname",
                  "personname", "clientname", "completename"),
    "email": ("email", "emailaddress", "mail", "emailaddr", "primaryemail", "emailid",
              "workemail", "personalemail"),
    # a main number ranks before a mobile, home or work one (kept as a custom field beside it)
    "phone": ("phone", "phonenumber", "telephone", "telephonenumber", "tel", "phoneno",
              "primaryphone", "telefon", "telefono", "phone1", "mobile", "mobilephone",
              "mobilenumber", "mobilephonenumber", "cell", "cellphone", "cellular", "handy",
              "msisdn", "homephone", "workphone", "phone2", "phone3", "otherphone",
              "alternatephone", "secondaryphone"),
    "date_of_birth": ("dateofbirth", "dob", "birthdate", "birthday", "birthdt", "bday",
                      "geburtsdatum", "datenaissance", "fechanacimiento", "born"),
    "address_line1": ("address", "addressline1", "address1", "street", "streetaddress",
                      "street1", "line1", "addr1", "addr", "streetline1", "strasse",
                      "adresse", "direccion", "houseaddress"),
    "address": ("fulladdress", "completeaddress", "postaladdress", "addressoneline",
                "singlelineaddress"),
    "address_line2": ("addressline2", "address2", "street2", "line2", "addr2", "streetline2"),
    "city": ("city", "town", "locality", "ort", "stadt", "ville", "ciudad", "citytown",
             "suburb"),
    "region": ("region", "state", "province", "county", "stateregion", "stateprovince",
               "stateorprovince", "bundesland", "territory", "statecode"),
    "postcode": ("postcode", "postalcode", "zip", "zipcode", "postal", "plz", "zippostalcode",
                 "postcodezip", "cp", "codepostal", "pincode"),
    "country": ("country", "countrycode", "countryregion", "countryname", "nation", "land",
                "pays", "pais", "countryiso"),
    "national_id": ("nationalid", "ssn", "socialsecuritynumber", "nino", "nin", "taxid",
                    "personalnumber", "personnummer", "bsn", "nationalidentifier", "idnumber"),
    "title": ("title", "salutation", "honorific", "anrede", "prefix"),
    "gender": ("gender", "sex", "geschlecht"),
    "company": ("company", "companyname", "organisation", "organization", "employer",
                "accountname", "firm", "business", "organisationname", "organizationname"),
    "job_title": ("jobtitle", "position", "occupation", "jobrole", "designation", "function"),
    "language": ("language", "lang", "preferredlanguage", "locale", "languagecode", "sprache"),
    "currency": ("currency", "preferredcurrency", "currencycode"),
    # CRM states a user wants to see on the profile rather than only in the raw record
    "cf.lifecycle_stage": ("lifecyclestage", "lifecycle"),
    "cf.lead_status": ("leadstatus", "hsleadstatus"),
    "cf.lead_source": ("leadsource",),
}
_ORDER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "order.number": ("ordernumber", "orderno", "orderid", "ordernum", "orderref",
                     "orderreference", "invoicenumber", "invoiceno", "invoiceid"),
    "order.total": ("total", "ordertotal", "amount", "grandtotal", "totalamount", "ordervalue",
                    "value", "totalprice", "sum", "revenue", "invoicetotal", "gross"),
    "order.currency": ("currency", "currencycode", "ccy", "ordercurrency"),
    "order.status": ("status", "orderstatus", "state", "paymentstatus"),
    "order.ordered_at": ("orderedat", "orderdate", "date", "createdat", "created", "purchasedate",
                         "purchasedat", "orderedon", "placedat", "invoicedate", "timestamp",
                         "ordertime"),
    "order.channel": ("channel", "saleschannel", "orderchannel"),
}
_INTERACTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "interaction.channel": ("channel", "medium", "via", "source", "type", "interactiontype"),
    "interaction.direction": ("direction", "inout", "inbound"),
    "interaction.department": ("department", "team", "queue", "dept"),
    "interaction.occurred_at": ("occurredat", "date", "timestamp", "createdat", "created",
                                "datetime", "time", "when", "sentat", "receivedat", "opened",
                                "openedat", "contactdate"),
    "interaction.subject": ("subject", "title", "topic", "summary", "headline"),
    "interaction.body": ("body", "message", "text", "content", "notes", "note", "description",
                         "comment", "comments", "details", "transcript"),
}
_ID_NAMES = ("externalid", "recordid", "contactid", "customerid", "customerno",
             "customernumber", "customerref", "clientid", "clientno", "accountno",
             "accountnumber", "accountid", "memberid", "memberno", "userid", "personid",
             "contactref", "contactnumber", "kundennummer", "kundennr", "reference", "ref", "uuid",
             "guid", "key", "id", "account")
# Account numbers are a row's own id in a customer file ("account", "Account No") but name the
# company a person belongs to in a CRM's contact export or beside "Account Name".
_ACCOUNT_IDS = frozenset({"account", "accountid", "accountno", "accountnumber"})
_SUBJECT_NAMES = ("customerid", "customerno", "customernumber", "customerref", "customer",
                  "clientid", "clientno", "contactid", "contactref", "contact", "accountno",
                  "accountnumber", "accountid", "memberid", "userid", "personid", "recordid",
                  "billingaccountno", "shopcustomerid", "externalcustomerid", "account")
_INTERACTION_IDS = ("interactionid", "ticketid", "ticketno", "ticketnumber", "caseid",
                    "casenumber", "messageid", "conversationid", "activityid", "eventid",
                    "callid", "id")
_PREFIXES = ("customer", "contact", "client", "person", "member", "user", "mailing", "billing",
             "shipping", "shop", "home", "primary", "personal", "main", "private", "account")


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for name, synonyms in table.items():
        for rank, synonym in enumerate(synonyms):
            out.setdefault(synonym, (name, rank))
    return out


_PROFILE_INDEX = _index(_PROFILE_SYNONYMS)
_ORDER_INDEX = _index(_ORDER_SYNONYMS)
_INTERACTION_INDEX = _index(_INTERACTION_SYNONYMS)


# Objects in a JSON Lines record whose keys are the person's own data: `address.city` is a city
# and `properties.email` (HubSpot's API) an e-mail, while `manager.name` is nobody's full name.
_CONTAINERS = frozenset(_PREFIXES) | {"name", "names", "address", "details", "info", "location",
                                      "properties", "attributes", "fields", "data", "traits",
                                      "profile", "record", "postal"}
_DOTTED = re.compile(r"[^.\s]+(?:\.[^.\s]+)+")


def _spellings(column: str) -> tuple[str, ...]:
    """The normalised names a column may be read by, most literal first. `Customer #` is a
    customer number. A JSON Lines column `name.first` (from `{"name": {"first": ...}}`) reads as
    `firstname`, `phone.mobile` as `mobilephone`, and inside an object of the person's own data
    the rest of the path is enough (`address.zip` as `zip`)."""
    text = re.sub(r"#\s*$", " number", column)
    full = normalise(text)
    if not _DOTTED.fullmatch(column):
        return (full,)
    parts = [normalise(p) for p in column.split(".")]
    out = [full, "".join(parts[:-2]) + parts[-1] + parts[-2]]
    for i, part in enumerate(parts[:-1]):
        if part not in _CONTAINERS:
            break
        rest = parts[i + 1:]
        out.append("".join(rest))
        if len(rest) > 1:
            out.append("".join(rest[:-2]) + rest[-1] + rest[-2])
    return tuple(dict.fromkeys(p for p in out if p))


_LAYOUT_NAMES = frozenset(n for lay in LAYOUTS for n in lay.columns)


def _names(columns: Iterable[str], index: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Each column's name for detection: its first spelling that means something, else its
    literal one (which the id matchers read)."""
    out: dict[str, str] = {}
    for column in columns:
        spellings = _spellings(column)
        out[column] = next((s for s in spellings
                            if s in _LAYOUT_NAMES or _lookup(s, index) is not None),
                           spellings[0])
    return out


def _lookup(norm: str, index: dict[str, tuple[str, int]]) -> tuple[str, int] | None:
    if norm in index:
        return index[norm]
    for prefix in _PREFIXES:  # customer_email, contact_first_name, mailing_city ...
        if norm.startswith(prefix) and norm[len(prefix):] in index:
            field_name, rank = index[norm[len(prefix):]]
            return field_name, rank + 100
    return None


def _first(norms: dict[str, str], candidates: Iterable[str],
           taken: Iterable[str] = ()) -> str | None:
    """The file column whose normalised name comes first in `candidates`; failing that, one
    whose name is a candidate behind a common prefix (`billing_account_no`, `shop_customer_id`).
    """
    skip = set(taken)
    by_norm: dict[str, str] = {}
    for column, norm in norms.items():
        if column not in skip:
            by_norm.setdefault(norm, column)
    candidates = tuple(candidates)
    for candidate in candidates:
        if candidate in by_norm:
            return by_norm[candidate]
    for candidate in candidates:
        for norm, column in by_norm.items():
            if norm.endswith(candidate) and norm[:-len(candidate)] in _PREFIXES:
                return column
    return None


_ID_SUFFIXES = ("id", "no", "nr", "num", "number", "ref", "key", "code")


def _id_like(columns: list[str], norms: dict[str, str], taken: set[str]) -> str | None:
    """Last resort: the first column named like an identifier (`CUST_ID`, `Kd-Nr`) that is not a
    known field (`zip code`, `phone number`)."""
    for column in columns:
        if column in taken:
            continue
        norm = norms[column]
        if (norm.endswith(_ID_SUFFIXES) and _lookup(norm, _PROFILE_INDEX) is None
                and not norm.endswith(("phoneno", "phonenumber", "zipcode", "postcode",
                                       "postalcode", "countrycode"))):
            return column
    return None


def _generic(norms: dict[str, str], index: dict[str, tuple[str, int]],
             skip: set[str]) -> dict[str, str]:
    """Columns to fields by synonym; for each field the best-ranked column comes first."""
    found: list[tuple[str, int, int, str]] = []
    for position, (column, norm) in enumerate(norms.items()):
        if column in skip:
            continue
        hit = _lookup(norm, index)
        if hit is not None:
            found.append((hit[0], hit[1], position, column))
    found.sort(key=lambda t: (t[1], t[2]))
    return {column: name for name, _, _, column in found}


def _hits(columns: list[str], index: dict[str, tuple[str, int]]) -> set[str]:
    return {hit[0] for norm in _names(columns, index).values()
            if (hit := _lookup(norm, index)) is not None}


def detect_kind(columns: list[str]) -> str:
    """An order file has a total and an order number or date; an interaction file two of
    channel, subject, body or time; anything else describes people."""
    order = _hits(columns, _ORDER_INDEX)
    interaction = _hits(columns, _INTERACTION_INDEX)
    people = _hits(columns, _PROFILE_INDEX) & {"first_name", "last_name", "full_name", "email"}
    if "order.total" in order and order & {"order.number", "order.ordered_at",
                                           "order.currency"}:
        return "order"
    strong = interaction & {"interaction.subject", "interaction.body",
                            "interaction.direction"}
    if strong and len(interaction) >= 2 and len(people) < 2:
        return "interaction"
    return "profile"


def detect(columns: list[str], kind: str | None = None, *,
           reserved: Iterable[str] = ()) -> Mapping:
    """The mapping a file's header most likely means, without any hand-written configuration.
    `reserved` columns (named by a hand-written mapping) are neither mapped nor taken as the id
    or subject, but still show which layout the file has."""
    taken = set(reserved)
    kind = kind or detect_kind(columns)
    norms = _names(columns, {"profile": _PROFILE_INDEX, "order": _ORDER_INDEX,
                             "interaction": _INTERACTION_INDEX}[kind])
    present = set(norms.values())
    if kind == "profile":
        fitting = [lay for lay in LAYOUTS if lay.fits(present)]
        layout = max(fitting, key=lambda lay: sum(1 for n in present if n in lay.columns),
                     default=None)
        mapped: dict[str, str] = {}
        ext = None
        foreign = taken | _foreign_ids(norms, layout)
        if layout is not None:
            ext = _first(norms, layout.id_columns, foreign)
            ranked = [(list(layout.columns).index(n), c) for c, n in norms.items()
                      if n in layout.columns and c != ext and c not in taken]
            mapped = {c: layout.columns[norms[c]] for _, c in sorted(ranked)}
        ext = ext or _first(norms, _ID_NAMES, foreign) or _id_like(columns, norms, foreign)
        rest = _generic(norms, _PROFILE_INDEX, set(mapped) | {ext} | taken)
        for column, name in rest.items():
            if layout is not None and name in mapped.values() and name != "phone":
                continue  # the layout already decided this field (e.g. Salesforce "Title")
            mapped[column] = name
        names = set(mapped.values())
        if "first_name" in names and "last_name" not in names:
            # "Vorname;Name", "First name;Name": beside a first name, a bare name is the surname
            for column, name in mapped.items():
                if name == "full_name" and norms[column] == "name":
                    mapped[column] = "last_name"
        columns_map: dict[str, str | None] = {c: mapped.get(c) for c in columns
                                              if c != ext and c not in taken}
        ordered = _ordered(columns_map, mapped)
        return Mapping("profile", ext, None, ordered,
                       layout=layout.name if layout else "generic",
                       overflow=_second_phones(ordered, norms))
    subject = _first(norms, _SUBJECT_NAMES, taken)
    skip = taken | ({subject} if subject else set())
    if kind == "order":
        ext = _first(norms, _ORDER_SYNONYMS["order.number"], skip)
        ext = ext or _first(norms, ("id", "key", "reference", "ref", "uuid"), skip)
        mapped = _generic(norms, _ORDER_INDEX, skip)
        if ext and ext not in mapped:
            mapped[ext] = "order.number"
    else:
        ext = _first(norms, _INTERACTION_IDS, skip)
        mapped = _generic(norms, _INTERACTION_INDEX, skip | ({ext} if ext else set()))
    columns_map = {c: mapped.get(c) for c in columns if c != subject and c not in taken}
    return Mapping(kind, ext, subject, _ordered(columns_map, mapped), layout="generic")


def _foreign_ids(norms: dict[str, str], layout: Layout | None) -> set[str]:
    """Account-number columns that are not the row's own id: in a known CRM layout (whose own
    ids it lists) or beside other account columns ("Account Name", "Account Owner") they name
    the company account a person belongs to."""
    accounts = {c for c, n in norms.items() if n in _ACCOUNT_IDS}
    if accounts and (layout is not None or any(
            n.startswith("account") and n not in _ACCOUNT_IDS for n in norms.values())):
        return accounts
    return set()


_SECOND_PHONES = ((("mobile", "cell", "handy", "gsm"), "cf.mobile_phone"),
                  (("home", "privat"), "cf.home_phone"),
                  (("work", "business", "office", "dienst", "gesch"), "cf.work_phone"))


def _second_phones(columns: dict[str, str | None], norms: dict[str, str] | None = None,
                   fixed: Iterable[str] = ()) -> dict[str, tuple[str, ...]]:
    """Overflow for every phone column after the first (`Mobile` after `Phone`): the profile has
    one phone, so a second number is kept as a custom field (`cf.mobile_phone`, `cf.home_phone`,
    `cf.work_phone`, else `cf.other_phone`) rather than dropped. `fixed` columns were written
    by hand and keep what they say."""
    keep = set(fixed)
    phones = [c for c, f in columns.items() if f == "phone"]
    out: dict[str, tuple[str, ...]] = {}
    for column in phones[1:]:
        if column in keep:
            continue
        norm = (norms or {}).get(column) or normalise(column)
        out[column] = (next((key for words, key in _SECOND_PHONES
                             if any(w in norm for w in words)), "cf.other_phone"),)
    return out


def _ordered(columns_map: dict[str, str | None], mapped: dict[str, str]) -> dict[str, str | None]:
    """Mapped columns first in priority order (which matters when several fill one field),
    then the unmapped ones in file order."""
    out: dict[str, str | None] = {c: mapped[c] for c in mapped if c in columns_map}
    out.update({c: None for c, f in columns_map.items() if c not in out})
    return out


# --- hand-written and detected together --------------------------------------------------------


def settle_mapping(columns: list[str], given: Mapping | None = None,
                   saved: Mapping | None = None, kind: str | None = None) -> Mapping:
    """The mapping a file is read with: the entries written by hand (`given` with the import,
    then the source's `saved` mapping) win for the columns they name, and every other column is
    detected as if there were no mapping. A mapping of two columns (Vorname, Name) therefore no
    longer drops the id column, e-mail and phone that detection finds; a column mapped to null
    is ignored on purpose. The id and subject columns are the hand-written ones, else the
    detected ones.

    The kind is `kind`, else the given mapping's, else the saved mapping's where it declares
    orders or interactions, else detected; a saved mapping of another kind (the source's
    contacts, a file of its orders) is left aside.
    """
    if given is not None and kind and given.kind != kind:
        raise ValidationProblem(f"the mapping describes {given.kind} rows, not {kind} rows",
                                field="kind")
    kind = kind or (given.kind if given is not None else None) or (
        saved.kind if saved is not None and saved.kind != "profile" else detect_kind(columns))
    written = [m for m in (given, saved) if m is not None and m.kind == kind]
    if not written:
        return detect(columns, kind)
    named: dict[str, str | None] = {}
    overflow: dict[str, tuple[str, ...]] = {}
    for m in written:
        for column, name in m.columns.items():
            if column not in named:
                named[column] = name
                if column in m.overflow:
                    overflow[column] = m.overflow[column]

    def option(key: str) -> Any:
        return next((getattr(m, key) for m in written if getattr(m, key)), None)

    ext, subject = option("external_id"), option("subject")
    found = detect(columns, kind, reserved={*named, ext, subject} - {None})
    ext = ext or found.external_id
    subject = subject or found.subject
    added = {c: f for c, f in found.columns.items() if f and c not in (ext, subject)}
    mapped = {c: f for c, f in named.items() if f} | added
    rest = {c: None for c in [*named, *columns] if c not in mapped and c not in (ext, subject)}
    settled: dict[str, str | None] = {**mapped, **rest}
    if kind == "profile":  # a detected mobile beside a hand-mapped phone is kept too
        overflow = _second_phones(settled, fixed=named) | overflow
    layouts = [m.layout or "file" for m in written]
    if added or (ext and ext == found.external_id) or (subject and subject == found.subject):
        layouts.append(found.layout or "generic")
    return Mapping(kind, ext, subject, settled, default_country=option("default_country"),
                   date_order=option("date_order"), layout="+".join(layouts),
                   overflow=overflow)
