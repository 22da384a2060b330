def test_create_and_read_customer(client, admin):
    body = {"first_name": "Ada", "last_name": "Lovelace", "emails": [{"email": "Ada@Example.com"}],
            "phones": [{"phone": "020 7946 0018"}], "country": "GB"}
    r = client.post("/api/v1/customers", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["phones"][0]["e164"] == "+442079460018"
    r = client.get(f"/api/v1/customers/{cid}/360", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["customer"]["display_name"] == "Ada Lovelace"
