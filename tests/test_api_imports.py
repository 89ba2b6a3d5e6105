"""Import jobs over HTTP: ``POST /v1/imports`` (a CSV file or workbook) runs in the
background under the CLI's rules; the job, its progress and its errors CSV are read
back; a crashed job resumes without duplicates; files take part in retention and
erasure. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from recrm_core import CRM
from recrm_core.importjobs import ImportWorker, job_directory
from recrm_core.tables import AuditRow, CustomerRow, ImportJobRow
from recrm_core.testing import ApiClients, problem_of

HEADER = "name,mobile,email,project\n"
GOOD = [("王伟", "13812345678", "wang.wei@example.cn", "XL2"),
        ("李娜", "13912345678", "", "XL2"),
        ("张敏", "13712345678", "", "")]


def _csv(rows: list[tuple[str, ...]], header: str = HEADER) -> str:
    return header + "".join(",".join(r) + "\n" for r in rows)


def _upload(client: Any, content: bytes, name: str = "customers.csv", **fields: str) -> Any:
    return client.post("/v1/imports", files={"file": (name, content, "text/csv")},
                       data=fields or None)


def _wait(client: Any, url: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the job until it ended (the server's worker runs it), at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(url).json()
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.05)


def _files(crm: CRM) -> list[str]:
    directory = job_directory(crm)
    assert directory is not None
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def _customers(crm: CRM) -> int:
    with crm.unit_of_work(readonly=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(CustomerRow)) or 0


def _errors(client: Any, job: dict[str, Any]) -> list[dict[str, str]]:
    response = client.get(job["errors_url"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_a_csv_upload_is_imported_in_the_background(api_client: ApiClients,
                                                    crm: CRM) -> None:
    rows = [*GOOD, ("坏号码", "123", "", "XL2")]
    with api_client("sales", staff="s1") as client:  # the app's lifespan runs the worker
        created = client.post("/v1/imports", files={"file": ("客户.csv", _csv(rows).encode(),
                                                             "text/csv")})
        assert created.status_code == 202, created.text
        body = created.json()
        assert set(body) == {"id", "url"} and created.headers["location"] == body["url"]
        job = _wait(client, body["url"])
    assert job["status"] == "done", job
    assert job["summary"] == {"rows": 4, "created": 3, "merged": 0, "rejected": 1,
                              "suspected_duplicates": 0}
    assert (job["rows_read"], job["rows_committed"], job["rejected"]) == (4, 4, 1)
    assert job["created_by"] == "s1" and job["filename"] == "客户.csv" and job["format"] == "csv"
    assert job["bytes_read"] == job["upload_bytes"] > 0
    client = api_client("admin")
    assert _errors(client, job) == [{"row": "4", "field": "mobile",
                                     "reason": "'123' is not a valid phone number"}]
    assert _customers(crm) == 3
    # the upload is gone, the errors CSV kept (owner-only)
    names = _files(crm)
    assert len(names) == 1 and names[0].endswith(".errors.csv")
    directory = job_directory(crm)
    assert directory is not None
    assert (directory / names[0]).stat().st_mode & 0o077 == 0
    # audited as the CLI's import, as the key's staff member over the API
    with crm.unit_of_work(readonly=True) as uow:
        entry = uow.session.scalars(select(AuditRow).where(AuditRow.action == "import")).one()
    assert (entry.actor_staff, entry.channel) == ("s1", "api")
    assert entry.details["created"] == 3 and entry.details["format"] == "csv"


def test_gbk_and_xlsx_files_are_read_like_the_cli_reads_them(api_client: ApiClients,
                                                             crm: CRM) -> None:
    from openpyxl import Workbook

    client = api_client("admin")
    gbk = _csv([("王伟", "13812345678", "", "XL2")], "姓名,手机,邮箱,项目\n").encode("gbk")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "客户"
    sheet.append(["客户名单"])  # a title row before the header
    sheet.append(["姓名", "手机号", "身份证号"])
    sheet.append(["李娜", "13912345678", None])
    sheet.append(["张敏", "13712345678", 110105194912310000])  # a number: rejected
    data = io.BytesIO()
    book.save(data)
    first = _upload(client, gbk, "gbk.csv")
    second = client.post("/v1/imports", data={"sheet": "客户"}, files={
        "file": ("book.bin", data.getvalue(), "application/octet-stream")})
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    assert crm.import_jobs.run_pending() == 2
    gbk_job = client.get(first.json()["url"]).json()
    xlsx_job = client.get(second.json()["url"]).json()
    assert gbk_job["status"] == "done" and gbk_job["summary"]["created"] == 1
    assert xlsx_job["status"] == "done" and xlsx_job["format"] == "xlsx"
    assert (xlsx_job["summary"]["created"], xlsx_job["summary"]["rejected"]) == (1, 1)
    rejected = _errors(client, xlsx_job)
    assert [(r["row"], r["field"], r["sheet_row"]) for r in rejected] == [("2", "id_card", "4")]
    found = client.get("/v1/customers", params={"mobile": "13812345678"}).json()
    assert [c["name"] for c in found] == ["王伟"]


@pytest.mark.parametrize("content,name,says", [
    (b"", "empty.csv", "empty"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "photo.csv", "neither a CSV file nor"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old.xls", ".xls"),
    (b"PK\x05\x06" + b"\0" * 18, "broken.xlsx", "workbook"),
    (b"\xff\xfen\x00a\x00", "utf16.csv", "UTF-16"),
    (b"foo,bar\n1,2\n", "other.csv", "unknown column(s): foo, bar"),
])
def test_what_is_not_a_customer_file_is_422_and_nothing_is_kept(
        api_client: ApiClients, crm: CRM, content: bytes, name: str, says: str) -> None:
    client = api_client("admin")
    problem = problem_of(_upload(client, content, name), 422)
    assert says in problem["detail"] and problem["field"] == "file"
    assert "recrm-jobs" not in problem["detail"]  # the server's paths are not shown
    assert _files(crm) == [] and crm.import_jobs.list() == []


def test_the_form_must_be_multipart_with_a_file(api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    problem_of(client.post("/v1/imports", json={"file": "x"}), 415)
    problem_of(client.post("/v1/imports", data={"sheet": "x"},
                           files={"other": ("a.csv", b"name\n", "text/csv")}), 422)
    assert crm.import_jobs.list() == []


@pytest.mark.recrm_settings(api={"max_upload_bytes": 4096, "max_body_bytes": 1024})
def test_uploads_have_their_own_size_limit(api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    rows = [(f"客户{i}", f"1381234{i:04d}", "", "XL2") for i in range(200)]
    small = _csv(rows[:50]).encode()
    assert 1024 < len(small) < 4096  # over max_body_bytes, yet within max_upload_bytes
    assert _upload(client, small).status_code == 202
    big = _csv(rows).encode()
    assert len(big) > 4096
    assert "max_upload_bytes" in problem_of(_upload(client, big), 413)["detail"]

    def streamed() -> Any:  # no Content-Length: counted as it arrives
        boundary = "b0undary"
        yield f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; " \
              f"filename=\"a.csv\"\r\n\r\n".encode()
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post("/v1/imports", content=streamed(), headers={
        "content-type": "multipart/form-data; boundary=b0undary"})
    assert "max_upload_bytes" in problem_of(response, 413)["detail"]
    assert len(crm.import_jobs.list()) == 1
    assert [n for n in _files(crm) if not n.endswith(".upload")] == []
    # other routes keep max_body_bytes
    problem_of(client.post("/v1/customers", json={"name": "x" * 2000}), 413)


def test_who_may_upload_and_see_a_job(api_client: ApiClients, crm: CRM) -> None:
    content = _csv(GOOD).encode()
    for role in ("partner", "analyst"):
        assert "may not change data" in problem_of(
            _upload(api_client(role), content), 403)["detail"]
    assert _files(crm) == []
    mine = api_client("sales", staff="s1")
    url = _upload(mine, content).json()["url"]
    assert mine.get(url).json()["status"] == "queued"
    problem_of(api_client("sales", staff="s2").get(url), 404)
    problem_of(api_client("sales", staff="s1").get(url), 404)  # another key of s1's
    assert api_client("admin").get(url).status_code == 200
    assert [j["url"] for j in mine.get("/v1/imports").json()] == [url]
    assert api_client("sales", staff="s2").get("/v1/imports").json() == []
    problem_of(mine.get(url + "/errors"), 404)  # not started: no errors CSV yet
    problem_of(mine.get("/v1/imports/99999"), 404)


def test_a_retried_upload_with_an_idempotency_key_is_one_job(api_client: ApiClients,
                                                             crm: CRM) -> None:
    client = api_client("admin")
    # A retry sends the same bytes (the same multipart boundary) again.
    body = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n" + _csv(GOOD).encode() + b"\r\n--xyz--\r\n")
    headers = {"Idempotency-Key": "upload-1",
               "Content-Type": "multipart/form-data; boundary=xyz"}
    first = client.post("/v1/imports", headers=headers, content=body)
    again = client.post("/v1/imports", headers=headers, content=body)
    assert first.status_code == again.status_code == 202
    assert again.headers.get("idempotent-replayed") == "true"
    assert first.json() == again.json() and len(crm.import_jobs.list()) == 1


@pytest.mark.recrm_settings(import_batch_size=2)
def test_a_job_a_crash_left_running_is_resumed_without_duplicates(
        api_client: ApiClients, crm: CRM) -> None:
    import threading

    rows = [(f"客户{i}", f"1381234{i:04d}", "", "XL2") for i in range(7)]
    rows.insert(2, ("坏", "12", "", "XL2"))  # row 3: rejected in the first run
    client = api_client("admin")
    url = _upload(client, _csv(rows).encode()).json()["url"]
    job_id = int(url.rsplit("/", 1)[1])
    # A server claims it and dies after its second batch: the lease is never renewed.
    assert crm.import_jobs.claim("dead-server") == job_id
    stopping = threading.Event()
    original = crm.importer.import_file

    def dies_after_two_batches(*args: Any, **kwargs: Any) -> Any:
        report = kwargs["progress"]

        def progress(p: Any) -> None:
            report(p)
            if p.rows >= 4:
                stopping.set()
                report(p)  # raises: the worker stops as a crash would leave it

        return original(*args, **{**kwargs, "progress": progress})

    crm.importer.import_file = dies_after_two_batches  # type: ignore[method-assign]
    try:
        crm.import_jobs.run(job_id, "dead-server", stopping)
    finally:
        del crm.importer.import_file
    with crm.unit_of_work() as uow:  # the crash: the lease was not released
        uow.session.execute(update(ImportJobRow).where(ImportJobRow.id == job_id).values(
            lease_owner="dead-server", lease_until=dt.datetime.now(dt.UTC)
            - dt.timedelta(minutes=5)))
    half = client.get(url).json()
    assert (half["status"], half["rows_committed"], half["rejected"]) == ("running", 4, 1)
    assert _customers(crm) == 3
    # a live lease is not taken over
    with crm.unit_of_work() as uow:
        uow.session.execute(update(ImportJobRow).where(ImportJobRow.id == job_id).values(
            lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)))
    assert crm.import_jobs.claim("other") is None
    with crm.unit_of_work() as uow:
        uow.session.execute(update(ImportJobRow).where(ImportJobRow.id == job_id).values(
            lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)))
    # a new server starts: its worker resumes the job
    with api_client("admin") as restarted:
        job = _wait(restarted, url)
    assert job["status"] == "done" and job["attempts"] == 2, job
    assert job["summary"] == {"rows": 8, "created": 7, "merged": 0, "rejected": 1,
                              "suspected_duplicates": 0}
    assert _customers(crm) == 7
    assert [r["row"] for r in _errors(client, job)] == ["3"]
    assert [n for n in _files(crm) if n.endswith(".upload")] == []


@pytest.mark.recrm_settings(import_batch_size=2)
def test_an_unreadable_row_fails_the_job_after_the_rows_before_it(api_client: ApiClients,
                                                                  crm: CRM) -> None:
    client = api_client("admin")
    content = _csv(GOOD).encode() + b'"never closed,13612345678,,\n'
    url = _upload(client, content, "bad.csv").json()["url"]
    crm.import_jobs.run_pending()
    job = client.get(url).json()
    assert job["status"] == "failed" and job["summary"] is None
    assert "row 4" in job["error"] and "never closed" in job["error"], job
    assert "recrm-jobs" not in job["error"]
    assert job["rows_committed"] == 3 and _customers(crm) == 3
    assert [n for n in _files(crm) if n.endswith(".upload")] == []


def test_two_workers_never_claim_one_job(api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    _upload(client, _csv(GOOD).encode())
    claimed = [crm.import_jobs.claim(f"worker-{i}") for i in range(2)]
    assert claimed.count(None) == 1
    # the worker that did not claim it does not run it
    crm.import_jobs.run(next(j for j in claimed if j is not None), "worker-other")
    assert _customers(crm) == 0


def test_two_servers_share_the_queue_each_job_runs_once(
        api_client: ApiClients, crm: CRM, crm_factory: Any) -> None:
    import threading

    client = api_client("admin")
    for i in range(6):
        rows = [(f"客户{i}{j}", f"13{i}1234{j:04d}", "", "XL2") for j in range(5)]
        assert _upload(client, _csv(rows).encode()).status_code == 202
    other = crm_factory()  # a second server process's CRM on the same database
    ran: list[int] = []
    threads = [threading.Thread(target=lambda c=c: ran.append(c.import_jobs.run_pending()))
               for c in (crm, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(ran) == 6
    jobs = crm.import_jobs.list()
    assert [(j.status, j.attempts) for j in jobs] == [("done", 1)] * 6
    assert _customers(crm) == 30


def test_the_worker_thread_stops_cleanly(crm: CRM) -> None:
    worker = ImportWorker(crm, poll_seconds=0.05)
    worker.start()
    worker.wake()
    worker.stop(timeout=10)
    assert worker._thread is not None and not worker._thread.is_alive()


def test_the_sweep_deletes_jobs_and_errors_csvs_past_retention(api_client: ApiClients,
                                                               crm: CRM) -> None:
    client = api_client("admin")
    url = _upload(client, _csv([*GOOD, ("x", "1", "", "")]).encode()).json()["url"]
    crm.import_jobs.run_pending()
    job = client.get(url).json()
    assert job["errors_url"] and len(_files(crm)) == 1
    ended = dt.datetime.fromisoformat(job["finished_at"])
    assert crm.import_jobs.sweep(now=ended + dt.timedelta(days=6)) == 0
    assert client.get(job["errors_url"]).status_code == 200
    assert crm.import_jobs.sweep(now=ended + dt.timedelta(days=7, minutes=1)) == 1
    assert _files(crm) == []
    problem_of(client.get(url), 404)


def test_erasure_removes_the_person_from_kept_errors_csvs(api_client: ApiClients,
                                                          crm: CRM) -> None:
    client = api_client("admin")
    wang = client.post("/v1/customers", json={"name": "王伟", "mobile": "13812345678",
                                              "id_card": "11010519491231002X"}).json()
    li = client.post("/v1/customers", json={"name": "李娜", "mobile": "13912345678"}).json()
    rows = "name,mobile,id_card,email\n" \
        "王伟,13912345678,11010519491231002X,\n" \
        "某人,13812345678,,not-an-email\n" \
        "别人,13612345678,,also-bad\n"
    url = _upload(client, rows.encode(), "王伟 13812345678.csv").json()["url"]
    crm.import_jobs.run_pending()
    job = client.get(url).json()
    before = _errors(client, job)
    assert [r["row"] for r in before] == ["1", "2", "3"], before
    assert any(str(wang["customer"]["id"]) in r["reason"] for r in before)
    report = crm.privacy.erase(wang["customer"]["id"], "ticket 9")
    assert report.verified
    step = next(s for s in report.steps if s["table"] == "import_jobs")
    assert step["anonymised"] == 2, (step["basis"], before[:2])
    after = _errors(client, client.get(url).json())
    assert [r["row"] for r in after] == ["2", "3"]  # the conflict naming them is gone
    assert client.get(url).json()["filename"] == "(redacted)"
    assert li["customer"]["id"]


def test_erasure_cancels_a_waiting_import_of_the_person(api_client: ApiClients,
                                                         crm: CRM) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"name": "王伟", "mobile": "13812345678"}
                      ).json()["customer"]["id"]
    url = _upload(client, _csv(GOOD).encode()).json()["url"]
    dry = crm.privacy.erase(cid, "ticket 1", dry_run=True)
    assert dry.verified and client.get(url).json()["status"] == "queued"
    assert len(_files(crm)) == 1
    crm.privacy.erase(cid, "ticket 1")
    job = client.get(url).json()
    assert job["status"] == "failed" and "erased" in job["error"]
    assert _files(crm) == []
    assert crm.import_jobs.run_pending() == 0


def test_job_directory_defaults(tmp_path: Path) -> None:
    config = tmp_path / "recrm.toml"
    config.write_text('database_url = "sqlite:///crm.db"\n', encoding="utf-8")
    with CRM(config_path=config) as crm:
        assert job_directory(crm) == tmp_path / "recrm-jobs"
    with CRM(database_url=f"sqlite:///{tmp_path / 'sub' / 'x.db'}") as crm:
        assert job_directory(crm) == tmp_path / "sub" / "recrm-jobs"
    with CRM(database_url="postgresql+psycopg://u@h/db",
             settings={"key_file": str(tmp_path / "keys" / "recrm.key")}) as crm:
        assert job_directory(crm) == tmp_path / "keys" / "recrm-jobs"
    with CRM(database_url="postgresql+psycopg://u@h/db",
             settings={"api": {"job_directory": "/srv/jobs"}}) as crm:
        assert job_directory(crm) == Path("/srv/jobs")
