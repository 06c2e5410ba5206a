from __future__ import annotations

from importlib.resources import files

import pytest
import yaml

from ray_backend.batching import BatchPolicy

pytest.importorskip("ray.serve")


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
    assert application is not None
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
