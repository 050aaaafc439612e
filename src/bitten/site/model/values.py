"""One parser per kind of value that another program parses: Slurm's durations, TRES, billing weights, memory sizes
and enums; host[:port], URLs, IP addresses, DNS names; time zones; absolute paths and user names; InfiniBand GUIDs
and P_Keys.

Each kind is a plain function (text in, value out, ValueError naming the fix) and a pydantic type built on it, so the
site model rejects at validate time what slurmctld, sacctmgr, the resolver or systemd would reject later. The roles
use the same functions at play time (bitten.slurm.accounting compares limits with them).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterable
from functools import cache
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator


def suggest(value: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of ``choices``, or ''."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    if value.lower() in lowered:
        return f" (did you mean {lowered[value.lower()]!r}?)"
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.6) or \
        difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {lowered.get(close[0], close[0])!r}?)"


def _text(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):  # a tuple: no union built per call
        raise ValueError(f"{what} must be a string")
    return str(value).strip()


# --- Slurm -------------------------------------------------------------------------------------------------

_UNLIMITED = ("-1", "unlimited", "infinite")


def slurm_seconds(value: str | int | None) -> int | None:
    """A Slurm time limit in seconds (None: unlimited). Accepts the forms sbatch(1) documents: M, M:S, H:M:S, D-H,
    D-H:M, D-H:M:S (minutes and seconds below 60, hours below 24 after days), UNLIMITED, INFINITE or -1."""
    if value is None:
        return None
    text = _text(value, "a Slurm time")
    if text.lower() in _UNLIMITED:
        return None
    bad = ValueError(f"{text!r} is not a Slurm time: use minutes (30), H:M:S (01:00:00), D-H:M:S (2-00:00:00) "
                     "or UNLIMITED")
    days_text, dash, rest = text.rpartition("-") if "-" in text else ("", "", text)
    if dash and (not days_text.isdigit() or not rest):
        raise bad
    parts = rest.split(":")
    if len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise bad
    numbers = [int(p) for p in parts]
    if dash:
        hours, minutes, seconds = [*numbers, 0, 0][:3]
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ValueError(f"{text!r}: after the days, hours must be 0-23 and minutes and seconds 0-59")
        return ((int(days_text) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(numbers) == 1:
        return numbers[0] * 60
    if len(numbers) == 2:
        if numbers[1] > 59:
            raise ValueError(f"{text!r}: seconds must be 0-59 (M:S)")
        return numbers[0] * 60 + numbers[1]
    if numbers[1] > 59 or numbers[2] > 59:
        raise ValueError(f"{text!r}: minutes and seconds must be 0-59 (H:M:S)")
    return (numbers[0] * 60 + numbers[1]) * 60 + numbers[2]


def _slurm_time(value: object) -> str:
    text = _text(value, "a Slurm time")
    slurm_seconds(text)
    return text


#: a Slurm duration, kept as written (slurm.conf and sacctmgr read it)
SlurmTime = Annotated[str, BeforeValidator(_slurm_time)]

_SIZE_UNITS = {"": 1, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 ** 2, "p": 1024 ** 3}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmgtp]?)$", re.IGNORECASE)


def memory_mib(value: str | int) -> int:
    """A Slurm memory size in MiB: 512 (MiB), 4096M, 64G, 1.5T."""
    text = _text(value, "a memory size")
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a memory size: give MiB (4096) or a number with K, M, G, T or P (64G)")
    return round(float(match[1]) * _SIZE_UNITS[match[2].lower()])


def _memory(value: object) -> str:
    text = _text(value, "a memory size")
    memory_mib(text)
    return text


#: a Slurm memory size as written (4096, 64G); memory_mib() gives MiB
MemorySize = Annotated[str, BeforeValidator(_memory)]

#: TRES types sacctmgr and slurm.conf know; gres/, license/, bb/ and fs/ take a name after the slash
TRES_TYPES = ("cpu", "mem", "energy", "node", "billing", "vmem", "pages", "fs/disk")
TRES_PREFIXES = ("gres/", "license/", "bb/", "fs/", "ic/")
_TRES_NAME = re.compile(r"^[a-z0-9_.-]+(:[a-z0-9_.-]+)?$")
_SIZED_TRES = ("mem", "vmem", "fs/disk")


def tres_name(value: str) -> str:
    """A TRES name, lower-cased: cpu, mem, node, billing, gres/gpu, gres/gpu:b200, license/matlab."""
    name = value.strip().lower()
    if name in TRES_TYPES:
        return name
    for prefix in TRES_PREFIXES:
        if name.startswith(prefix) and _TRES_NAME.match(name[len(prefix):]):
            return name
    raise ValueError(f"{value!r} is not a TRES: use one of {', '.join(TRES_TYPES)} or gres/<name>[:<type>], "
                     f"license/<name>, bb/<name>" + suggest(name, [*TRES_TYPES, "gres/gpu"]))


def tres(value: str | None) -> dict[str, str]:
    """A TRES string as {name: normalised count}: 'gres/gpu=4,mem=1G' -> {'gres/gpu': '4', 'mem': '1024'}.

    Counts are whole numbers (-1 clears a limit); memory-like TRES take a size (1G) and come back in MiB.
    """
    out: dict[str, str] = {}
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"{item!r} in {value!r} is not NAME=COUNT (e.g. gres/gpu=8 or cpu=128)")
        raw_name, _, raw_count = item.partition("=")
        name = tres_name(raw_name)
        count = raw_count.strip()
        if name in out:
            raise ValueError(f"{name} appears twice in {value!r}")
        if count == "-1":
            out[name] = count
        elif name in _SIZED_TRES:
            out[name] = str(memory_mib(count))
        elif count.isdigit():
            out[name] = str(int(count))
        else:
            raise ValueError(f"{name}={count}: the count must be a whole number (or -1 to clear the limit)")
    return out


def _tres_string(value: object) -> str:
    text = _text(value, "a TRES string")
    tres(text)
    return text


#: a TRES string as written (gres/gpu=32,cpu=512); tres() gives the parsed counts
TresString = Annotated[str, BeforeValidator(_tres_string)]

_WEIGHT = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)([kmgtp]?)$", re.IGNORECASE)


def _billing_weights(value: object) -> dict[str, float | str]:
    if not isinstance(value, dict):
        raise ValueError("billing_weights must be a mapping TRES -> weight, e.g. {CPU: 1.0, GRES/gpu: 2.0}")
    out: dict[str, float | str] = {}
    seen: set[str] = set()
    for key, weight in value.items():
        name = tres_name(str(key))
        if name in seen:
            raise ValueError(f"TRES {key} is weighed twice")
        seen.add(name)
        if isinstance(weight, bool):
            raise ValueError(f"{key}: the weight must be a number")
        if isinstance(weight, int | float):
            if weight < 0:
                raise ValueError(f"{key}: the weight must not be negative")
            out[str(key)] = float(weight)
            continue
        text = str(weight).strip()
        match = _WEIGHT.match(text)
        if not match:
            raise ValueError(f"{key}: {text!r} is not a weight (a number, for memory optionally per unit: 0.25G)")
        if match[2] and name not in _SIZED_TRES:
            raise ValueError(f"{key}: a unit suffix ({match[2]}) only goes with memory-like TRES")
        out[str(key)] = text
    return out


#: TRESBillingWeights: TRES -> weight ({CPU: 1.0, Mem: "0.25G", GRES/gpu: 2.0})
BillingWeights = Annotated[dict[str, float | str], BeforeValidator(_billing_weights)]


def choices(kind: str, known: Iterable[str], *, single: bool = False) -> Callable[[object], str]:
    """A parser for a comma-separated list of Slurm keywords (one keyword with ``single``), each one of ``known``
    (case-insensitive, written back in Slurm's spelling), with a near-miss suggestion."""
    spelling = {c.lower(): c for c in known}

    def parse(value: object) -> str:
        text = _text(value, kind)
        items = [text] if single else [i.strip() for i in text.split(",")]
        out = []
        for item in items:
            if item.lower() not in spelling:
                raise ValueError(f"{item!r} is not a {kind}{suggest(item, spelling.values())}; known: "
                                 + ", ".join(spelling.values()))
            out.append(spelling[item.lower()])
        if len(set(out)) != len(out):
            raise ValueError(f"{text!r} names a {kind} twice")
        return ",".join(out)

    return parse


#: QoS flags (sacctmgr(1) Flags)
QOS_FLAGS = ("DenyOnLimit", "EnforceUsageThreshold", "NoDecay", "NoReserve", "OverPartQOS", "PartitionMaxNodes",
             "PartitionMinNodes", "PartitionTimeLimit", "Relative", "RequiresReservation", "UsageFactorSafe")


def _qos_flag(value: object) -> str:
    text = _text(value, "a QoS flag")
    for flag in QOS_FLAGS:
        if flag.lower() == text.lower():
            return flag
    raise ValueError(f"{text!r} is not a QoS flag" + suggest(text, QOS_FLAGS) + f"; known: {', '.join(QOS_FLAGS)}")


QosFlag = Annotated[str, BeforeValidator(_qos_flag)]

ProctrackType = Annotated[str, BeforeValidator(choices(
    "ProctrackType", ("proctrack/cgroup", "proctrack/linuxproc", "proctrack/pgid"), single=True))]
TaskPlugin = Annotated[str, BeforeValidator(choices("TaskPlugin", ("task/affinity", "task/cgroup", "task/none")))]
HealthCheckNodeState = Annotated[str, BeforeValidator(choices(
    "HealthCheckNodeState", ("ALLOC", "ANY", "CYCLE", "IDLE", "MIXED", "NONDRAINED_IDLE")))]
#: SelectTypeParameters for select/cons_tres: one resource kind and optional modifiers
SELECT_RESOURCES = ("CR_CPU", "CR_CPU_Memory", "CR_Core", "CR_Core_Memory", "CR_Socket", "CR_Socket_Memory")
SELECT_MODIFIERS = ("CR_CORE_DEFAULT_DIST_BLOCK", "CR_LLN", "CR_ONE_TASK_PER_CORE", "CR_Pack_Nodes",
                    "LL_SHARED_GRES", "MULTIPLE_SHARING_GRES_PJ", "ENFORCE_BINDING_GRES",
                    "ONE_TASK_PER_SHARING_GRES")


def _select_parameters(value: object) -> str:
    text = _select_choices(value)
    resources = [item for item in text.split(",") if item in SELECT_RESOURCES]
    if len(resources) != 1:
        raise ValueError(f"{text!r}: SelectTypeParameters needs exactly one of {', '.join(SELECT_RESOURCES)}")
    return text


_select_choices = choices("SelectTypeParameters", (*SELECT_RESOURCES, *SELECT_MODIFIERS))
SelectTypeParameters = Annotated[str, BeforeValidator(_select_parameters)]

_CONF_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _conf_lines(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of Key -> value")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not _CONF_KEY.match(str(key)):
            raise ValueError(f"{key!r} is not a Slurm configuration key (letters and digits, e.g. PurgeJobAfter)")
        text = str(item).strip() if not isinstance(item, bool) else ("YES" if item else "NO")
        if not text or "\n" in text or "#" in text:
            raise ValueError(f"{key}: the value must be one line without '#' (got {text!r})")
        out[str(key)] = text
    return out


#: extra lines of a Slurm configuration file, Key -> value (each one line)
ConfLines = Annotated[dict[str, str], BeforeValidator(_conf_lines)]

_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def _user_name(value: object) -> str:
    text = _text(value, "a user name")
    if not _USER.match(text):
        raise ValueError(f"{text!r} is not a user name (lower-case letters, digits, '_' and '-', at most 32, "
                         "starting with a letter or '_')")
    return text


UserName = Annotated[str, BeforeValidator(_user_name)]


# --- network -----------------------------------------------------------------------------------------------

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def dns_name(value: str, *, what: str = "a DNS name") -> str:
    """A DNS name (RFC 1123 labels of letters, digits and '-', at most 253 characters), lower-cased."""
    text = value.strip().rstrip(".")
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL.match(label) for label in labels) or text.isdigit() \
            or labels[-1].isdigit():
        raise ValueError(f"{value!r} is not {what} (labels of letters, digits and '-', separated by dots)")
    return text.lower()


def _domain(value: object) -> str:
    text = _text(value, "a domain")
    name = dns_name(text, what="a DNS domain")
    if "." not in name:
        raise ValueError(f"{text!r} is not a DNS domain: give the site's domain with at least two labels, "
                         "e.g. bitten.sdu.dk")
    return name


DomainName = Annotated[str, BeforeValidator(_domain)]


_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")


def host(value: str) -> str:
    """An IP address or a DNS name (IPv6 without brackets)."""
    text = value.strip()
    if _IPV4.match(text):  # the common case, without ipaddress's parser
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if re.fullmatch(r"[\d.]+", text):
        raise ValueError(f"{value!r} is not an IPv4 address (four numbers 0-255, e.g. 10.10.1.1)")
    return dns_name(text, what="a host name or IP address")


def _host(value: object) -> str:
    return host(_text(value, "a host"))


def fast_ipv4(value: object) -> object:
    """A dotted IPv4 address as IPv4Address (built from its number, faster than parsing); anything else unchanged,
    for pydantic's own IPv4Address validation and message."""
    if isinstance(value, str) and _IPV4.match(value):
        a, b, c, d = value.split(".")
        return ipaddress.IPv4Address((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d))
    return value


#: an IPv4 address (pydantic's validation and messages, a faster path for the common dotted form)
IPv4 = Annotated[ipaddress.IPv4Address, BeforeValidator(fast_ipv4)]

#: an IP address or DNS name
Host = Annotated[str, BeforeValidator(_host)]


def host_port(value: str) -> tuple[str, int | None]:
    """host, [v6]:port or host:port -> (host, port or None)."""
    text = value.strip()
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not [IPv6]:port")
        ipaddress.IPv6Address(inside)
        return inside, _port(rest[1:], value) if rest else None
    if text.count(":") == 1:
        name, _, port = text.partition(":")
        return host(name), _port(port, value)
    return host(text), None


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{whole!r}: the port must be a number 1-65535 (got {text!r})")
    return int(text)


def _host_port(value: object) -> str:
    text = _text(value, "host[:port]")
    host_port(text)
    return text


#: host or host:port ([v6]:port), kept as written
HostPort = Annotated[str, BeforeValidator(_host_port)]


def url(value: str, *, schemes: tuple[str, ...] = ("https", "http"), path: bool = True) -> str:
    """A URL with one of ``schemes``, a valid host and port (and, with path=False, nothing after them)."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in schemes:
        kind = "an http(s) URL" if set(schemes) == {"http", "https"} else f"a URL with scheme {' or '.join(schemes)}"
        raise ValueError(f"{value!r} is not {kind} (e.g. {schemes[0]}://host)")
    if not parts.netloc or "@" in parts.netloc:
        raise ValueError(f"{value!r} has no host (expected {parts.scheme}://host[:port]/...)")
    host_port(parts.netloc)
    if not path and (parts.path not in ("", "/") or parts.query or parts.fragment):
        raise ValueError(f"{value!r}: give only {parts.scheme}://host[:port], without a path")
    if any(c.isspace() for c in text):
        raise ValueError(f"{value!r} contains white space")
    return text


def url_type(schemes: tuple[str, ...] = ("https", "http"), *, path: bool = True) -> BeforeValidator:
    def parse(value: object) -> str:
        return url(_text(value, "a URL"), schemes=schemes, path=path)

    return BeforeValidator(parse)


#: an http(s) URL
HttpUrl = Annotated[str, url_type()]
#: scheme://host[:port] of an http(s) service, nothing after it
ServiceUrl = Annotated[str, url_type(path=False)]


# --- the OS ------------------------------------------------------------------------------------------------


@cache
def time_zones() -> frozenset[str]:
    """The time zones of the tz database this system has (zoneinfo's search path, then the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: object) -> str:
    text = _text(value, "a time zone")
    if text not in time_zones():
        raise ValueError(f"{text!r} is not a time zone of the tz database (e.g. Europe/Copenhagen or UTC)"
                         + suggest(text, time_zones()))
    return text


TimeZone = Annotated[str, BeforeValidator(_time_zone)]


def _absolute_path(value: object) -> str:
    text = _text(value, "a path")
    if not text.startswith("/") or any(c.isspace() for c in text) or "\0" in text:
        raise ValueError(f"{text!r} is not an absolute path without spaces (e.g. /usr/local/sbin/bitten-gpu-health)")
    return text


AbsolutePath = Annotated[str, BeforeValidator(_absolute_path)]


# --- InfiniBand --------------------------------------------------------------------------------------------

_GUID = re.compile(r"^0x[0-9a-f]{16}$")


def guid(value: object) -> str:
    """An InfiniBand node, port or switch GUID as OpenSM and the diagnostics write it: 0x and 16 lower-case hex
    digits."""
    text = _text(value, "a GUID").lower()
    if not _GUID.match(text):
        raise ValueError(f"{text!r} is not an InfiniBand GUID (expected 0x and 16 hex digits, e.g. "
                         "0xb83fd20300a1b2c4, as ibstat -p or ibswitches print it)")
    return text


Guid = Annotated[str, BeforeValidator(guid)]


def pkey(value: object) -> int:
    """A tenant partition's P_Key (OpenSM partitions.conf): 0x0001-0x7ffe, hex or decimal."""
    text = _text(value, "a P_Key").lower()
    try:
        number = int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a P_Key (expected hex such as 0x0002)") from None
    if not 0x0001 <= number <= 0x7FFE:
        raise ValueError(f"P_Key {text} is out of range: tenant partitions use 0x0001-0x7ffe (15 bits; 0x7fff is "
                         "the default partition)")
    return number


PKey = Annotated[int, BeforeValidator(pkey)]
