"""Part photos by photo-store key (``image_key``), with the old ``image_path`` as the fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.dashboard import APP
from streamlit.testing.v1 import AppTest

from inspection import cli
from inspection.commands import dashboard
from inspection.dashboard import fixtures, parts
from inspection.store.photos import LocalPhotoStore, open_photo_store


@pytest.fixture
def photo(tmp_path: Path) -> tuple[Path, bytes]:
    paths = fixtures.write_fixture_photos(tmp_path / "photos", per_type=1, size=64)
    path = paths["periodic"][0]
    return path, path.read_bytes()


def test_photo_is_read_by_key_from_the_store(tmp_path: Path, photo: tuple[Path, bytes]) -> None:
    path, data = photo
    store = LocalPhotoStore(tmp_path / "store")
    key = store.put(data)
    found = parts.load_photo({"image_key": key, "image_path": None}, store)
    assert found.gray is not None and found.gray.shape == (64, 64)
    assert np.array_equal(found.gray, parts.load_photo({"image_path": str(path)}, None).gray)


def test_old_records_fall_back_to_the_image_path(tmp_path: Path, photo: tuple[Path, bytes]) -> None:
    path, data = photo
    store = LocalPhotoStore(tmp_path / "store")
    assert parts.load_photo({"image_key": None, "image_path": str(path)}, store).gray is not None
    absent = "ab/" + "ab" * 32 + ".png"
    assert parts.load_photo({"image_key": absent, "image_path": str(path)}, store).gray is not None
    gone = parts.load_photo({"image_key": absent, "image_path": str(tmp_path / "nope.png")}, store)
    assert gone.gray is None and "is not in the photo store" in gone.note.replace("\\", "")


def test_store_that_cannot_be_opened_is_named_in_the_note() -> None:
    record = {"image_key": "ab/" + "ab" * 32 + ".png"}
    photo = parts.load_photo(record, None, store_problem="the photo store s3://x cannot be opened (no s3fs)")
    assert photo.gray is None and "no s3fs" in photo.note


def test_photos_kept_in_the_records_database(tmp_path: Path, photo: tuple[Path, bytes]) -> None:
    engine = fixtures.create_schema(f"sqlite:///{tmp_path / 'records.db'}")
    store = open_photo_store("db", engine=engine)
    key = store.put(photo[1])
    assert parts.load_photo({"image_key": key}, store).gray is not None
    engine.dispose()


def test_command_hands_the_photo_store_to_the_pages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INSPECTION_HOME", str(tmp_path))
    monkeypatch.delenv("INSPECTION_PHOTOS", raising=False)
    _, env = dashboard.build_command(cli.build_parser().parse_args(["dashboard"]))
    assert env["INSPECTION_PHOTOS"] == str(tmp_path / "photos")
    for location in ("db", "s3://bucket/photos"):
        _, env = dashboard.build_command(cli.build_parser().parse_args(["dashboard", "--photos", location]))
        assert env["INSPECTION_PHOTOS"] == location
    monkeypatch.chdir(tmp_path)
    _, env = dashboard.build_command(cli.build_parser().parse_args(["dashboard", "--photos", "kept"]))
    assert env["INSPECTION_PHOTOS"] == str(tmp_path / "kept")


def test_part_lookup_shows_a_photo_kept_only_in_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_env: dict[str, str]
) -> None:
    photos = fixtures.write_fixture_photos(tmp_path / "photos", per_type=1, size=64)
    keys = fixtures.store_fixture_photos(photos, tmp_path / "store")
    url = f"sqlite:///{tmp_path / 'records.db'}"
    fixtures.fill_fixture_db(url, 100, photos=photos, photo_keys=keys)
    for paths in photos.values():  # the files the records name are gone: only the store has the photos
        for path in paths:
            path.unlink()
    for key, value in {
        **data_env,
        "INSPECTION_DB": url,
        "INSPECTION_PHOTOS": str(tmp_path / "store"),
    }.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/part_lookup.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len([e for e in at.main if type(e).__name__ == "Image"]) >= 2  # photo and spectrum
    assert any("Photos:" in c.value and "store" in c.value for c in at.sidebar.caption)
