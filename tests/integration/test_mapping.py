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
        "Job Title": "job_title"}
    assert m.unmapped(HUBSPOT) == ["Contact owner", "Lifecycle Stage", "Create Date",
                                   "Last Activity Date", "Lead Status"]
    # the landline comes before the mobile: the first non-empty one wins
    extract = m.compile()
    row = dict.fromkeys(HUBSPOT, "")
    row.update({"Record ID": "501", "First Name": " Ada ", "Mobile Phone Number": "07700 900123"})
    assert extract(row) == ("501", None, {"first_name": "Ada", "phone": "07700 900123"})
    row["Phone Number"] = "020 7946 0018"
    assert extract(row)[2]["phone"] == "020 7946 0018"


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
    assert m.unmapped(SALESFORCE) == ["Description", "Lead Source", "Contact Owner",
                                      "Created Date"]


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
