"""Proxies from the environment: HTTP_PROXY for http, HTTPS_PROXY (CONNECT) for https, NO_PROXY bypasses them."""

from __future__ import annotations

import pytest
from support.fault_server import FaultServer

from hyperexport.transfer import HttpRangeSource, download

from ._helpers import fast_options, sha256
from .proxy_server import ForwardProxy


@pytest.fixture
def proxy():
    with ForwardProxy() as running:
        yield running


def test_http_download_goes_through_http_proxy(no_proxy_env, proxy, fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    result = download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options())
    assert (tmp_path / "disk.raw").read_bytes() == payload and result.sha256 == sha256(payload)
    methods = {method for method, _ in proxy.requests}
    assert methods == {"HEAD", "GET"}
    assert all(target == url for _, target in proxy.requests)  # absolute-form: the proxy made every request
    assert len(proxy.requests) == fault_server.stats.requests


def test_no_proxy_bypasses_the_proxy(no_proxy_env, proxy, fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    no_proxy_env.setenv("NO_PROXY", "example.invalid, 127.0.0.0/8")
    download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options())
    assert (tmp_path / "disk.raw").read_bytes() == payload
    assert proxy.requests == [] and fault_server.stats.requests > 0


def test_trust_env_off_ignores_the_proxy(no_proxy_env, proxy, fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options(trust_env=False))
    assert (tmp_path / "disk.raw").read_bytes() == payload
    assert proxy.requests == []


@pytest.mark.parametrize("bypass", [False, True], ids=["through-proxy", "no-proxy"])
def test_https_download_tunnels_through_https_proxy(no_proxy_env, proxy, tls_contexts, payload, tmp_path, bypass):
    server_tls, client_tls = tls_contexts
    with FaultServer(tls=server_tls) as server:
        server.add_file("/disk.raw", payload)
        url = server.url("/disk.raw", host="localhost")
        no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # must not be used for https
        if bypass:
            no_proxy_env.setenv("no_proxy", "localhost")
        result = download(HttpRangeSource(url, verify_tls=client_tls), tmp_path / "disk.raw", fast_options())
        assert result.sha256 == sha256(payload) and result.verified_checksums == ["md5"]
        assert server.stats.requests > 0
    if bypass:
        assert proxy.requests == []
    else:
        assert proxy.requests and all(r == ("CONNECT", f"localhost:{server.port}") for r in proxy.requests)


def test_unusable_proxy_is_bad_input_without_its_password(no_proxy_env, fault_server, payload, tmp_path):
    from hyperexport.errors import InvalidInputError

    url = fault_server.add_file("/disk.raw", payload)
    no_proxy_env.setenv("ALL_PROXY", "socks5://user:hunter22@127.0.0.1:1080")
    with pytest.raises(InvalidInputError, match=r"the proxy socks5://127\.0\.0\.1:1080 set in the environment") as info:
        download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options())
    assert "hunter22" not in str(info.value) and fault_server.stats.requests == 0


def test_unreachable_proxy_is_named_in_the_error(no_proxy_env, fault_server, payload, tmp_path):
    import socket

    from hyperexport.errors import TransferError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = fault_server.add_file("/disk.raw", payload)
    no_proxy_env.setenv("HTTP_PROXY", f"http://user:hunter22@127.0.0.1:{port}")
    with pytest.raises(TransferError, match=rf"ConnectError: through the proxy http://127\.0\.0\.1:{port} \(from") as info:
        download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options(max_attempts=2))
    assert "NO_PROXY" in str(info.value) and "hunter22" not in str(info.value)
    assert fault_server.stats.requests == 0
