"""URLs: scheme and host canonicalized, path and query kept as sent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from iocscope.errors import InvalidObservable
from iocscope.models import Observable, ObservableType
from iocscope.observables.addresses import parse_address
from iocscope.observables.cleaning import show
from iocscope.observables.domains import canonical_domain, registered_domain
from iocscope.observables.scope import address_scope

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_IPV4_HOST = re.compile(r"[0-9.]+")
# Browsers read a host whose last label is a number (hex included) as an IPv4
# address: http://0x0a000005/ is 10.0.0.5 to them.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class _Host:
    # Canonical host as written in the URL: IPv6 in brackets.
    text: str
    # Canonical host for the observable: IPv6 without brackets.
    bare: str
    registered_domain: str | None = None
    is_public_suffix: bool = False
    scope: str | None = None


def has_scheme(value: str) -> bool:
    return _SCHEME.match(value) is not None


def url_observable(value: str, *, single_label_host: bool = True) -> Observable:
    """Parse a URL with an http, https or ftp scheme into its canonical form.

    The scheme and host are canonicalized, a default port is dropped, an empty path
    becomes "/", the path and query are kept byte for byte and the fragment is
    dropped, because it never reaches the server.
    """
    scheme, rest = _split_scheme(value)
    authority, path = _split_authority(rest)
    if "\\" in authority:
        # Browsers read a backslash as "/", so "http://evil.example\\@good.example/"
        # goes to evil.example while a naive split finds good.example.
        raise InvalidObservable(
            f"{show(value)} has a backslash before the path: browsers read it as "
            "'/', so the host is ambiguous; replace it with '/' or percent-encode it",
            value=value,
        )
    userinfo, at, host_port = authority.rpartition("@")
    host_text, port = _split_port(host_port, value)
    host = _canonical_host(host_text, value, single_label=single_label_host)
    port_text = _port_suffix(scheme, port, value)
    canonical = f"{scheme}://{userinfo}{at}{host.text}{port_text}{path}"
    return Observable(
        type=ObservableType.URL,
        value=canonical,
        input=value,
        host=host.bare,
        registered_domain=host.registered_domain,
        is_public_suffix=host.is_public_suffix,
        scope=host.scope,
    )


def _split_scheme(value: str) -> tuple[str, str]:
    match = _SCHEME.match(value)
    if match is None:
        raise InvalidObservable(
            f"{show(value)} is not a valid URL: it has no scheme; write it as "
            "http://host/path",
            value=value,
        )
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidObservable(
            f"{show(value)} has the unsupported scheme {scheme!r}: use "
            f"{', '.join(DEFAULT_PORTS)}",
            value=value,
        )
    return scheme, value[match.end() :]


def _split_authority(rest: str) -> tuple[str, str]:
    """Split after the scheme into authority and path plus query, fragment dropped."""
    rest = rest.split("#", 1)[0]
    end = len(rest)
    for delimiter in "/?":
        position = rest.find(delimiter)
        if position != -1:
            end = min(end, position)
    path = rest[end:]
    if not path.startswith("/"):
        path = "/" + path
    return rest[:end], path


def _split_port(host_port: str, value: str) -> tuple[str, str | None]:
    if host_port.startswith("["):
        host, bracket, after = host_port.partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise InvalidObservable(
                f"{show(value)} has a malformed bracketed IPv6 host: write it as "
                "http://[2001:db8::1]:8080/",
                value=value,
            )
        return host + bracket, after[1:] if after else None
    if host_port.count(":") > 1:
        raise InvalidObservable(
            f"{show(value)} has an IPv6 host without brackets: write it as "
            "http://[2001:db8::1]/",
            value=value,
        )
    host, colon, port = host_port.partition(":")
    return host, port if colon else None


def _canonical_host(text: str, value: str, *, single_label: bool) -> _Host:
    if not text:
        raise InvalidObservable(
            f"{show(value)} is not a valid URL: the host is empty",
            value=value,
        )
    if text.startswith("[") or _IPV4_HOST.fullmatch(text):
        address = parse_address(text, value)
        bare = str(address)
        host_in_url = f"[{bare}]" if address.version == 6 else bare
        return _Host(host_in_url, bare, scope=address_scope(address))
    last_label = text.rstrip(".").rpartition(".")[2]
    if _NUMERIC_LABEL.fullmatch(last_label):
        raise InvalidObservable(
            f"{show(value)} has the host {text!r}, which browsers read as an IPv4 "
            "address in hex or number form: write the address in dotted decimal "
            "(such as 10.0.0.5)",
            value=value,
        )
    name = _canonical_host_name(text, value)
    if not single_label and "." not in name:
        raise InvalidObservable(
            f"{show(value)} has the single-label host {name!r}: write the scheme "
            f"(http://{name}/...) to look up a URL on a single-label host, or the "
            "full domain",
            value=value,
        )
    registered, is_public = registered_domain(name)
    return _Host(name, name, registered, is_public)


def _canonical_host_name(text: str, value: str) -> str:
    try:
        return canonical_domain(text)
    except InvalidObservable as exc:
        raise InvalidObservable(
            f"{show(value)} has an invalid host: {exc.message}", value=value
        ) from None


def _port_suffix(scheme: str, port: str | None, value: str) -> str:
    """Return ":port", or "" for no port, an empty port or the scheme's default."""
    if not port:
        return ""
    if not _PORT.fullmatch(port) or not 0 < int(port) <= 65535:
        raise InvalidObservable(
            f"{show(value)} has the port {port!r}: use a number from 1 to 65535",
            value=value,
        )
    number = int(port)
    if number == DEFAULT_PORTS[scheme]:
        return ""
    return f":{number}"
