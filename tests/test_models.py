import pytest
from support.migrate import accepted_providers

from hyperexport.errors import InvalidInputError
from hyperexport.migration import MigrationRequest
from hyperexport.models import ConvertOptions, ConverterConfig, ExportOptions
from hyperexport.validate_input import build


def test_convert_options_defaults_match_the_seed_contract():
    options = ConvertOptions()
    assert options.target_format.value == "qcow2"
    assert options.compression_level == 0
    assert options.stream_output and not options.dry_run and options.preserve_mac
    assert options.custom_args == [] and options.fix_guest is False


@pytest.mark.parametrize(
    ("model", "fields", "named", "accepted"),
    [
        (ConvertOptions, {"target_format": "vdi"}, "target_format", "'qcow2', 'raw' or 'vmdk'"),
        (ConvertOptions, {"compression_level": 10}, "compression_level", "less than or equal to 9"),
        (ConvertOptions, {"compression_level": -1}, "compression_level", "greater than or equal to 0"),
        (ConverterConfig, {"timeout_seconds": 0}, "timeout_seconds", "greater than 0"),
        (ExportOptions, {"output_dir": "/tmp/x", "format": "iso"}, "format", "'vmdk', 'qcow2', 'raw', 'vhd', 'vhdx' or 'vdi'"),
        (MigrationRequest, {"provider": "openstack", "source": {}, "export": {"output_dir": "/tmp"}}, "provider", accepted_providers()),
    ],
)
def test_invalid_values_are_refused_naming_field_and_accepted_values(model, fields, named, accepted):
    with pytest.raises(InvalidInputError) as raised:
        build(model, fields)
    assert named in str(raised.value)
    assert accepted in str(raised.value)


def test_unknown_fields_are_refused():
    with pytest.raises(InvalidInputError, match="stream_outptu"):
        build(ConvertOptions, stream_outptu=True)


def test_migration_request_has_a_json_schema_for_ui_forms():
    schema = MigrationRequest.model_json_schema()
    export = schema["$defs"]["ExportOptions"]["properties"]
    assert "output_dir" in export and "progress_callback" not in export
