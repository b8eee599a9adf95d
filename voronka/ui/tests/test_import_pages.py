"""The import screens with Django's test client: upload, mapping, htmx preview, start, progress, report, rights."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from voronka.imports import runner
from voronka.imports.models import ImportJob
from voronka.parties.models import Contact

pytestmark = pytest.mark.django_db

CSV = "ФИО;Телефон;E-mail\nПетров Иван;8 916 123-45-67;ivan@example.ru\nПлохой;;не-почта\n".encode()


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def test_upload_map_preview_start_progress_report(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/imports/").status_code == 200
    r = client.post("/imports/", {"type": "contacts", "mode": "match_or_create",
                                  "file": SimpleUploadedFile("people.csv", CSV)})
    job = ImportJob.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/imports/{job.pk}/"
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert 'value="contact.full_name" selected' in page and 'value="contact.emails" selected' in page
    form = {"col-0": "contact.full_name", "col-1": "contact.phones", "col-2": "contact.emails", "mode": "match_or_create"}
    r = client.post(f"/imports/{job.pk}/", {**form, "op": "preview"}, headers={"HX-Request": "true"})
    html = r.content.decode()
    assert "1 to create, 0 matched, 1 rejected" in html and "«E-mail»" in html
    assert Contact.objects.count() == 0
    r = client.post(f"/imports/{job.pk}/", {**form, "op": "start"})
    assert r.status_code == 302
    job.refresh_from_db()
    assert job.status == "queued"
    assert 'hx-trigger="every 1s"' in client.get(f"/imports/{job.pk}/progress/").content.decode()
    runner.run(job.pk)
    progress = client.get(f"/imports/{job.pk}/progress/").content.decode()
    assert "every 1s" not in progress and "Created: 1" in progress and "report-link" in progress
    report = b"".join(client.get(f"/imports/{job.pk}/report/").streaming_content).decode("utf-8-sig")
    assert "не-почта" in report


def test_bad_file_is_a_form_error(client, admin_user):
    client.force_login(admin_user)
    r = client.post("/imports/", {"type": "contacts", "file": SimpleUploadedFile("x.xlsx", b"garbage")}, follow=True)
    assert r.status_code == 200 and "not a readable Excel" in r.content.decode()
    assert not ImportJob.objects.exists()


def test_someone_elses_job_is_not_found(client, admin_user, manager_user):
    client.force_login(admin_user)
    client.post("/imports/", {"type": "contacts", "file": SimpleUploadedFile("a.csv", CSV)})
    job = ImportJob.objects.get()
    client.force_login(manager_user)
    assert client.get(f"/imports/{job.pk}/").status_code == 404
    assert client.get(f"/imports/{job.pk}/report/").status_code == 404
