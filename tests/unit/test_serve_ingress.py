"""Where requests enter: the pure ingress plan, and the CLI's errors before Ray starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from ray_backend.serving.ingress import (
    THROUGHPUT_ENV,
    IngressError,
    IngressPlan,
    direct_ingress_env,
    plan_ingress,
    ray_has_direct_ingress,
)


def _free() -> int:
    return 41234


@pytest.mark.parametrize(
    ("choice", "replicas", "starts_ray", "expected"),
    [
        ("auto", 1, True, IngressPlan("direct", 41234, (8000,))),  # the CLI default: the replica answers
        ("auto", 3, True, IngressPlan("proxy", 8000)),  # several replicas: the proxy spreads the load
        ("auto", None, True, IngressPlan("proxy", 8000)),  # autoscaling: a varying count
        ("auto", 1, False, IngressPlan("proxy", 8000)),  # a joined cluster decides for itself
        ("proxy", 1, True, IngressPlan("proxy", 8000)),
        ("direct", 3, True, IngressPlan("direct", 41234, (8000, 8001, 8002))),
    ],
)
def test_plan(choice: str, replicas: int | None, starts_ray: bool, expected: IngressPlan) -> None:
    plan = plan_ingress(choice, port=8000, replicas=replicas, starts_ray=starts_ray, free_port=_free)  # type: ignore[arg-type]
    assert plan == expected
    assert plan.port == 8000  # clients always use --port


def test_direct_env_gives_the_replicas_exactly_their_ports() -> None:
    plan = plan_ingress("direct", port=9000, replicas=2, starts_ray=True, proxy_port=9100, free_port=_free)
    assert plan.proxy_port == 9100
    env = plan.env()
    # Ray's allocator hands out range(MIN, MAX): MAX is exclusive
    first, stop = int(env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"]), int(env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"])
    assert list(range(first, stop)) == [9000, 9001]
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1"
    assert env == direct_ingress_env(9000, 2)
    assert plan_ingress("proxy", port=9000, replicas=2, starts_ray=True, free_port=_free).env() == {}


def test_direct_env_turns_on_rays_throughput_preset_unless_the_user_set_it() -> None:
    plan = plan_ingress("direct", port=9000, replicas=1, starts_ray=True, proxy_port=9100, free_port=_free)
    assert THROUGHPUT_ENV.items() <= plan.env().items()
    assert THROUGHPUT_ENV.items() <= plan.env({"PATH": "/bin"}).items()
    mine = plan.env({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"})
    assert "RAY_SERVE_THROUGHPUT_OPTIMIZED" not in mine  # os.environ.update(...) keeps the user's 0
    assert mine["RAY_SERVE_LOG_TO_STDERR"] == "1"
    assert mine["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] == "9000"  # the ports are always ours


def test_rays_serve_constants_read_the_preset_as_meant() -> None:
    """The installed Ray's reading of :data:`THROUGHPUT_ENV` (fails if Ray renames or drops the preset)."""
    code = (
        "import json; from ray.serve._private import constants as c; print(json.dumps("
        "[c.RAY_SERVE_THROUGHPUT_OPTIMIZED, c.RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD, c.RAY_SERVE_LOG_TO_STDERR]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
    on = subprocess.run([sys.executable, "-c", code], env={**env, **THROUGHPUT_ENV}, capture_output=True, text=True)
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert on.returncode == off.returncode == 0, on.stderr + off.stderr
    assert json.loads(on.stdout) == [True, False, True]  # user code on the replica's loop; logs still on stderr
    assert json.loads(off.stdout) == [False, True, True]


def test_an_older_ray_keeps_the_proxy() -> None:
    assert [ray_has_direct_ingress(v) for v in ("2.50.1", "2.59.0", "2.60.0", "2.61.0rc1", "3.0.0.dev0")] == [
        False,
        False,
        True,
        True,
        True,
    ]
    old = {"port": 8000, "replicas": 1, "starts_ray": True, "free_port": _free, "direct_supported": False}
    assert plan_ingress("auto", **old) == IngressPlan("proxy", 8000)
    with pytest.raises(IngressError, match="needs Ray >= 2.60"):
        plan_ingress("direct", **old)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"choice": "direct", "replicas": 1, "starts_ray": False}, "cluster's setting"),
        ({"choice": "direct", "replicas": None, "starts_ray": True}, "fixed replica count"),
        ({"choice": "sideways", "replicas": 1, "starts_ray": True}, "auto, proxy or direct"),
        ({"choice": "direct", "replicas": 2, "starts_ray": True, "port": 65535}, "1..65535"),
        ({"choice": "direct", "replicas": 2, "starts_ray": True, "proxy_port": 8001}, "replicas' ports"),
    ],
)
def test_bad_ingress_is_a_clear_error(kwargs: dict, message: str) -> None:
    kwargs = {"port": 8000, "free_port": _free, **kwargs}
    with pytest.raises(IngressError, match=message):
        plan_ingress(kwargs.pop("choice"), **kwargs)


def test_cli_rejects_bad_ingress_before_ray_starts(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray.serve")
    from ray_backend import serve as serve_module

    code = serve_module.main(["--ingress", "direct", "--address", "ray://nowhere:1"], prog="instructor serve")
    assert code == 2
    assert "instructor serve: error: --ingress direct needs a Ray started by this command" in capsys.readouterr().err

    with socket.socket() as taken:  # the replica's port is taken: exit 2 naming it, before Ray starts
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_module.main(["--port", str(port)], prog="instructor serve") == 2
    err = capsys.readouterr().err
    assert "error: in use:" in err and f"--port {port}" in err
