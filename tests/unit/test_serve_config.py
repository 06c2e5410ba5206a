from __future__ import annotations

from importlib.resources import files

import pytest
import yaml

from ray_backend.serving.batching import BatchPolicy

pytest.importorskip("ray.serve")
HASH = "instructor_plugins.testing:hash_encoder"


def test_checked_in_config_is_valid_and_builds() -> None:
    from ray.serve.schema import ServeDeploySchema

    from ray_backend import serve as serve_module

    raw = yaml.safe_load(files("ray_backend").joinpath("serve_config.yaml").read_text())
    config = ServeDeploySchema.model_validate(raw)
    assert config.http_options.host == "127.0.0.1"
    (app,) = config.applications
    module, _, attr = app.import_path.partition(":")
    assert module == "ray_backend.serve" and attr == "build_app"
    application = serve_module.build_app(app.args)
    from ray.serve import Application

    assert isinstance(application, Application)  # a Serve application, built from the YAML's args
    (deployment,) = app.deployments
    assert deployment.name == serve_module.DEPLOYMENT_NAME
    BatchPolicy.from_config(deployment.user_config)  # every key is a batch option


def test_build_app_rejects_unknown_args_and_coerces_cli_strings() -> None:
    from pydantic import ValidationError

    from ray_backend.serve import ServeArgs, build_app

    with pytest.raises(ValidationError, match="num_replica"):
        build_app({"num_replica": 2})
    args = ServeArgs.model_validate({"num_replicas": "2", "num_gpus": "0.5", "max_batch_rows": "8"})
    assert (args.num_replicas, args.num_gpus, args.policy().max_batch_rows) == (2, 0.5, 8)


def test_the_key_travels_in_the_runtime_env_not_in_the_args(tmp_path, monkeypatch) -> None:
    from ray_backend.serve import API_KEY_ENV, build_app

    monkeypatch.delenv(API_KEY_ENV, raising=False)
    key_file = tmp_path / "key"
    key_file.write_text("  s3cret\n")
    deployment = build_app(
        {"encoder_factory": "instructor_plugins.testing:hash_encoder", "api_key_file": str(key_file)}
    )._bound_deployment
    assert deployment.ray_actor_options["runtime_env"]["env_vars"][API_KEY_ENV] == "s3cret"
    args, _sizing = deployment.init_args
    assert "api_key" not in args and "api_key_file" not in args and "s3cret" not in repr(args)
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    env = build_app({"encoder_factory": HASH})._bound_deployment.ray_actor_options["runtime_env"]["env_vars"]
    assert env[API_KEY_ENV] == "from-env"
    with pytest.raises(ValueError, match="cannot read api_key_file"):
        build_app({"api_key_file": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        build_app({"api_key_file": str(tmp_path / "empty")})


def test_a_public_host_without_a_key_warns(caplog) -> None:
    from ray_backend.serve import warn_if_exposed

    assert warn_if_exposed("0.0.0.0", has_key=False)
    assert "without an API key" in caplog.text and "--api-key-file" in caplog.text
    assert not warn_if_exposed("0.0.0.0", has_key=True)
    assert not warn_if_exposed("127.0.0.1", has_key=False) and not warn_if_exposed("localhost", has_key=False)
