import socket

import pytest

from shared.adapters.db import parse_database_url, tcp_socket


def test_tcp_url():
    p = parse_database_url("postgresql://qs_app:p%40ss@db.internal:6543/quantsentinel?sslmode=require")
    assert (p.user, p.password, p.host, p.port, p.database, p.ssl) == (
        "qs_app", "p@ss", "db.internal", 6543, "quantsentinel", True)
    assert p.unix_sock is None


def test_unix_socket_url_as_pgserver_writes_it():
    p = parse_database_url("postgresql://postgres:@/postgres?host=/tmp/pg")
    assert p.unix_sock == "/tmp/pg/.s.PGSQL.5432" and p.host is None and p.password is None
    assert parse_database_url(p.url()) == p


def test_password_is_not_in_repr():
    assert "hunter2" not in repr(parse_database_url("postgresql://u:hunter2@h/db"))


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql://u@h/"])
def test_bad_urls_say_why(url):
    with pytest.raises(ValueError):
        parse_database_url(url)


def test_tcp_sockets_have_nodelay_and_keepalive():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        sock = tcp_socket("127.0.0.1", server.getsockname()[1], timeout=2)
        try:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        finally:
            sock.close()
