"""reconciler/serving.py: the one bind-and-serve helper of the emulator and the status server.
A real socket and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket

import httpx
import pytest
import uvicorn

from reconciler.serving import ListenError, QuietServer, bind, parse_listen, serve_in_thread


async def hello(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def test_parse_listen_forms_and_one_message_for_bad_ones():
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen(":9479") == ("127.0.0.1", 9479)
    assert parse_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(ValueError, match=r"--listen 'nowhere': expected HOST:PORT"):
        parse_listen("nowhere")


def test_bind_listens_with_tcp_nodelay_on_a_free_port():
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
        # accepted sockets inherit TCP_NODELAY only from a listener created as TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_a_busy_port_is_one_listen_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(ListenError, match=f"^cannot listen on 127.0.0.1:{port}: ") as info:
            bind("127.0.0.1", port)
        assert isinstance(info.value, OSError)


@pytest.mark.parametrize("tick", [0.1, 1.0])
def test_served_in_a_thread_and_stopped_at_once(tick):
    sock = bind("127.0.0.1", 0)
    server = QuietServer(
        uvicorn.Config(hello, lifespan="off", log_config=None, access_log=False), tick=tick)
    thread = serve_in_thread(server, sock, "test-server")
    try:
        assert server.started
        port = sock.getsockname()[1]
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "hello"
    finally:
        server.request_exit()
        thread.join(5)
        sock.close()
    assert not thread.is_alive()
