"""The container settings parsers (Kura's fields -> Docker create arguments), good and bad input."""

from __future__ import annotations

import json

import pytest

from orchestrator.containers.parsers import (
    Port,
    SettingError,
    pair_ports,
    parse_cpus,
    parse_devices,
    parse_digest_pin,
    parse_entrypoint,
    parse_env,
    parse_external_ports,
    parse_gpus,
    parse_internal_ports,
    parse_logger_parameters,
    parse_logger_type,
    parse_memory,
    parse_network_mode,
    parse_runtime,
    parse_volumes,
)
from orchestrator.containers.spec import ContainerSpec, SpecErrors, build_spec

# --- one table per parser: (input, expected) and (bad input, words the message must contain) -----------------

GOOD = {
    parse_internal_ports: [
        ("", []),
        ("80", [Port(80, "tcp")]),
        ("80, 53:udp, 9:sctp", [Port(80, "tcp"), Port(53, "udp"), Port(9, "sctp")]),
        ("443:TCP", [Port(443, "tcp")]),
        ("53/udp", [Port(53, "udp")]),
        ("80,,81,", [Port(80), Port(81)]),
        ("65535\n1", [Port(65535), Port(1)]),
    ],
    parse_external_ports: [
        ("", []),
        ("8080, 5353", [(8080, None), (5353, None)]),
        ("5353:udp", [(5353, "udp")]),
    ],
    parse_env: [
        ("", []),
        ("A=1", ["A=1"]),
        ("A=1, B=2", ["A=1", "B=2"]),
        # Kura's flaw fixed: a comma only starts a new variable when NAME= follows it.
        ("LIST=a,b,c,B=2", ["LIST=a,b,c", "B=2"]),
        ("GREETING=hello, world", ["GREETING=hello, world"]),
        ("URL=postgres://u:p@h/db?x=1", ["URL=postgres://u:p@h/db?x=1"]),
        ("EMPTY=", ["EMPTY="]),
        # One per line: commas (even ", NAME=") are part of the value.
        ("A=1,B=2\nC=x, y\n\n# comment\nD=", ["A=1,B=2", "C=x, y", "D="]),
        ("my.var=1,my-var=2,_x=3", ["my.var=1", "my-var=2", "_x=3"]),
        ("A=1,", ["A=1"]),
    ],
    parse_entrypoint: [
        ("", []),
        ("./test.sh,-v,-d,--human-readable", ["./test.sh", "-v", "-d", "--human-readable"]),
        (" sleep , 100 ", ["sleep", "100"]),
        ("sh\n-c\necho a,b; sleep 5\n", ["sh", "-c", "echo a,b; sleep 5"]),
    ],
    parse_memory: [
        ("", None),
        ("6m", 6 * 1024**2),
        ("512m", 512 * 1024**2),
        ("1g", 1024**3),
        ("1G", 1024**3),
        ("1gb", 1024**3),
        ("7000000", 7_000_000),
        ("7000000b", 7_000_000),
        ("8192k", 8 * 1024**2),
    ],
    parse_cpus: [
        ("", None),
        ("1", 1_000_000_000),
        ("1.5", 1_500_000_000),
        ("0.01", 10_000_000),
        (".5", 500_000_000),
        ("2.", 2_000_000_000),
    ],
    parse_gpus: [("", None), ("all", -1), ("ALL", -1), ("2", 2)],
    parse_volumes: [
        ("", []),
        ("/srv/data:/data", ["/srv/data:/data"]),
        ("/srv/a:/a, /etc/app:/etc/app:ro", ["/srv/a:/a", "/etc/app:/etc/app:ro"]),
        ("appdata:/var/lib/app:RW\n/x:/y", ["appdata:/var/lib/app:rw", "/x:/y"]),
    ],
    parse_devices: [
        ("", []),
        ("/dev/ttyUSB0, /dev/gpiomem", ["/dev/ttyUSB0", "/dev/gpiomem"]),
        ("/dev/video0:/dev/video1:r", ["/dev/video0:/dev/video1:r"]),
        ("/dev/video0:/dev/video0", ["/dev/video0:/dev/video0"]),
        ("/dev/ttyS0:rw", ["/dev/ttyS0:/dev/ttyS0:rw"]),
    ],
    parse_runtime: [("", None), ("nvidia", "nvidia"), ("io.containerd.runc.v2", "io.containerd.runc.v2")],
    parse_network_mode: [
        ("", None),
        ("bridge", "bridge"),
        ("none", "none"),
        ("host", "host"),
        ("container:vpn", "container:vpn"),
        ("container:/vpn", "container:vpn"),
        ("container:0123456789ab", "container:0123456789ab"),
    ],
    parse_logger_type: [("", "DEFAULT"), ("JSON_FILE", "JSON_FILE"), ("json-file", "JSON_FILE"), ("loki", "LOKI")],
    parse_logger_parameters: [
        ("", {}),
        ("max-size=10m, max-file=3", {"max-size": "10m", "max-file": "3"}),
        # Docker's "labels" option is itself comma-separated; Kura would cut it.
        ("labels=location,site,tag=gw", {"labels": "location,site", "tag": "gw"}),
        ("max-size=10m\nmax-file=3", {"max-size": "10m", "max-file": "3"}),
    ],
    parse_digest_pin: [
        ("", ""),
        ("sha256:" + "a" * 64, "sha256:" + "a" * 64),
        ("SHA256:" + "A" * 64, "sha256:" + "a" * 64),
        ("reg.example/app@sha256:" + "b" * 64, "sha256:" + "b" * 64),
    ],
}

BAD = {
    parse_internal_ports: [
        ("http", "not a port number"),
        ("0", "out of range"),
        ("65536", "out of range"),
        ("80:quic", "tcp, udp or sctp"),
        ("-80", "not a port number"),
        ("80-90", "not a port number"),
        ("8 0", "not a port number"),
        (",".join(["80"] * 201), "At most"),
        ("80\x00", "NUL"),
    ],
    parse_external_ports: [("8080:icmp", "tcp, udp or sctp"), ("99999", "out of range"), ("x", "not a port number")],
    parse_env: [
        ("JUSTANAME", "not NAME=value"),
        ("=value", "not a variable name"),
        ("1ABC=x", "not a variable name"),
        ("MY VAR=x", "not a variable name"),
        ("A=1,A=2", "set twice"),
        ("A=1\nA=2", "set twice"),
        ("A=1\nnot a pair", "not NAME=value"),
    ],
    parse_entrypoint: [("\n".join(["x"] * 201), "At most"), ("sh\x00", "NUL")],
    parse_memory: [
        ("lots", "not a memory size"),
        ("512 MiB", "not a memory size"),
        ("1.5g", "not a memory size"),
        ("-1m", "not a memory size"),
        ("5m", "at least 6m"),
        ("0", "at least 6m"),
        ("1000", "at least 6m"),
        ("99999999999999g", "too large"),
        ("12t", "not a memory size"),
    ],
    parse_cpus: [
        ("1,5", "Use a dot"),
        ("one", "not a number of CPUs"),
        ("-1", "not a number of CPUs"),
        ("0", "at least 0.01"),
        ("0.001", "at least 0.01"),
        ("5000", "At most"),
        ("1.0000000001", "9 decimals"),
        ("1e3", "not a number of CPUs"),
    ],
    parse_gpus: [
        ("0", "'all' or a whole number"),
        ("some", "'all' or a whole number"),
        ("-1", "whole number"),
        ("1.5", "whole number"),
        ("2000", "At most"),
    ],
    parse_volumes: [
        ("/srv/data", "not gateway-path:container-path"),
        ("/srv/data:data", "absolute"),
        ("/srv/data:/", "absolute and not /"),
        ("./data:/data", "neither an absolute path"),
        ("/a:/b:rx", "ro (read-only) or rw"),
        ("/a:/b:ro:extra", "not gateway-path:container-path"),
        ("/a:/data, /b:/data", "Two volumes"),
        (":/data", "not gateway-path:container-path"),
    ],
    parse_devices: [
        ("ttyUSB0", "absolute device path"),
        ("/dev/a:/dev/b:rwx", "permissions"),
        ("/dev/a:/dev/b:rr", "permissions"),
        ("/dev/a:/dev/b:rw:extra", "not /dev/NAME"),
        ("/dev/a:", "not /dev/NAME"),
    ],
    parse_runtime: [("nvidia runtime", "not a runtime name"), ("-x", "not a runtime name"), ("a/b", "not a runtime")],
    parse_network_mode: [
        ("Host", "lowercase: write host"),
        ("BRIDGE", "lowercase"),
        ("my-net", "bridge, none, host or container:NAME"),
        ("container:", "name or ID of another container"),
        ("container:bad name", "name or ID of another container"),
        ("default", "bridge, none, host"),
    ],
    parse_logger_type: [("DB", "Choose one of"), ("splunk2", "Choose one of")],
    parse_logger_parameters: [
        ("max-size", "not option=value"),
        ("=10m", "not a logging option name"),
        ("max size=10m", "not a logging option name"),
        ("tag=a,tag=b", "set twice"),
    ],
    parse_digest_pin: [
        ("sha256:abc", "64 hexadecimal"),
        ("md5:" + "a" * 32, "64 hexadecimal"),
        ("a" * 64, "64 hexadecimal"),
        ("sha256:" + "g" * 64, "64 hexadecimal"),
    ],
}


def _cases(table):
    return [
        pytest.param(parser, value, expected, id=f"{parser.__name__}-{value[:30]!r}")
        for parser, rows in table.items()
        for value, expected in rows
    ]


@pytest.mark.parametrize(("parser", "value", "expected"), _cases(GOOD))
def test_it_parses_good_input(parser, value, expected):
    assert parser(value) == expected


@pytest.mark.parametrize(("parser", "value", "words"), _cases(BAD))
def test_it_refuses_bad_input_with_a_message_that_says_what_to_do(parser, value, words):
    with pytest.raises(SettingError) as caught:
        parser(value)
    assert words in str(caught.value)


def test_every_parser_has_good_and_bad_cases():
    assert set(GOOD) == set(BAD)


def test_none_means_blank_for_every_parser():
    for parser in GOOD:
        assert parser(None) in ([], None, {}, "", "DEFAULT")


def test_a_network_mode_cannot_name_the_container_itself():
    with pytest.raises(SettingError, match="its own network"):
        parse_network_mode("container:web", "web")
    assert parse_network_mode("container:vpn", "web") == "container:vpn"


def test_the_none_logger_takes_no_parameters():
    with pytest.raises(SettingError, match="takes no options"):
        parse_logger_parameters("max-size=1m", "NONE")


# --- ports are paired by position ----------------------------------------------------------------------------


def test_ports_pair_by_position_and_keep_the_internal_protocol():
    bindings = pair_ports(parse_internal_ports("80, 53:udp"), parse_external_ports("8080, 5353"))
    assert bindings == {"80/tcp": [8080], "53/udp": [5353]}


def test_one_internal_port_may_be_published_twice():
    assert pair_ports([Port(80), Port(80)], [(8080, None), (8081, None)]) == {"80/tcp": [8080, 8081]}


@pytest.mark.parametrize(
    ("internal", "external", "words"),
    [
        ("80, 443", "8080", "2 internal, 1 external"),
        ("", "8080", "0 internal, 1 external"),
        ("80", "", "1 internal, 0 external"),
        ("53:udp", "5353:tcp", "put the protocol on the internal port"),
        ("80, 81", "8080, 8080", "used twice"),
    ],
)
def test_bad_port_pairs_are_refused(internal, external, words):
    with pytest.raises(SettingError, match=words):
        pair_ports(parse_internal_ports(internal), parse_external_ports(external))


# --- the whole spec --------------------------------------------------------------------------------------------

FULL = {
    "internal_ports": "80, 53:udp",
    "external_ports": "8080, 5353",
    "privileged": True,
    "env": "A=1,2\nB=x",
    "entrypoint": "sh,-c,sleep 100",
    "memory": "64m",
    "cpus": "0.5",
    "gpus": "all",
    "volumes": "/srv/a:/a:ro",
    "devices": "/dev/null",
    "runtime": "runc",
    "network_mode": "none",
    "logger_type": "JSON_FILE",
    "logger_parameters": "max-size=1m",
    "restart_on_failure": True,
}


def test_a_full_spec_becomes_docker_create_arguments():
    kwargs = build_spec(FULL, name="web").create_kwargs()
    assert kwargs == {
        "config": {
            "ports": [(80, "tcp"), (53, "udp")],
            "environment": ["A=1,2", "B=x"],
            "entrypoint": ["sh", "-c", "sleep 100"],
        },
        "host_config": {
            "port_bindings": {"80/tcp": [8080], "53/udp": [5353]},
            "privileged": True,
            "binds": ["/srv/a:/a:ro"],
            "devices": ["/dev/null"],
            "mem_limit": 64 * 1024**2,
            "nano_cpus": 500_000_000,
            "device_requests": [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}],
            "runtime": "runc",
            "network_mode": "none",
            "log_config": {"type": "json-file", "config": {"max-size": "1m"}},
            "restart_policy": {"Name": "unless-stopped"},
        },
    }
    json.dumps(kwargs)  # the settings hash needs it serialisable


def test_kura_defaults_ask_docker_for_nothing_special():
    kwargs = build_spec({"logger_type": "DEFAULT"}).create_kwargs()
    assert kwargs == {"config": {}, "host_config": {}}


def test_default_logger_with_options_uses_the_daemon_driver():
    kwargs = build_spec({"logger_type": "DEFAULT", "logger_parameters": "max-size=5m"}).create_kwargs()
    assert kwargs["host_config"]["log_config"] == {"type": "", "config": {"max-size": "5m"}}


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(SpecErrors) as caught:
        build_spec({**FULL, "memory": "lots", "cpus": "x", "env": "nope", "external_ports": "8080"})
    assert set(caught.value.errors) == {"memory", "cpus", "env", "external_ports"}


@pytest.mark.parametrize(
    ("mode", "words"),
    [("host", "host mode"), ("container:vpn", "cannot publish ports")],
)
def test_published_ports_are_refused_where_docker_cannot_publish(mode, words):
    with pytest.raises(SpecErrors) as caught:
        build_spec({**FULL, "network_mode": mode})
    assert words in " ".join(caught.value.errors["network_mode"])


def test_ports_without_publishing_are_fine_in_host_mode():
    spec = build_spec({"network_mode": "host", "logger_type": "DEFAULT"})
    assert spec.create_kwargs()["host_config"] == {"network_mode": "host"}


def test_the_settings_hash_changes_with_settings_and_image_only():
    spec = build_spec(FULL)
    same = build_spec(dict(FULL))
    assert spec.settings_hash("a:1") == same.settings_hash("a:1")
    assert spec.settings_hash("a:1") != spec.settings_hash("a:2")
    assert spec.settings_hash("a:1") != build_spec({**FULL, "memory": "65m"}).settings_hash("a:1")
    assert ContainerSpec().settings_hash("a:1") != spec.settings_hash("a:1")
