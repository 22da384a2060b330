"""The OpenAPI document describes every API route and how to authenticate."""


def test_openapi_declares_bearer_auth_on_every_api_operation(client) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    api_ops = [(p, m, op) for p, item in doc["paths"].items() if p.startswith("/api/v1/")
               for m, op in item.items()]
    assert len(api_ops) > 30
    public = [(p, m) for p, m, op in api_ops if op["security"] == []]
    assert public == [("/api/v1/forms/{slug}", "post")]  # the web form's anonymous visitors
    assert all({"bearer": []} in op["security"] for p, _, op in api_ops
               if (p, "post") not in public)
    assert "/api/v1/customers/{customer_id}/360" in doc["paths"]
