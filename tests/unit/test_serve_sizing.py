"""Replica CPU sizing: the pure rule, and that the CLI, ``build_app`` and the YAML config apply it alike."""

from __future__ import annotations

from importlib.resources import files

import pytest
import yaml

from ray_backend.serving.sizing import ReplicaSizing, replica_count, size_replica


@pytest.mark.parametrize(
    ("node_cpus", "replicas", "reserved", "threads"),
    [
        (2, 1, 2.0, 2),
        (16, 4, 4.0, 4),
        (16, 3, 5.3333, 5),  # the threads never exceed the share
        (2, 3, 0.6666, 1),  # rounded down: 3 x 0.6667 = 2.0001 would not fit on the node
        (4, 8, 0.5, 1),  # more replicas than CPUs: fractional reservations, one thread each
        (0, 1, 0.0, 1),  # a node without CPUs still gets one thread
    ],
)
def test_default_cpu_replicas_share_the_node(node_cpus: float, replicas: int, reserved: float, threads: int) -> None:
    sizing = size_replica(num_cpus=None, torch_threads=None, num_gpus=0, replicas=replicas, node_cpus=node_cpus)
    assert sizing == ReplicaSizing(reserved, threads, "share", node_cpus, replicas)
    assert sizing.num_cpus * replicas <= node_cpus  # all replicas fit on the node
    assert sizing.torch_threads * replicas <= max(node_cpus, replicas)  # no oversubscribed cores


def test_explicit_values_keep_their_meaning() -> None:
    explicit = size_replica(num_cpus=3, torch_threads=None, num_gpus=0, replicas=2, node_cpus=64)
    assert (explicit.num_cpus, explicit.torch_threads, explicit.source) == (3, 3, "num_cpus")
    half = size_replica(num_cpus=0.5, torch_threads=None, num_gpus=0, replicas=2, node_cpus=64)
    assert (half.num_cpus, half.torch_threads) == (0.5, 1)
    threads = size_replica(num_cpus=None, torch_threads=7, num_gpus=0, replicas=2, node_cpus=8)
    assert (threads.num_cpus, threads.torch_threads) == (4.0, 7)
    gpu = size_replica(num_cpus=None, torch_threads=None, num_gpus=1, replicas=2, node_cpus=64)
    assert (gpu.num_cpus, gpu.torch_threads, gpu.source) == (1.0, 1, "gpu")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"replicas": 0}, "replicas must be >= 1, got 0"),
        ({"node_cpus": -1}, "node_cpus=-1"),
        ({"num_cpus": -0.5}, "num_cpus=-0.5"),
        ({"torch_threads": 0}, "torch_threads must be >= 1, got 0"),
    ],
)
def test_bad_sizing_inputs_are_named(kwargs: dict, match: str) -> None:
    args = {"num_cpus": None, "torch_threads": None, "num_gpus": 0, "replicas": 1, "node_cpus": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        size_replica(**args)


def test_autoscaling_sizes_for_the_most_replicas() -> None:
    assert replica_count(3, None) == 3
    assert replica_count(3, {"min_replicas": 1, "max_replicas": 4}) == 4
    assert replica_count(3, {"min_replicas": 1}) == 1  # Serve's default max_replicas


def test_cli_build_app_and_yaml_config_deploy_the_same_replicas(monkeypatch) -> None:
    pytest.importorskip("ray.serve")
    from ray_backend import serve as serve_module
    from ray_backend.serving import sizing as sizing_module

    monkeypatch.setattr(sizing_module, "local_cpus", lambda: 6)  # Ray is not running here: this machine's CPUs

    def deployed(app) -> tuple[float, dict]:
        bound = app._bound_deployment
        return bound.ray_actor_options["num_cpus"], bound.init_args[1]

    cli, _, _, _ = serve_module._parse_cli([], "instructor serve")
    raw = yaml.safe_load(files("ray_backend").joinpath("serve_config.yaml").read_text())
    (app,) = raw["applications"]
    expected = (6.0, {"num_cpus": 6.0, "torch_threads": 6, "source": "share", "node_cpus": 6.0, "replicas": 1})
    assert deployed(serve_module.build_app(cli)) == expected
    assert deployed(serve_module.build_app(app["args"])) == expected
    assert deployed(serve_module.build_app(None)) == expected
    # Two replicas share the node; strings as `serve run ... key=value` passes them.
    two = deployed(serve_module.build_app({"num_replicas": "2"}))
    assert two[0] == 3.0 and two[1]["torch_threads"] == 3
    cli_two, _, _, _ = serve_module._parse_cli(["--replicas", "2"], "instructor serve")
    assert deployed(serve_module.build_app(cli_two)) == two
    explicit, _, _, _ = serve_module._parse_cli(["--num-cpus", "1"], "instructor serve")
    assert deployed(serve_module.build_app(explicit)) == (
        1.0,
        {"num_cpus": 1.0, "torch_threads": 1, "source": "num_cpus", "node_cpus": None, "replicas": None},
    )


def test_metrics_export_port_flag() -> None:
    pytest.importorskip("ray.serve")
    from ray_backend import serve as serve_module

    *_, metrics = serve_module._parse_cli([], "instructor serve")
    assert metrics.metrics_export_port == 8080
    *_, metrics = serve_module._parse_cli(["--metrics-export-port", "9100"], "instructor serve")
    assert metrics.metrics_export_port == 9100
    with pytest.raises(SystemExit) as exc:
        serve_module._parse_cli(["--metrics-export-port", "70000"], "instructor serve")
    assert exc.value.code == 2
