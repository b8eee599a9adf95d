"""Imports over the API: upload → mapping → preview → start → status → report; rights and bad files."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from voronka.imports import runner
from voronka.parties.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}
    with translation.override("en"):
        yield


def upload(client, content: bytes, name="contacts.csv", type="contacts"):
    return client.client.post("/api/v1/imports", data={"type": type, "file": SimpleUploadedFile(name, content)})


def csv_file(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";").writerows(rows)
    return buffer.getvalue().encode("cp1251")


def test_upload_preview_start_status_report(api, django_capture_on_commit_callbacks):
    content = csv_file([["Фамилия", "Имя", "Телефон", "Лишнее"], ["Петров", "Иван", "8 916 123-45-67", "x"],
                        ["Сидоров", "Пётр", "12", "y"]])
    r = upload(api, content)
    assert r.status_code == 201, r.content
    job = r.json()
    assert job["mapping"] == {"Фамилия": "contact.last_name", "Имя": "contact.first_name", "Телефон": "contact.phones"}
    assert job["status"] == "draft" and "contact.emails" in job["targets"]
    r = api.patch(f"/imports/{job['id']}", {"mapping": {**job["mapping"], "Лишнее": "contact.comment"}})
    assert r.status_code == 200 and r.json()["mapping"]["Лишнее"] == "contact.comment"
    r = api.post(f"/imports/{job['id']}/preview")
    assert r.status_code == 200
    preview = r.json()
    assert preview["totals"] == {"create": 1, "match": 0, "reject": 1}
    assert preview["rows"][1]["errors"][0]["column"] == "Телефон"
    assert Contact.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=False):
        r = api.post(f"/imports/{job['id']}/start")
    assert r.status_code == 202 and r.json()["status"] == "queued" and r.json()["total_rows"] == 2
    runner.run(job["id"])  # what the worker's task does
    r = api.get(f"/imports/{job['id']}")
    assert (r.json()["status"], r.json()["created"], r.json()["rejected"], r.json()["percent"]) == ("done", 1, 1, 100)
    r = api.get(f"/imports/{job['id']}/report")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    assert "Сидоров" in text and "Телефон:" in text
    assert api.post(f"/imports/{job['id']}/start").status_code == 409
    assert api.get("/imports").json()["items"][0]["id"] == job["id"]


def test_bad_files_and_mappings_are_4xx(api):
    r = upload(api, b"not a workbook", name="x.xlsx")
    assert r.status_code == 422 and r.json()["code"] == "bad_file"
    r = upload(api, b"%PDF", name="x.pdf")
    assert r.status_code == 422
    r = upload(api, b"", name="x.csv")
    assert r.status_code in (400, 422)
    job = upload(api, csv_file([["Имя"], ["Оля"]])).json()
    r = api.patch(f"/imports/{job['id']}", {"mapping": {"Нет": "contact.first_name"}})
    assert r.status_code == 422 and "Нет" in r.json()["fields"]
    r = api.client.post("/api/v1/imports", data={"type": "planets", "file": SimpleUploadedFile("a.csv", b"a\n1")})
    assert r.status_code in (400, 422)


def test_without_add_right_is_403(manager_api, admin_user):
    from voronka.identity.models import Role, RolePermission
    from voronka.identity.permissions import rights_changed

    RolePermission.objects.filter(role=Role.objects.get(code="sales_manager"), entity_type_id=3, perm="add").delete()
    rights_changed()
    r = upload(manager_api, csv_file([["Имя"], ["Оля"]]))
    assert r.status_code == 403
    assert r.json()["message"] == "У вас нет прав на добавление контактов."


def test_other_users_job_is_404(api, manager_api):
    job = upload(api, csv_file([["Имя"], ["Оля"]])).json()
    assert manager_api.get(f"/imports/{job['id']}").status_code == 404
    assert manager_api.post(f"/imports/{job['id']}/start").status_code == 404
