"""The aws module keeps the provider contract of providers/base.py, name for name and argument for argument."""

from __future__ import annotations

import inspect

from hyperexport.providers import base, local
from hyperexport.providers.registry import get_provider, parse_options


def test_aws_module_has_the_contracts_shape():
    aws = get_provider("aws")
    for name in ("NAME", "DEFAULT_CONNECTIONS", "RECOMMENDED_LIMIT", "Options"):
        assert hasattr(aws, name), name
    assert aws.NAME == "aws"
    for name, method in inspect.getmembers(base.ProviderModule, inspect.isfunction):
        if name.startswith("_"):
            continue
        expected = list(inspect.signature(method).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(aws, name)).parameters) == expected, name
        assert list(inspect.signature(getattr(local, name)).parameters) == expected, name


def test_cli_option_names_reach_the_options():
    options = parse_options("aws", {"instance": "i-0abc", "region": "eu-west-1", "export_method": "export-image",
                                    "bucket": "b", "stop_instance": "true", "poll_seconds": "2"})  # fmt: skip
    assert (options.instance, options.bucket, options.stop_instance, options.poll_seconds) == ("i-0abc", "b", True, 2.0)
    assert get_provider("aws").describe(options) == "aws instance i-0abc in eu-west-1 via export-image"
