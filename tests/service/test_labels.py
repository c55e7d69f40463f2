"""``POST /v1/inspections/{id}/label``: engineers label records; the label sits beside the model's verdict."""

from __future__ import annotations

from fastapi.testclient import TestClient

from inspection.store import RecordStore

H1 = {"X-API-Key": "key-one-1234"}
H2 = {"X-API-Key": "key-two-5678"}
ENGINEER = {"X-API-Key": "key-engineer-alice"}


def scored(client: TestClient, photos, part: str = "L-1") -> dict:
    r = client.post(
        "/v1/inspections",
        data={"station_id": "station-1", "part_id": part},
        files={"image": ("p.png", photos.png, "image/png")},
        headers=H1,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_an_engineer_labels_a_record_beside_the_models_verdict(
    client: TestClient, store: RecordStore, photos
) -> None:
    record = scored(client, photos)
    first = client.post(
        f"/v1/inspections/{record['id']}/label", json={"verdict": "defective"}, headers=ENGINEER
    )
    assert first.status_code == 201, first.text
    assert first.json()["labelled_by"] == "alice" and first.json()["verdict"] == "defective"
    again = client.post(
        f"/v1/inspections/{record['id']}/label",
        json={"verdict": "defective", "kind": "blowhole", "note": "hole at 3 o'clock"},
        headers=ENGINEER,
    )
    assert again.status_code == 201 and again.json()["kind"] == "blowhole"
    kept = store.get_inspection(record["id"])
    assert kept["verdict"] == record["verdict"]  # the model's verdict is never overwritten
    labels = client.get(f"/v1/inspections/{record['id']}/labels", headers=H1).json()["items"]
    assert [la["kind"] for la in labels] == [
        "blowhole",
        None,
    ]  # newest first; the station sees its own labels
    assert client.get(f"/v1/inspections/{record['id']}/labels", headers=H2).status_code == 404


def test_only_engineers_label_known_records_with_valid_labels(client: TestClient, photos) -> None:
    record = scored(client, photos, part="L-2")
    url = f"/v1/inspections/{record['id']}/label"
    assert client.post(url, json={"verdict": "ok"}, headers=H1).status_code == 403
    assert client.post(url, json={"verdict": "ok"}).status_code == 401
    assert (
        client.post("/v1/inspections/999999/label", json={"verdict": "ok"}, headers=ENGINEER).status_code
        == 404
    )
    for bad in ({"verdict": "maybe"}, {"verdict": "ok", "kind": "../x"}, {"verdict": "ok", "extra": 1}, {}):
        assert client.post(url, json=bad, headers=ENGINEER).status_code == 422, bad
