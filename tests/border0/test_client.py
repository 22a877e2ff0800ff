"""Contract tests: every Border0Client operation against the emulator over real HTTP."""

from __future__ import annotations

import gc
import logging
import threading

import httpx
import pytest
from helpers import free_port, sent

from reconciler.border0.api_json import socket_from_api
from reconciler.border0.client import USER_AGENT, Border0Client
from reconciler.border0.errors import (
    APIError,
    BadRequest,
    Border0Error,
    ConfigurationError,
    DeadlineExceeded,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
)
from reconciler.border0.paging import PAGE_CONCURRENCY
from reconciler.border0.session import LOCAL_TOKEN, open_api
from reconciler.clock import ManualClock

POLICY_DATA = {
    "version": "v1",
    "action": ["http", "ssh"],
    "condition": {"who": {"email": ["a@example.com"]}, "where": {"allowed_ip": ["0.0.0.0/0"]}},
}


def test_socket_lifecycle(emulator):
    client = emulator.client()
    created = client.create_socket(
        {"name": "web", "socket_type": "https", "description": "site", "tags": {"team": "a"},
         "upstream_http_hostname": "intranet.local"}
    )
    assert created["socket_type"] == "http" and created["upstream_type"] == "https"
    assert created["dnsname"] == "web-local.border0.io"
    assert len(created["socket_tcp_ports"]) == 1
    assert client.get_socket(created["socket_id"]) == client.get_socket("web")
    assert client.find_socket("web")["socket_id"] == created["socket_id"]
    assert client.find_socket("nope") is None
    with pytest.raises(NotFound) as err:
        client.get_socket("nope")
    assert err.value.status == 404 and "nope" in err.value.error_message

    updated = client.update_socket("web", {"description": "new", "tags": {"team": "b"}})
    assert updated["description"] == "new" and updated["tags"] == {"team": "b"}
    assert updated["upstream_http_hostname"] == ""  # border0's PUT resets what it is not sent
    assert updated["socket_tcp_ports"] == created["socket_tcp_ports"]

    client.delete_socket(created["socket_id"])
    assert client.find_socket("web") is None
    client.delete_socket(created["socket_id"])  # 404 on delete is success
    assert client.request_counts[("DELETE", 404)] == 1


def test_socket_types_and_defaults(emulator):
    client = emulator.client()
    types = {t: client.create_socket({"name": f"s-{t}", "socket_type": t})
             for t in ("http", "ssh", "tls", "database")}
    assert {t: s["upstream_type"] for t, s in types.items()} == {
        "http": "http", "ssh": "ssh", "tls": "tls", "database": "mysql"}
    ports = [p for s in types.values() for p in s["socket_tcp_ports"]]
    assert len(ports) == len(set(ports)) == 4
    pg = client.create_socket({"name": "pg", "socket_type": "database", "upstream_type": "postgres",
                               "upstream_username": "u", "upstream_password": "p@ss"})
    live = socket_from_api(client.get_socket("pg"))
    assert live.upstream_type == "postgres"
    assert pg["upstream_username"] == "u"


@pytest.mark.contract_exempt("sends bodies border0 refuses, to see the client's error")
@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": "Bad_Name", "socket_type": "http"}, "invalid socket name"),
        ({"name": "-x", "socket_type": "http"}, "invalid socket name"),
        ({"name": "a" * 64, "socket_type": "http"}, "invalid socket name"),
        ({"name": "ok", "socket_type": "gopher"}, "unknown socket_type"),
        ({"name": "ok"}, "socket_type"),
        ({"name": "ok", "socket_type": "http", "tags": {"a": 1}}, "tags"),
    ],
)
def test_create_socket_refusals(emulator, body, message):
    with pytest.raises(BadRequest) as err:
        emulator.client().create_socket(body)
    assert err.value.status == 400 and message in err.value.error_message


def test_duplicate_names_refused(emulator):
    client = emulator.client()
    client.create_socket({"name": "dup", "socket_type": "ssh"})
    with pytest.raises(BadRequest, match="already exists"):
        client.create_socket({"name": "dup", "socket_type": "ssh"})
    client.create_policy({"name": "p", "policy_data": POLICY_DATA})
    with pytest.raises(BadRequest, match="already exists"):
        client.create_policy({"name": "p", "policy_data": POLICY_DATA})


def test_paging_walks_every_page(emulator):
    client = emulator.client()
    names = [f"s{i}" for i in range(5)]
    for name in names:
        client.create_socket({"name": name, "socket_type": "tls"})
    listed = client.list_sockets(page_size=2)
    assert [s["name"] for s in listed] == names
    # pages of 2, 2 and 1, and /serverinfo once: the read-after-write delay after the creates
    assert client.request_counts[("GET", 200)] == 4
    assert [s["name"] for s in client.list_sockets()] == names


def test_pages_are_converted_in_the_walking_thread_and_asked_for_as_they_are_taken(emulator):
    """The page threads only make the round trips: each answer is decoded and converted in
    the thread that walks (one thread of Python beside the manifests' load, not 16), and a
    page is asked for only when one is taken, so at most PAGE_CONCURRENCY wait undecoded."""
    client = emulator.client()
    for i in range(100):
        client.create_socket({"name": f"s{i:03d}", "socket_type": "tls"})
    asked: list[str] = []

    def ask(request: httpx.Request) -> None:  # pages only, not the /serverinfo after writes
        if request.url.path.endswith("/sockets"):
            asked.append(request.url.params["page"])

    client._http.event_hooks["request"].append(ask)
    seen: list[tuple[str, int]] = []

    def convert(item: dict) -> str:
        seen.append((threading.current_thread().name, len(asked)))
        return item["name"]

    names = client.list_sockets(page_size=2, convert=convert)

    assert names == [f"s{i:03d}" for i in range(100)]  # 50 pages, every socket, in order
    assert {thread for thread, _ in seen} == {threading.current_thread().name}
    # when page 2's first socket is converted: page 1, the window, and the page asked for
    # as page 2 was taken
    assert seen[2][1] <= 1 + PAGE_CONCURRENCY + 1 < 50


def test_a_listing_keeps_no_page_of_answers_once_it_is_read(emulator):
    """httpx links each response and its stream both ways; a page's body (200 KB of 100
    sockets) lived on until a full garbage collection: 200 MB over 100,000 sockets. The
    client cuts the link once the body is read: reference counting frees each page."""
    client = emulator.client()
    for i in range(5):
        client.create_socket({"name": f"s{i}", "socket_type": "tls"})
    gc.collect()
    gc.disable()  # only reference counting frees what the listing leaves behind
    try:
        assert len(client.list_sockets(page_size=2)) == 5
        kept = [o for o in gc.get_objects() if isinstance(o, httpx.Response)]
    finally:
        gc.enable()
    assert kept == []


def test_policy_lifecycle_and_attachments(emulator):
    client = emulator.client()
    sock = client.create_socket({"name": "db", "socket_type": "database"})
    policy = client.create_policy(
        {"name": "devs", "description": "d", "policy_data": POLICY_DATA, "org_wide": False}
    )
    assert policy["socket_ids"] == [] and policy["policy_data"] == POLICY_DATA
    assert client.get_policy(policy["id"])["name"] == "devs"
    assert client.find_policy("devs")["id"] == policy["id"]
    assert client.find_policy("nobody") is None
    assert [p["name"] for p in client.list_policies()] == ["devs"]

    client.update_socket_policies(sock["socket_id"], add=[policy["id"]])
    client.update_socket_policies(sock["socket_id"], add=[policy["id"]])  # idempotent
    assert client.get_policy(policy["id"])["socket_ids"] == [sock["socket_id"]]
    assert [p["name"] for p in client.get_socket("db")["policies"]] == ["devs"]

    changed = client.update_policy(policy["id"], {"name": "devs", "description": "e",
                                                  "policy_data": {"version": "v1"}})
    assert changed["description"] == "e" and changed["socket_ids"] == [sock["socket_id"]]

    client.update_socket_policies(sock["socket_id"], remove=[policy["id"]])
    assert client.get_policy(policy["id"])["socket_ids"] == []
    assert client.get_socket("db")["policies"] == []

    client.update_socket_policies(sock["socket_id"], add=[policy["id"]])
    client.delete_policy(policy["id"])  # deleting a policy detaches it
    assert client.get_socket("db")["policies"] == []
    client.delete_policy(policy["id"])
    with pytest.raises(NotFound):
        client.get_policy(policy["id"])


def test_deleting_a_socket_detaches_it(emulator):
    client = emulator.client()
    a = client.create_socket({"name": "a", "socket_type": "ssh"})
    b = client.create_socket({"name": "b", "socket_type": "ssh"})
    policy = client.create_policy({"name": "p", "policy_data": POLICY_DATA})
    client.update_socket_policies(a["socket_id"], add=[policy["id"]])
    client.update_socket_policies(b["socket_id"], add=[policy["id"]])
    client.delete_socket("a")
    assert client.get_policy(policy["id"])["socket_ids"] == [b["socket_id"]]


def test_attach_unknown_policy_is_refused_whole(emulator):
    client = emulator.client()
    sock = client.create_socket({"name": "a", "socket_type": "ssh"})
    good = client.create_policy({"name": "good", "policy_data": POLICY_DATA})
    with pytest.raises(NotFound):
        client.update_socket_policies(sock["socket_id"], add=[good["id"], "missing-id"])
    assert client.get_socket("a")["policies"] == []  # all or nothing


def test_connectors_and_serverinfo(emulator):
    client = emulator.client()
    sock = client.create_socket({"name": "a", "socket_type": "ssh"})
    assert client.list_connectors(sock["socket_id"]) == []
    assert client.read_after_write_delay() == 0.0
    with pytest.raises(NotFound):
        client.list_connectors("missing")


def test_wrong_token_is_unauthorized_and_never_shown(emulator):
    secret = "wrong-token-9a8b7c"
    client = emulator.client(token=secret)
    with pytest.raises(Unauthorized) as err:
        client.list_sockets()
    assert err.value.status == 401 and "token" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(err.value)
    assert client.request_counts[("GET", 401)] == 1  # never retried


def test_both_header_styles_and_user_agent(emulator):
    seen: list[str] = []
    with httpx.Client(base_url=emulator.url + "/") as http:
        for headers in ({"Authorization": f"Bearer {emulator.token}"},
                        {"x-access-token": emulator.token}):
            assert http.get("sockets", headers=headers).status_code == 200
        assert http.get("sockets", headers={"x-access-token": "nope"}).status_code == 401
    client = emulator.client()
    client._http.event_hooks["request"].append(lambda r: seen.append(r.headers["user-agent"]))
    client.list_policies()
    assert seen == [USER_AGENT]


def test_token_never_in_errors_reprs_or_logs(emulator, caplog):
    """Provoke each error class with the real token and look for it everywhere."""
    token = emulator.token
    caplog.set_level(logging.DEBUG, logger="reconciler.border0")
    client = emulator.client()
    assert token not in repr(client) and token not in str(vars(client))
    errors: list[Border0Error] = []
    for call in (lambda: client.get_socket("missing"),
                 lambda: client.create_socket({"name": "UPPER", "socket_type": "http"}),
                 lambda: emulator.client(token=token + "x").list_sockets()):
        with pytest.raises(Border0Error) as err:
            call()
        errors.append(err.value)
    dead = Border0Client("http://127.0.0.1:9/api/v1", token, max_retries_5xx=1,
                         backoff_base=0.01)
    with pytest.raises(TransportError) as err:
        dead.list_sockets()
    errors.append(err.value)
    with pytest.raises(DeadlineExceeded) as err:
        Border0Client("http://127.0.0.1:9/api/v1", token, deadline=0.05,
                      backoff_base=1.0).list_sockets()
    errors.append(err.value)
    assert {type(e) for e in errors} >= {NotFound, BadRequest, Unauthorized, TransportError,
                                         DeadlineExceeded}
    for exc in errors:
        assert token not in str(exc) and token not in repr(exc) and token not in str(exc.args)
    assert caplog.records and all(token not in r.getMessage() for r in caplog.records)


def test_threads_share_one_client(emulator):
    client = emulator.client()
    failures: list[BaseException] = []

    def work(i: int) -> None:
        try:
            client.create_socket({"name": f"t{i}", "socket_type": "http"})
            client.get_socket(f"t{i}")
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    assert len(client.list_sockets()) == 16
    assert client.request_counts[("POST", 200)] == 16


def test_open_api_local_uses_a_state_file(tmp_path):
    state = tmp_path / "sub" / "local.db"
    with open_api("local", None, str(state)) as client:
        client.create_socket({"name": "kept", "socket_type": "ssh"})
    with open_api("local", None, str(state)) as client:
        assert client.find_socket("kept") is not None
    assert state.exists() and LOCAL_TOKEN


def test_open_api_remote_needs_a_token(tmp_path):
    state = str(tmp_path / "state.db")  # the fingerprint key beside it, not in the checkout
    with pytest.raises(ConfigurationError, match="no border0 token"), open_api(
            "https://example.invalid/api/v1", None, state, env={}):
        pass
    with pytest.raises(ConfigurationError, match="cannot read token file"), open_api(
            None, str(tmp_path / "none"), state, env={}):
        pass
    with pytest.raises(ConfigurationError, match="bad --api"), open_api(
            "ftp://x", None, state, env={"BORDER0_TOKEN": "t"}):
        pass
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    with open_api(None, str(token_file), state, env={"BORDER0_API": "http://h/api/v1/"}) as c:
        assert c.base_url == "http://h/api/v1"
        assert "from-file" not in repr(c)


# --- edge cases through the transport seam (httpx.MockTransport) ----------------------------


def mock_client(handler, **options) -> Border0Client:
    options = {"backoff_base": 0.01, "backoff_max": 0.05, **options}
    return Border0Client("https://border0.test/api/v1", "tok-123456", **options,
                         transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("status, body, cls, message", [
    (400, {"status_code": 400, "error_message": "bad name"}, BadRequest, "bad name"),
    (403, {"message": "not yours"}, Forbidden, "not yours"),
    (404, b"plain text page", NotFound, "plain text page"),
    (418, b"", APIError, "I'm a teapot"),
    (502, b"<html>gateway tok-123456</html>", ServerError, "<html>gateway (sensitive)</html>"),
    (429, {"error_message": "slow down, tok-123456"}, RateLimited, "slow down, (sensitive)"),
])
def test_error_messages_fall_back_and_are_redacted(status, body, cls, message):
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, dict):
            return httpx.Response(status, json=body, headers={"Retry-After": "0"})
        return httpx.Response(status, content=body)

    client = mock_client(handler, max_retries_5xx=1, max_retries_429=1)
    with pytest.raises(cls) as err:
        client.get_policy("p1")
    assert type(err.value) is cls and err.value.status == status
    assert err.value.error_message.startswith(message)
    assert "tok-123456" not in str(err.value) and "tok-123456" not in repr(err.value)
    assert err.value.temporary == (status in (429, 502))


def test_retry_after_as_http_date_and_invalid_json():
    answers = iter([
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        httpx.Response(200, content=b"{not json"),
    ])
    client = mock_client(lambda request: next(answers))
    with pytest.raises(APIError, match="not valid JSON"):
        client.get_socket("x")
    assert client.request_counts == {("GET", 429): 1, ("GET", 200): 1}


def test_requests_carry_bearer_token_and_quoted_names():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"socket_id": "1", "name": "a"})

    mock_client(handler).get_socket("a/../b")
    assert seen[0].headers["authorization"] == "Bearer tok-123456"
    assert seen[0].url.raw_path == b"/api/v1/socket/a%2F..%2Fb?activeOnly=true"


def test_paging_stops_on_a_server_that_repeats_pages():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sockets"):
            page = int(request.url.params["page"])
            return httpx.Response(200, json={"list": [{"socket_id": "1"}],
                                             "pagination": {"next_page": page}})
        return httpx.Response(200, json=[{"id": "p"}] * 3)

    client = mock_client(handler)
    assert client.list_sockets() == [{"socket_id": "1"}]
    assert client.list_policies(page_size=3) == [{"id": "p"}]  # same ids again: stop


# --- retries -------------------------------------------------------------------------------


class _BackoffAfterBoth(ManualClock):
    """While `armed`, a retry's backoff returns only once the other request has failed too:
    both failures are seen before either retry is answered, however the threads are
    scheduled (with a real 20 ms backoff, one thread's retry could be answered before a slow
    thread had read its own 500, and that is a new failure)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True
        self.both_failed = threading.Barrier(2)

    def sleep(self, seconds: float) -> None:
        if self.armed:
            self.both_failed.wait(timeout=30)
        super().sleep(seconds)


def test_a_retry_is_told_once_per_failure_not_once_per_request(emulator_factory):
    """Requests in flight together meet the same failure: its retry is announced once. Once
    border0 answered, the next failure is a new one, told again."""
    emu = emulator_factory()
    clock = _BackoffAfterBoth()
    client = emu.client(clock=clock)
    announced: list[str] = []
    client.on_retry = announced.append
    told = f"border0 API answered 500, retrying 1/{client.max_retries_5xx}..."
    emu.app.faults.fail_next(2, "500")
    barrier = threading.Barrier(2)

    def listing() -> None:
        barrier.wait()
        client.list_policies()

    threads = [threading.Thread(target=listing) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emu.app.faults.injected["500"] == 2
    assert announced == [told]
    clock.armed = False
    emu.app.faults.fail_next(1, "500")
    client.list_policies()
    assert announced == [told, told]


def test_retries_under_fail_rate_over_real_http(emulator_factory):
    proc = emulator_factory(fail_rate=0.3, seed=7)
    client = proc.client()
    for i in range(20):
        while True:
            try:
                client.create_socket({"name": f"f{i}", "socket_type": "ssh"})
                break
            # a retry met the socket its lost attempt had made, or a dropped POST (not sent
            # again): made or not, as apply tells, by name
            except (BadRequest, TransportError) as exc:
                assert exc.ambiguous, exc
                if client.find_socket(f"f{i}") is not None:
                    break
    for i in range(0, 20, 2):
        client.update_socket(f"f{i}", {"description": "even"})
        client.delete_socket(f"f{i + 1}")
    names = sorted(s["name"] for s in client.list_sockets(page_size=3))
    assert names == sorted(f"f{i}" for i in range(0, 20, 2))
    assert all(client.get_socket(n)["description"] == "even" for n in names)
    failed = sum(n for (method, status), n in client.request_counts.items()
                 if status == 0 or status >= 500)
    assert failed >= 5, client.request_counts  # faults happened and were retried away


def test_retries_under_rate_limit_from_threads(emulator_factory):
    proc = emulator_factory(rate_limit=25)
    client = proc.client()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                client.list_policies()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert client.request_counts[("GET", 200)] == 80
    assert client.request_counts[("GET", 429)] > 0


def test_retry_after_is_honoured(emulator_factory):
    clock = ManualClock()  # the twin's bucket refills on the client's clock: no real wait
    emu = emulator_factory(rate_limit=1, clock=clock)
    client = emu.client(backoff_max=5.0, clock=clock)
    client.list_policies()
    client.list_policies()  # the bucket is empty: 429, Retry-After: 1, then served
    assert clock.slept == [1.0]
    assert client.request_counts[("GET", 429)] == 1


def test_gives_up_after_max_retries(emulator_factory):
    emu = emulator_factory(fail_rate=1.0, seed=3)
    client = emu.client(max_retries_5xx=2)
    with pytest.raises((ServerError, TransportError)) as err:
        client.get_socket("x")
    assert err.value.temporary
    assert sum(client.request_counts.values()) == 3  # first try + 2 retries


def test_rate_limited_after_max_retries(emulator_factory):
    emu = emulator_factory(rate_limit=1)
    client = emu.client(max_retries_429=0)
    client.list_policies()
    with pytest.raises(RateLimited) as err:
        client.list_policies()
    assert err.value.status == 429 and err.value.temporary


def test_timeouts_and_the_total_deadline(emulator_factory):
    emu = emulator_factory(latency_ms=400)
    slow = emu.client(timeout=0.1, max_retries_5xx=1)
    with pytest.raises(TransportError, match="Timeout"):
        slow.list_policies()
    assert slow.request_counts[("GET", 0)] == 2
    clock = ManualClock()
    bounded = emu.client(timeout=5.0, deadline=0.2, backoff_base=1.0, clock=clock)
    with pytest.raises(DeadlineExceeded):
        bounded.list_policies()
    assert clock.slept == []  # a backoff past the deadline is not waited: it fails at once
    assert bounded.request_counts[("GET", 0)] == 1


def test_lost_create_answer_is_reported_ambiguous_not_resolved_by_name(emulator):
    """The client says a failed create may have been applied; apply decides, with the ownership
    check, whether the object found by name is ours (tests/apply/test_apply.py)."""
    client = emulator.client()
    emulator.app.faults.fail_next(1, "500-after")  # applied, then the answer is lost
    with pytest.raises(BadRequest, match="already exists") as lost:
        client.create_socket({"name": "once", "socket_type": "tls"})
    assert lost.value.ambiguous
    assert client.request_counts[("POST", 500)] == 1
    assert client.request_counts[("POST", 400)] == 1  # the retry met "already exists"
    emulator.app.faults.fail_next(1, "drop-after")
    with pytest.raises(TransportError, match="not sent again") as dropped:
        client.create_policy({"name": "once", "policy_data": POLICY_DATA})
    assert dropped.value.ambiguous and client.request_counts[("POST", 0)] == 1
    assert sent(client, "POST") == 3  # the dropped POST was not sent again
    assert [s["name"] for s in client.list_sockets()] == ["once"]
    assert [p["name"] for p in client.list_policies()] == ["once"]


@pytest.mark.parametrize("kind, made", [("drop", 0), ("drop-after", 1)])
def test_a_post_without_an_answer_is_not_sent_again(emulator, kind, made):
    """border0-go retries only 404, 429 and 5xx (client/api_client.go `request`), never a
    request that got no answer: a POST that may have reached border0 is sent once, or a
    dropped `POST /connector/token` leaves a second live token of its name."""
    client = emulator.client()
    connector = client.create_connector({"name": "edge"})
    emulator.app.faults.fail_next(1, kind, method="POST")
    with pytest.raises(TransportError, match="not sent again") as lost:
        client.create_connector_token({"connector_id": connector["connector_id"], "name": "t"})
    assert lost.value.ambiguous and lost.value.temporary
    assert client.request_counts[("POST", 0)] == 1 and sent(client, "POST") == 2
    assert len(client.list_connector_tokens(connector["connector_id"])) == made


def test_a_post_whose_connection_was_refused_is_sent_again():
    """No connection, no request: border0 cannot have carried it out, so it is retried."""
    client = Border0Client(f"http://127.0.0.1:{free_port()}/api/v1", "tok-123456",
                           max_retries_5xx=2, backoff_base=0.01, backoff_max=0.02)
    with pytest.raises(TransportError, match="after 3 attempts") as refused:
        client.create_socket({"name": "web", "socket_type": "ssh"})
    assert client.request_counts == {("POST", 0): 3}
    assert not refused.value.ambiguous  # nothing was sent: nothing can have been made


@pytest.mark.parametrize("error, resent", [
    (httpx.ConnectError, True), (httpx.ConnectTimeout, True), (httpx.PoolTimeout, True),
    (httpx.ReadTimeout, False), (httpx.ReadError, False), (httpx.WriteError, False),
    (httpx.RemoteProtocolError, False),
])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_which_lost_requests_are_sent_again(error, resent, method):
    """Idempotent methods are sent again after any transport error; a POST only after one
    raised before the request left (httpx/_exceptions.py: connect and pool errors)."""
    failed: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if not failed:
            failed.append(request.method)
            raise error("no answer", request=request)
        return httpx.Response(200, json={"socket_id": "1", "name": "web"})

    client = mock_client(handler)
    call = {"POST": lambda: client.create_socket({"name": "web", "socket_type": "ssh"}),
            "PUT": lambda: client.update_socket("web", {"description": "d"}),
            "DELETE": lambda: client.delete_socket("web")}[method]
    if resent or method != "POST":
        call()
        assert client.request_counts == {(method, 0): 1, (method, 200): 1}
    else:
        with pytest.raises(TransportError, match="not sent again"):
            call()
        assert client.request_counts == {(method, 0): 1}


def test_a_real_conflict_is_not_mistaken_for_a_lost_answer(emulator):
    client = emulator.client()
    client.create_socket({"name": "taken", "socket_type": "tls"})
    with pytest.raises(BadRequest, match="already exists") as taken:
        client.create_socket({"name": "taken", "socket_type": "tls"})
    assert not taken.value.ambiguous


def test_lost_delete_answer_is_success(emulator):
    client = emulator.client()
    client.create_socket({"name": "gone", "socket_type": "ssh"})
    client.read_after_write_delay()  # asked once, before a DELETE after a write: not faulted
    emulator.app.faults.fail_next(1, "drop-after")
    client.delete_socket("gone")
    assert client.request_counts[("DELETE", 0)] == 1
    assert client.request_counts[("DELETE", 404)] == 1
    assert client.find_socket("gone") is None


def test_read_after_write_lag_is_waited_for(emulator_factory):
    clock = ManualClock()
    emu = emulator_factory(read_after_write_delay_ms=300, clock=clock)
    client = emu.client(clock=clock)
    assert client.read_after_write_delay() == pytest.approx(0.3)
    client.create_socket({"name": "w", "socket_type": "ssh"})
    assert client.find_socket("missing") is None  # 404 right after a write: asked again
    assert client.request_counts[("GET", 404)] >= 2
    assert sum(clock.slept) == pytest.approx(0.3)  # the window, not a moment more
