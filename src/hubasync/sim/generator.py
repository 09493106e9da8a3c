"""Deterministic, realistic-looking hub events, built straight as JSON bytes (fast)."""

from __future__ import annotations

import copy
import json
import random
import socket
from typing import List, Optional, Sequence, Tuple

from .times import DayClock

_FEEDS = (
    "abuse.ch feodo tracker",
    "abuse.ch urlhaus",
    "shadowserver scan ssl",
    "shadowserver scan rdp",
    "shadowserver sinkhole",
    "phishtank",
    "openphish",
    "spamhaus drop",
    "arctic honeypot",
    "cert.fi autoreporter",
    "dshield top attackers",
)
# (category, type, extras): extras name the optional attributes an event of the type carries.
_KINDS = (
    ("suspected compromise", "malware infection", ("port", "malware")),
    ("suspected compromise", "botnet drone", ("port", "malware", "domain name")),
    ("potential threats", "phishing", ("url", "domain name")),
    ("potential threats", "scanner", ("port", "protocol")),
    ("public exposure", "open service", ("port", "protocol", "service")),
    ("known vulnerabilities", "vulnerable service", ("port", "service", "cve")),
)
_AS_NAMES = (
    ("3249", "Telia Finland Oyj"),
    ("1759", "Telia Company AB"),
    ("719", "Elisa Oyj"),
    ("16086", "DNA Oyj"),
    ("3320", "Deutsche Telekom AG"),
    ("24940", "Hetzner Online GmbH"),
    ("197540", "netcup GmbH – Müller Straße"),
    ("12389", "ПАО «Ростелеком»"),
    ("4134", "中国电信 Chinanet"),
    ("16509", "Amazon.com, Inc."),
    ("14061", "DigitalOcean, LLC"),
    ("51167", "Contabo GmbH – Ü-Netz"),
)
_COUNTRIES = ("FI", "SE", "DE", "RU", "CN", "US", "NL", "FR", "EE", "NO")
_MALWARE = ("emotet", "qakbot", "trickbot", "mirai", "conficker", "dridex", "icedid", "asyncrat")
_SERVICES = (("3389", "rdp"), ("445", "smb"), ("23", "telnet"), ("161", "snmp"),
             ("443", "https"), ("22", "ssh"), ("11211", "memcached"), ("9200", "elasticsearch"))
_PROTOCOLS = ("tcp", "udp")
_CVES = ("CVE-2021-44228", "CVE-2023-4966", "CVE-2019-19781", "CVE-2020-0796", "CVE-2024-3400")
_SEVERITIES = ("low", "medium", "high")
_WORDS = ("secure", "login", "bank", "update", "mail", "cloud", "verify", "account", "pay",
          "portal", "office", "support", "track", "parcel", "wallet", "auth")
_TLDS = ("com", "net", "fi", "ru", "info", "xyz", "top", "org")
# Descriptions with characters that trip naive JSON splitters: quotes, backslashes, brackets,
# braces, commas, escapes, multi-byte and astral-plane UTF-8.
_DESCRIPTIONS = (
    "",
    "Host seen contacting a known command and control server.",
    'Matched rule "C2 beacon {interval: 60s}" [strict], see ticket #42',
    "Path C:\\Users\\Public\\update.exe dropped, then }] ran",
    "Käyttäjä ilmoitti epäilyttävästä viestistä; läheteään eteenpäin",
    "Подозрительная активность, сканирование портов",
    "Line one\nLine two\ttabbed, \"quoted\" \\ done",
    "Reported via web form 🐍 (snake emoji) and ✓ verified",
    "JSON-looking text: {\"a\": [1, 2, {\"b\": \"]\"}]}",
)
_PAD_SOURCE = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation "
)


_TEMPLATE = (
    b'{"observation time":"%s%s","source time":"%s%s",%s,"ip":"%s",%s,'
    b'"uuid":"%s-%s-%s-%s-%s","description":"%s"}'
)


def _j(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


class EventGenerator:
    """Makes events from a seeded ``random.Random``: the same seed gives the same events."""

    def __init__(self, seed: int, event_size: Optional[int] = None) -> None:
        self._rng = random.Random(seed)
        self._event_size = event_size
        self._clock = DayClock()
        self._feeds = [_j(f) for f in _FEEDS]
        self._kinds = [(_j(c), _j(t), set(x)) for c, t, x in _KINDS]
        self._as = [(_j(a), _j(n)) for a, n in _AS_NAMES]
        self._cc = [_j(c) for c in _COUNTRIES]
        self._malware = [_j(m) for m in _MALWARE]
        self._services = [(_j(p), _j(s)) for p, s in _SERVICES]
        self._protocols = [_j(p) for p in _PROTOCOLS]
        self._cves = [_j(c) for c in _CVES]
        self._severities = [_j(s) for s in _SEVERITIES]
        self._descriptions = [_j(d)[1:-1].encode() for d in _DESCRIPTIONS]
        pad = _PAD_SOURCE * (1 + (event_size or 0) // len(_PAD_SOURCE))
        self._pad = (pad * 2).encode()
        self._pool = [(h.encode(), t.encode()) for h, t in (self._middle() for _ in range(4096))]

    def fork(self, seed: int) -> EventGenerator:
        """A generator drawing from its own ``seed`` but sharing this one's tables and attribute
        pool (cheap: many shares' events differ without a pool each)."""
        twin = copy.copy(self)
        twin._rng = random.Random(seed)
        return twin

    def _domain(self) -> str:
        w = _WORDS
        r = self._rng.random
        return f"{w[int(r() * 16)]}-{w[int(r() * 16)]}{int(r() * 100)}.{_TLDS[int(r() * 8)]}"

    def _middle(self) -> Tuple[str, str]:
        """The attributes between the times and the uuid, except ``ip``: (before ip, after ip)."""
        r = self._rng.random
        cat, typ, extras = self._kinds[int(r() * 6)]
        asn, asname = self._as[int(r() * 12)]
        head = f'"feed":{self._feeds[int(r() * 11)]},"category":{cat},"type":{typ}'
        parts = ['"asn":', asn, ',"as name":', asname, ',"cc":', self._cc[int(r() * 10)]]
        if "port" in extras:
            if "service" in extras:
                port, service = self._services[int(r() * 8)]
                parts += (',"port":', port, ',"service":', service)
            else:
                parts += (',"port":"', str(1024 + int(r() * 64000)), '"')
        if "protocol" in extras:
            parts += (',"protocol":', self._protocols[int(r() * 2)])
        if "malware" in extras:
            parts += (',"malware":', self._malware[int(r() * 8)])
        if "cve" in extras:
            parts += (',"cve":', self._cves[int(r() * 5)])
        if "domain name" in extras:
            n = 1 + int(r() * 3)
            names = [self._domain() for _ in range(n)]
            if n == 1:
                parts += (',"domain name":"', names[0], '"')
            else:
                parts += (',"domain name":["', '","'.join(names), '"]')
            if "url" in extras:
                parts += (',"url":"https://', names[0], "/", _WORDS[int(r() * 16)], '.php"')
        parts += (',"severity":', self._severities[int(r() * 3)])
        return head, "".join(parts)

    def batch(self, count: int, t_from: int, t_to: int) -> Tuple[List[bytes], List[int]]:
        """``count`` events with observation times rising from ``t_from`` to ``t_to`` (with jitter).

        Returns the encoded events (compact UTF-8 JSON) and their observation times (epoch s).
        Insertion order is not quite time order: each event is up to 6 hours older than its
        slot, as events arrive late at a real hub. The attributes other than the times, ``ip``
        and ``uuid`` come from a pool of 4096 combinations drawn from the same seed.
        """
        rng = self._rng
        r = rng.random
        bits = rng.getrandbits
        span = max(0, t_to - t_from)
        jitter = min(6 * 3600, span)
        base = t_from + jitter
        span -= jitter
        days = self._clock.days_between(t_from - 86400, t_to)
        clocks = self._clock.clocks
        pool = self._pool
        descriptions = self._descriptions
        blobs: List[bytes] = []
        times: List[int] = []
        size = self._event_size
        pad = self._pad
        inet = socket.inet_ntoa
        append_blob = blobs.append
        append_time = times.append
        template = _TEMPLATE
        for i in range(count):
            t = base + (span * (i + 1)) // count - int(r() * jitter)
            st = t - int(r() * 86400)
            head, tail = pool[bits(12)]
            u = bits(128).to_bytes(16, "big").hex().encode()
            blob = template % (
                days[t // 86400], clocks[t % 86400], days[st // 86400], clocks[st % 86400],
                head, inet(bits(32).to_bytes(4, "big")).encode(), tail,
                u[:8], u[8:12], u[12:16], u[16:20], u[20:], descriptions[int(r() * 9)],
            )
            if size is not None and size > len(blob):
                start = int(r() * len(_PAD_SOURCE))
                blob = blob[:-2] + pad[start : start + size - len(blob)] + b'"}'
            append_blob(blob)
            append_time(t)
        return blobs, times


def generate(seed: int, count: int, now: int, days: int = 30,
             event_size: Optional[int] = None) -> Tuple[EventGenerator, List[bytes], List[int]]:
    """``count`` events over the ``days`` before ``now``; also returns the generator to continue."""
    gen = EventGenerator(seed, event_size)
    blobs, times = gen.batch(count, now - days * 86400, now)
    return gen, blobs, times


def keys_of(blobs: Sequence[bytes]) -> List[str]:
    """Attribute names used by the given events (a debugging aid for docs and tests)."""
    seen: dict[str, None] = {}
    for blob in blobs:
        for key in json.loads(blob):
            seen.setdefault(key, None)
    return list(seen)
