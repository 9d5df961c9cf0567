"""A schema-only stand-in provider: `python -m closet_pipeline.terraform_check.standin SCHEMA.json`.

Terraform starts it like any provider plugin (the go-plugin handshake and the gRPC server are the
PyPI package `tf`'s) and asks it for the schema, which is all `validate` needs: Terraform core
itself refuses unknown arguments, wrong blocks, wrong types and missing required arguments.
For `plan` it answers like a provider that has not created anything yet: every computed value it
is not given is unknown ("known after apply"), and data sources read placeholder values.
`apply` is refused: the stand-in creates nothing.

A data source's placeholder values can be replaced through the environment variable
CLOSET_STANDIN_READS, a JSON object {data source type: {attribute: value}}: that is how a check
plans "the secret has an enabled version" and "it has none".
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import msgpack
from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc
from tf.types import Unknown
from tf.utils import read_dynamic_value, to_dynamic_value

from closet_pipeline.terraform_check.jsii_schema import Block, ProviderSchema

NULL = pb.DynamicValue(msgpack=msgpack.packb(None))


def _block_pb(block: Block) -> pb.Schema.Block:
    return pb.Schema.Block(
        attributes=[
            pb.Schema.Attribute(
                name=name,
                type=json.dumps(attribute["type"]).encode(),
                required=attribute.get("required", False),
                optional=attribute.get("optional", False),
                computed=attribute.get("computed", False),
                sensitive=attribute.get("sensitive", False),
            )
            for name, attribute in sorted(block["attributes"].items())
        ],
        block_types=[
            pb.Schema.NestedBlock(
                type_name=name,
                block=_block_pb(nested["block"]),
                nesting=pb.Schema.NestedBlock.NestingMode.LIST,
                min_items=nested["min_items"],
                max_items=nested["max_items"],
            )
            for name, nested in sorted(block["blocks"].items())
        ],
    )


def schema_response(schema: ProviderSchema) -> pb.GetProviderSchema.Response:
    return pb.GetProviderSchema.Response(
        provider=pb.Schema(block=_block_pb(schema["provider"])),
        resource_schemas={name: pb.Schema(block=_block_pb(block)) for name, block in schema["resources"].items()},
        data_source_schemas={name: pb.Schema(block=_block_pb(block)) for name, block in schema["data_sources"].items()},
        provider_meta=pb.Schema(block=pb.Schema.Block()),
        server_capabilities=pb.ServerCapabilities(plan_destroy=True),
    )


def unknown_computed(block: Block, value: Any) -> Any:
    """A planned object: computed attributes the configuration leaves null become unknown."""
    if not isinstance(value, dict):
        return value  # null, or an unknown object
    planned = dict(value)
    for name, attribute in block["attributes"].items():
        if planned.get(name) is None and attribute.get("computed"):
            planned[name] = Unknown
    for name, nested in block["blocks"].items():
        if isinstance(planned.get(name), list):
            planned[name] = [unknown_computed(nested["block"], item) for item in planned[name]]
    return planned


def _placeholder(name: str, type_: Any) -> Any:
    if type_ == "string":
        return f"stand-in-{name.replace('_', '-')}"
    if type_ == "number":
        return 0
    if type_ == "bool":
        return False
    if isinstance(type_, list) and type_[0] in ("list", "set"):
        return []
    if isinstance(type_, list) and type_[0] == "map":
        return {}
    return None


def placeholder_computed(block: Block, value: Any) -> Any:
    """A data source's read: computed attributes get known placeholder values."""
    if not isinstance(value, dict):
        return value
    read = dict(value)
    for name, attribute in block["attributes"].items():
        if read.get(name) is None and attribute.get("computed"):
            read[name] = _placeholder(name, attribute["type"])
    for name, nested in block["blocks"].items():
        if isinstance(read.get(name), list):
            read[name] = [placeholder_computed(nested["block"], item) for item in read[name]]
    return read


def _error(summary: str) -> list[pb.Diagnostic]:
    return [pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary)]


class StandIn(rpc.ProviderServicer):
    def __init__(self, schema: ProviderSchema):
        self.schema = schema
        self.response = schema_response(schema)

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=pb.ServerCapabilities(plan_destroy=True),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=name) for name in self.schema["resources"]],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=name) for name in self.schema["data_sources"]],
        )

    def GetProviderSchema(self, request, context):
        return self.response

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request, context):
        return pb.ValidateResourceConfig.Response()

    def ValidateDataResourceConfig(self, request, context):
        return pb.ValidateDataResourceConfig.Response()

    def ConfigureProvider(self, request, context):
        return pb.ConfigureProvider.Response()

    def UpgradeResourceState(self, request, context):
        return pb.UpgradeResourceState.Response(upgraded_state=pb.DynamicValue(json=request.raw_state.json))

    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request, context):
        proposed = read_dynamic_value(request.proposed_new_state)
        if proposed is None:  # destroy
            return pb.PlanResourceChange.Response(planned_state=NULL)
        block = self.schema["resources"][request.type_name]
        return pb.PlanResourceChange.Response(planned_state=to_dynamic_value(unknown_computed(block, proposed)))

    def ApplyResourceChange(self, request, context):
        return pb.ApplyResourceChange.Response(
            diagnostics=_error("stand-in provider: it checks plans, it creates nothing")
        )

    def ImportResourceState(self, request, context):
        return pb.ImportResourceState.Response(diagnostics=_error("stand-in provider: nothing to import"))

    def MoveResourceState(self, request, context):
        return pb.MoveResourceState.Response(diagnostics=_error("stand-in provider: nothing to move"))

    def ReadDataSource(self, request, context):
        block = self.schema["data_sources"][request.type_name]
        read = placeholder_computed(block, read_dynamic_value(request.config))
        read.update(json.loads(os.environ.get("CLOSET_STANDIN_READS", "{}")).get(request.type_name, {}))
        return pb.ReadDataSource.Response(state=to_dynamic_value(read))

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()


def main(argv: list[str]) -> None:
    import tf.provider
    import tf.runner

    with open(argv[1], encoding="utf-8") as handle:
        schema: ProviderSchema = json.load(handle)
    # tf.runner builds its servicer from tf.provider.ProviderServicer(provider); ours serves a
    # schema instead of Python resource classes, so it takes that place.
    tf.provider.ProviderServicer = lambda _provider: StandIn(schema)
    tf.runner.run_provider(None, argv)


if __name__ == "__main__":
    main(sys.argv)
