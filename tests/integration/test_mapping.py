"""Mappings: known CRM export layouts and the demo extracts map without configuration, generic
names map by synonym, hand-written YAML is validated with errors that name the culprit."""

from __future__ import annotations

import pytest

from accord.core.errors import ValidationProblem
from accord.demo.extracts import BILLING, SUPPORT, WEBSHOP
from accord.integration.mapping import (
    Mapping,
    check_columns,
    detect,
    detect_kind,
    load_mapping,
    normalise,
    parse_mapping,
    reorder_date,
    settle_mapping,
)

HUBSPOT = ["Record ID", "First Name", "Last Name", "Email", "Phone Number",
           "Mobile Phone Number", "Street Address", "City", "State/Region", "Postal Code",
           "Country/Region", "Company Name", "Job Title", "Contact owner", "Lifecycle Stage",
           "Create Date", "Last Activity Date", "Lead Status"]
SALESFORCE = ["Contact ID", "Salutation", "First Name", "Last Name", "Email", "Phone", "Mobile",
              "Mailing Street", "Mailing City", "Mailing State/Province",
              "Mailing Zip/Postal Code", "Mailing Country", "Birthdate", "Title", "Account Name",
              "Description", "Lead Source", "Contact Owner", "Created Date"]


def test_normalised_names() -> None:
    assert {normalise(n) for n in ("First Name", "FIRST_NAME", "first-name", "firstName")} == {
        "firstname"}
    assert normalise("Prénom") == "prenom"
    assert normalise("Zip/Postal Code") == "zippostalcode"


def test_a_hubspot_contacts_export_maps_without_configuration() -> None:
    m = detect(HUBSPOT)
    assert (m.layout, m.kind, m.external_id) == ("hubspot", "profile", "Record ID")
    assert m.mapped_fields == {
        "First Name": "first_name", "Last Name": "last_name", "Email": "email",
        "Phone Number": "phone", "Mobile Phone Number": "phone",
        "Street Address": "address_line1", "City": "city", "State/Region": "region",
        "Postal Code": "postcode", "Country/Region": "country", "Company Name": "company",
        "Job Title": "job_title", "Lifecycle Stage": "cf.lifecycle_stage",
        "Lead Status": "cf.lead_status"}
    assert m.unmapped(HUBSPOT) == ["Contact owner", "Create Date", "Last Activity Date"]
    # the landline comes before the mobile: the first non-empty one is the phone ...
    extract = m.compile()
    row = dict.fromkeys(HUBSPOT, "")
    row.update({"Record ID": "501", "First Name": " Ada ", "Mobile Phone Number": "07700 900123",
                "Lifecycle Stage": "customer", "Lead Status": "OPEN_DEAL"})
    assert extract(row) == ("501", None, {"first_name": "Ada", "phone": "07700 900123",
                                          "cf.lifecycle_stage": "customer",
                                          "cf.lead_status": "OPEN_DEAL"})
    # ... and the mobile beside a landline is kept as a custom field, not dropped
    row["Phone Number"] = "020 7946 0018"
    fields = extract(row)[2]
    assert (fields["phone"], fields["cf.mobile_phone"]) == ("020 7946 0018", "07700 900123")
    row["Mobile Phone Number"] = "020 7946 0018"  # the same number twice is kept once
    assert "cf.mobile_phone" not in extract(row)[2]


def test_a_salesforce_contacts_export_maps_title_to_job_title() -> None:
    m = detect(SALESFORCE)
    assert (m.layout, m.external_id) == ("salesforce", "Contact ID")
    fields = m.mapped_fields
    assert fields["Title"] == "job_title"  # a Salesforce "Title" is the job, not Mr/Ms
    assert fields["Salutation"] == "title"
    assert fields["Birthdate"] == "date_of_birth"
    assert fields["Mailing Zip/Postal Code"] == "postcode"
    assert fields["Mailing State/Province"] == "region"
    assert fields["Account Name"] == "company"
    assert [c for c, f in fields.items() if f == "phone"] == ["Phone", "Mobile"]
    assert fields["Lead Source"] == "cf.lead_source"
    assert m.unmapped(SALESFORCE) == ["Description", "Contact Owner", "Created Date"]
    row = dict.fromkeys(SALESFORCE, "")
    row.update({"Contact ID": "003A", "Last Name": "Hopper", "Phone": "+1 415 555 0100",
                "Mobile": "+1 415 555 0199", "Lead Source": "Web"})
    assert extract_fields(m, row) == {"last_name": "Hopper", "phone": "+1 415 555 0100",
                                      "cf.mobile_phone": "+1 415 555 0199",
                                      "cf.lead_source": "Web"}


def extract_fields(m: Mapping, row: dict[str, str]) -> dict[str, object]:
    return m.compile()(row)[2]


def test_a_salesforce_report_without_address_columns_is_still_salesforce() -> None:
    header = ["Contact ID", "First Name", "Last Name", "Title", "Account Name", "Phone",
              "Email"]
    m = detect(header)
    assert (m.layout, m.external_id) == ("salesforce", "Contact ID")
    assert m.mapped_fields["Title"] == "job_title"
    assert "title" not in m.mapped_fields.values()
    assert m.mapped_fields["Account Name"] == "company"
    # Account Name alone (no Contact ID) is Salesforce's too; its Account ID is the company's
    m = detect(["Account ID", "First Name", "Last Name", "Title", "Account Name", "Email"])
    assert (m.layout, m.external_id, m.mapped_fields["Title"]) == ("salesforce", None,
                                                                   "job_title")
    # a first and last name alone are not enough to read "Title" as the job
    m = detect(["ID", "First Name", "Last Name", "Title", "Email"])
    assert (m.layout, m.mapped_fields["Title"]) == ("generic", "title")


def test_further_phone_numbers_are_kept_as_custom_fields() -> None:
    m = detect(["id", "phone", "mobile", "home phone", "work phone", "phone 2"])
    assert m.overflow == {"mobile": ("cf.mobile_phone",), "home phone": ("cf.home_phone",),
                          "work phone": ("cf.work_phone",), "phone 2": ("cf.other_phone",)}
    row = {"id": "1", "phone": "", "mobile": "07700 900123", "home phone": "020 7946 0018",
           "work phone": "", "phone 2": "0161 496 0000"}
    assert extract_fields(m, row) == {"phone": "07700 900123", "cf.home_phone": "020 7946 0018",
                                      "cf.other_phone": "0161 496 0000"}
    # Salesforce's API names and HubSpot's API properties, main phone first
    sf = detect(["Id", "FirstName", "LastName", "Phone", "MobilePhone", "OtherPhone",
                 "MailingCity"])
    assert [c for c, f in sf.mapped_fields.items() if f == "phone"] == [
        "Phone", "MobilePhone", "OtherPhone"]
    hs = detect(["id", "properties.firstname", "properties.lastname",
                 "properties.mobilephone", "properties.phone", "properties.lifecyclestage",
                 "properties.hs_lead_status"])
    assert hs.layout == "hubspot"
    assert hs.to_dict()["columns"] == {
        "properties.firstname": "first_name", "properties.lastname": "last_name",
        "properties.phone": "phone", "properties.mobilephone": ["phone", "cf.mobile_phone"],
        "properties.lifecyclestage": "cf.lifecycle_stage",
        "properties.hs_lead_status": "cf.lead_status"}


def test_a_list_of_fields_fills_the_first_free_one_and_survives_a_round_trip() -> None:
    m = load_mapping("""
columns:
  Tel: phone
  Handy: [phone, cf.mobile_phone]
  Fax: ignore
  Notiz: ""
""")
    assert (m.columns, m.overflow) == ({"Tel": "phone", "Handy": "phone", "Fax": None,
                                        "Notiz": None}, {"Handy": ("cf.mobile_phone",)})
    assert extract_fields(m, {"Tel": "1", "Handy": "2", "Fax": "3"}) == {
        "phone": "1", "cf.mobile_phone": "2"}
    assert extract_fields(m, {"Tel": "", "Handy": "2"}) == {"phone": "2"}
    # the import run stores the mapping as a dict and reads it back (also in the reader process)
    again = parse_mapping(m.to_dict())
    assert (again.columns, again.overflow) == (m.columns, m.overflow)
    with pytest.raises(ValidationProblem, match="unknown field 'fone'"):
        load_mapping("columns: {Handy: [phone, fone]}")
    with pytest.raises(ValidationProblem, match="a field name or a list"):
        load_mapping("columns: {Handy: [phone, 3]}")


def test_salesforce_api_names_map_too() -> None:
    m = detect(["Id", "FirstName", "LastName", "Email", "MobilePhone", "MailingCity",
                "MailingPostalCode", "Title"])
    assert (m.layout, m.external_id) == ("salesforce", "Id")
    assert m.mapped_fields["MailingPostalCode"] == "postcode"
    assert m.mapped_fields["Title"] == "job_title"


@pytest.mark.parametrize(("header", "layout", "ext", "fields"), [
    (BILLING, "demo-billing", "billing_account_no",
     {"FIRST_NAME": "first_name", "LAST_NAME": "last_name", "DOB": "date_of_birth",
      "PHONE": "phone", "EMAIL": "email", "STREET": "address_line1", "POSTCODE": "postcode",
      "CITY": "city", "COUNTRY": "country"}),
    (WEBSHOP, "demo-webshop", "shop_customer_id",
     {"email": "email", "first_name": "first_name", "last_name": "last_name",
      "birth_date": "date_of_birth", "phone": "phone", "address": "address",
      "country": "country"}),
    (SUPPORT, "demo-support", "contact_ref",
     {"full_name": "full_name", "phone": "phone", "email": "email", "city": "city",
      "country": "country"}),
])
def test_the_demo_extract_layouts_map_completely(header: tuple[str, ...], layout: str, ext: str,
                                                 fields: dict[str, str]) -> None:
    m = detect(list(header))
    assert (m.layout, m.kind, m.external_id) == (layout, "profile", ext)
    assert m.mapped_fields == fields
    assert m.unmapped(list(header)) == []


def test_generic_names_map_by_synonym() -> None:
    header = ["CUST_ID", "given_name", "surname", "e-mail", "zip", "dob", "Telefon", "Notes",
              "customer_city", "Geschlecht"]
    m = detect(header)
    assert m.layout == "generic"
    assert m.external_id == "CUST_ID"
    assert m.mapped_fields == {"given_name": "first_name", "surname": "last_name",
                               "e-mail": "email", "zip": "postcode", "dob": "date_of_birth",
                               "Telefon": "phone", "customer_city": "city",
                               "Geschlecht": "gender"}
    assert m.unmapped(header) == ["Notes"]


def test_nested_json_lines_names_are_detected() -> None:
    header = ["id", "name.first", "name.last", "email", "address.street", "address.city",
              "address.zip", "address.country", "phone.mobile", "manager.name", "meta.source"]
    m = detect(header)
    assert m.external_id == "id"
    assert m.mapped_fields == {"name.first": "first_name", "name.last": "last_name",
                               "email": "email", "address.street": "address_line1",
                               "address.city": "city", "address.zip": "postcode",
                               "address.country": "country", "phone.mobile": "phone"}
    assert m.unmapped(header) == ["manager.name", "meta.source"]  # not the person's own
    ext, _, fields = m.compile()({"id": "J1", "name": {"first": "Ada", "last": "Lovelace"},
                                  "address": {"city": "London"}})
    assert (ext, fields) == ("J1", {"first_name": "Ada", "last_name": "Lovelace",
                                    "city": "London"})
    assert detect(["customer.id", "customer.name.given", "customer.name.family"]).to_dict()[
        "columns"] == {"customer.name.given": "first_name", "customer.name.family": "last_name"}
    # a CSV header with dots is read as written
    assert detect(["Kd.Nr.", "Vorname", "Tel. privat"]).external_id == "Kd.Nr."


@pytest.mark.parametrize("column", ["account", "Account", "account_id", "Account No.",
                                    "customer_number", "customer no", "Kundennummer",
                                    "Kunden-Nr.", "Customer #"])
def test_account_and_customer_numbers_are_the_id_column(column: str) -> None:
    assert detect(["First name", "Last name", column, "Email"]).external_id == column


@pytest.mark.parametrize("header", [
    ["Account Name", "First name", "Last name", "Email"],
    ["account", "Account Name", "First name", "Last name", "Email"],  # the company's account
    ["Account ID", "Account Owner", "First name", "Last name", "Email"],
    ["Account ID", "First Name", "Last Name", "Mailing City"],  # Salesforce: the company's
])
def test_an_account_column_that_is_not_the_rows_own_id_is_not_taken(header: list[str]) -> None:
    assert detect(header).external_id is None


def test_an_account_column_names_the_customer_of_an_order() -> None:
    m = detect(["order_no", "account", "date", "total"])
    assert (m.kind, m.external_id, m.subject) == ("order", "order_no", "account")


def test_a_bare_name_beside_a_first_name_is_the_surname() -> None:
    assert detect(["Kd-Nr", "Vorname", "Name", "Tel"]).mapped_fields == {
        "Vorname": "first_name", "Name": "last_name", "Tel": "phone"}
    assert detect(["id", "Name", "Email"]).mapped_fields == {"Email": "email",
                                                            "Name": "full_name"}


def test_order_and_interaction_files_are_recognised_by_their_columns() -> None:
    orders = ["order_id", "customer_id", "order_date", "total", "currency", "status"]
    assert detect_kind(orders) == "order"
    m = detect(orders)
    assert (m.kind, m.external_id, m.subject) == ("order", "order_id", "customer_id")
    assert m.mapped_fields == {"total": "order.total", "currency": "order.currency",
                               "status": "order.status", "order_date": "order.ordered_at",
                               "order_id": "order.number"}
    tickets = ["ticket_id", "contact_ref", "channel", "subject", "body", "created_at"]
    m = detect(tickets)
    assert (m.kind, m.external_id, m.subject) == ("interaction", "ticket_id", "contact_ref")
    assert m.mapped_fields == {"channel": "interaction.channel",
                               "subject": "interaction.subject", "body": "interaction.body",
                               "created_at": "interaction.occurred_at"}
    # a contacts export with a title and a description is still about people
    assert detect_kind(SALESFORCE) == "profile"


def test_a_yaml_mapping_is_loaded_and_applied() -> None:
    m = load_mapping("""
kind: profile
external_id: Kd-Nr
default_country: de
date_order: dmy
columns:
  Vorname: first_name
  Name: last_name
  Geburtstag: date_of_birth
  Treue: cf.loyalty_tier
  Notiz: null
""")
    assert (m.external_id, m.default_country, m.date_order) == ("Kd-Nr", "DE", "DMY")
    assert m.columns["Notiz"] is None
    ext, subject, fields = m.compile()({"Kd-Nr": 17, "Vorname": "Jörg", "Name": "Weiß",
                                        "Geburtstag": "03.04.1985", "Treue": "gold",
                                        "Notiz": "call back"})
    assert (ext, subject) == ("17", None)
    assert fields == {"first_name": "Jörg", "last_name": "Weiß", "date_of_birth": "1985-04-03",
                      "cf.loyalty_tier": "gold"}
    assert m.unmapped(["Kd-Nr", "Vorname", "Notiz"]) == ["Notiz"]


def test_json_is_accepted_and_a_flat_source_mapping_too() -> None:
    m = load_mapping('{"external_id": "id", "columns": {"mail": "email"}}')
    assert m.mapped_fields == {"mail": "email"}
    flat = parse_mapping({"Mail": "email", "kind": "profile", "external_id": "ID"})
    assert (flat.kind, flat.external_id, flat.mapped_fields) == ("profile", "ID",
                                                                 {"Mail": "email"})


@pytest.mark.parametrize(("text", "field", "words"), [
    ("columns: {First: frist_name}", "mapping.columns.First", "unknown field 'frist_name'"),
    ("columns: {Total: order.total}", "mapping.columns.Total", "does not belong in a profile"),
    ("columns: {Tier: cf.Loyalty Tier}", "mapping.columns.Tier", "custom field"),
    ("kind: person\ncolumns: {a: email}", "mapping.kind", "unknown kind 'person'"),
    ("colums: {a: email}\ncolumns: {}", "mapping.colums", "unknown option 'colums'"),
    ("kind: order\ncolumns: {Total: order.total}", "mapping.subject", "names the customer"),
    ("date_order: YDM\ncolumns: {a: email}", "mapping.date_order", "DMY, MDY, YMD"),
    ("default_country: Germany\ncolumns: {a: email}", "mapping.default_country", "two-letter"),
    ("columns: [a, b", "mapping", "not valid YAML"),
])
def test_invalid_mappings_say_what_is_wrong(text: str, field: str, words: str) -> None:
    with pytest.raises(ValidationProblem) as caught:
        load_mapping(text)
    problem = caught.value
    assert any(e["field"] == field and words in e["message"] for e in problem.errors or []), \
        problem.errors
    assert words in problem.detail


SHOP = ["Kundennummer", "Vorname", "Name", "E-Mail", "Telefon", "Handy", "PLZ", "Ort",
        "Bemerkung"]


def saved(data: dict) -> Mapping:
    m = parse_mapping(data)
    m.layout = "source"  # as the import labels a source's stored mapping
    return m


def test_a_saved_mapping_of_some_columns_leaves_the_others_to_detection() -> None:
    # the docs' own example, saved on a source
    m = settle_mapping(SHOP, saved=saved({"columns": {"Vorname": "first_name",
                                                      "Name": "last_name"}}))
    assert (m.kind, m.external_id, m.layout) == ("profile", "Kundennummer", "source+generic")
    assert m.mapped_fields == {"Vorname": "first_name", "Name": "last_name", "E-Mail": "email",
                               "Telefon": "phone", "Handy": "phone", "PLZ": "postcode",
                               "Ort": "city"}
    assert m.overflow == {"Handy": ("cf.mobile_phone",)}
    assert m.unmapped(SHOP) == ["Bemerkung"]
    ext, _, fields = m.compile()({"Kundennummer": "K-7", "Vorname": "Jörg", "Name": "Weiß",
                                  "E-Mail": "jw@example.de", "Telefon": "030 1234567",
                                  "Handy": "0151 2345678", "PLZ": "10115", "Ort": "Berlin"})
    assert ext == "K-7"  # not a content hash
    assert fields == {"first_name": "Jörg", "last_name": "Weiß", "email": "jw@example.de",
                      "phone": "030 1234567", "cf.mobile_phone": "0151 2345678",
                      "postcode": "10115", "city": "Berlin"}
    assert parse_mapping(m.to_dict()).to_dict() == m.to_dict()  # what the import run stores


def test_written_entries_win_ignore_on_purpose_and_name_the_id() -> None:
    source = saved({"external_id": "E-Mail", "default_country": "DE",
                    "columns": {"Name": "full_name", "Ort": "cf.ort", "Bemerkung": "cf.note"}})
    given = load_mapping("""
date_order: DMY
columns:
  Name: last_name       # the file's mapping wins over the source's
  Telefon: ignore       # ignored on purpose: not detected either
  Handy: phone
  PLZ: null
""")
    m = settle_mapping(SHOP, given, source)
    assert (m.external_id, m.default_country, m.date_order) == ("E-Mail", "DE", "DMY")
    assert m.layout == "file+source+generic"
    assert m.mapped_fields == {"Name": "last_name", "Handy": "phone", "Ort": "cf.ort",
                               "Bemerkung": "cf.note", "Vorname": "first_name"}
    assert m.overflow == {}
    # Kundennummer is no longer the id, and not a field: it stays in the raw record
    assert m.unmapped(SHOP) == ["Kundennummer", "Telefon", "PLZ"]
    # an id mapped to nothing on purpose is not the id; detection takes the next one
    m = settle_mapping(["Kundennummer", "customer_id", "Vorname"],
                       load_mapping("columns: {Kundennummer: null}"))
    assert m.external_id == "customer_id"
    # a hand-mapped phone first: a detected mobile beside it is kept too
    m = settle_mapping(["Nr", "Tel", "Mobile"], load_mapping("columns: {Tel: phone}"))
    assert m.overflow == {"Mobile": ("cf.mobile_phone",)}


def test_a_mapping_naming_every_column_is_used_as_written() -> None:
    given = load_mapping("external_id: Kd-Nr\ncolumns: {Vorname: first_name, Mail: email}")
    m = settle_mapping(["Kd-Nr", "Vorname", "Mail"], given)
    assert (m.layout, m.external_id, m.mapped_fields) == (
        "file", "Kd-Nr", {"Vorname": "first_name", "Mail": "email"})
    assert settle_mapping(["Kd-Nr", "Vorname"]).layout == "generic"  # no mapping: detected


def test_a_saved_mapping_of_another_kind_is_left_aside() -> None:
    contacts = saved({"columns": {"Vorname": "first_name"}})
    orders = ["order_id", "customer_id", "order_date", "total", "currency"]
    m = settle_mapping(orders, saved=contacts)
    assert (m.kind, m.layout, m.subject) == ("order", "generic", "customer_id")
    m = settle_mapping(orders, saved=contacts, kind="order")
    assert m.kind == "order"
    # a saved order mapping decides the kind of a file detection would call people
    mine = saved({"kind": "order", "subject": "Kunde", "columns": {"Betrag": "order.total"}})
    m = settle_mapping(["Beleg", "Kunde", "Betrag"], saved=mine)
    assert (m.kind, m.subject, m.mapped_fields["Betrag"]) == ("order", "Kunde", "order.total")
    with pytest.raises(ValidationProblem, match="describes profile rows, not order rows"):
        settle_mapping(orders, load_mapping("columns: {Vorname: first_name}"), kind="order")


def test_the_id_column_of_a_mapping_must_exist_in_the_file() -> None:
    m = Mapping(external_id="Customer No", columns={"Mail": "email", "Gone": "phone"})
    with pytest.raises(ValidationProblem, match="no column 'Customer No'"):
        check_columns(m, ["Mail", "Gone"])
    m.external_id = "Mail"
    assert check_columns(m, ["Mail"]) == ["the file has no column 'Gone'"]
    # JSON Lines columns are only a sample: a missing id column is not an error there
    assert check_columns(Mapping(external_id="id", columns={"a": "email"}), ["a"],
                         strict=False) == []


def test_nested_json_values_and_non_text_values() -> None:
    m = Mapping(external_id="id", columns={"address.city": "city", "age": "cf.age",
                                           "vip": "cf.vip", "name": "full_name"})
    ext, _, fields = m.compile()({"id": 7, "address": {"city": "Paris"}, "age": 41,
                                  "vip": True, "name": "   "})
    assert ext == "7"
    assert fields == {"city": "Paris", "cf.age": "41", "cf.vip": "true"}


@pytest.mark.parametrize(("text", "order", "iso"), [
    ("03/04/1985", "DMY", "1985-04-03"),
    ("03/04/1985", "MDY", "1985-03-04"),
    ("1985-04-03", "MDY", "1985-04-03"),
    ("3.4.85", "DMY", "1985-04-03"),
    ("31/02/1985", "DMY", "31/02/1985"),  # impossible: left for the standardiser to flag
    ("yesterday", "DMY", "yesterday"),
    ("03/04/2024 13:45", "DMY", "2024-04-03T13:45"),
])
def test_reorder_date(text: str, order: str, iso: str) -> None:
    assert reorder_date(text, order) == iso
