"""The schema of a Terraform provider version, read from the jsii assembly that cdktf generates.

`cdktf-cdktf-provider-google==16.12.1` (PyPI) is generated from `terraform providers schema -json`
of google 6.50.0. Its jsii assembly keeps, for every resource and data source:

- the config struct (`<Resource>Config`): each argument with its type and whether it is optional,
  and its registry link `.../docs/resources/<type>#<argument_name>`, which gives the exact
  Terraform name;
- nested blocks as struct types: a struct for a block of at most one, an array of structs for a
  repeated block;
- the resource class and its `<Block>OutputReference` classes: a getter per attribute, so the
  getters that are not arguments are the computed-only attributes.

What jsii does not keep, and how we stand in for it: whether an optional argument is also computed
(we say it is, so the plan leaves unset optional values unknown, as the real provider often does),
set vs. list nesting (lists), and the provider's value validations (none).

A schema here is plain JSON (see `Block`): the same shape the hand-written small schemas use.
"""

from __future__ import annotations

import json
import re
import tarfile
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict

LINK = re.compile(
    r"registry\.terraform\.io/providers/hashicorp/[a-z-]+/([0-9.]+)/docs(?:/(resources|data-sources)/\S+)?\s+(\S+?)\}"
)
ANCHOR = re.compile(r"/docs/(?:resources|data-sources)/[a-z0-9_]+#([a-z0-9_]+) ")
# cdktf's types for getters: maps, and IResolvable for a boolean attribute.
CDKTF_TYPES = {
    "cdktf.StringMap": ["map", "string"],
    "cdktf.NumberMap": ["map", "number"],
    "cdktf.BooleanMap": ["map", "bool"],
    "cdktf.IResolvable": "bool",
}
# Terraform's meta-arguments: never a provider argument (cdktf puts `alias` in the provider config).
META = {"alias"}


class Attribute(TypedDict, total=False):
    type: Any  # cty type in Terraform's JSON form: "string", ["list", "string"], "dynamic", ...
    required: bool
    optional: bool
    computed: bool
    sensitive: bool


class NestedBlock(TypedDict):
    nesting: str  # "list" or "single"
    min_items: int
    max_items: int
    block: Block


class Block(TypedDict):
    attributes: dict[str, Attribute]
    blocks: dict[str, NestedBlock]


class ProviderSchema(TypedDict):
    version: str
    provider: Block
    resources: dict[str, Block]
    data_sources: dict[str, Block]


class SchemaError(Exception):
    """The package's assembly is missing or does not look like a cdktf provider."""


def assembly_of(distribution: str) -> dict[str, Any]:
    """The jsii assembly inside an installed cdktf provider package, read without importing it
    (importing would start the jsii runtime, which needs node)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as error:
        raise SchemaError(f"{distribution} is not installed (pip install -c constraints.txt -e '.[dev]')") from error
    tarballs = [Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith(".jsii.tgz")]
    if len(tarballs) != 1:
        raise SchemaError(f"{distribution}: expected one .jsii.tgz, found {len(tarballs)}")
    with tarfile.open(tarballs[0]) as archive:
        member = archive.extractfile("package/.jsii")
        if member is None:
            raise SchemaError(f"{tarballs[0]}: no package/.jsii")
        return json.load(member)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _docs_text(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    return f"{docs.get('summary', '')} {docs.get('remarks', '')}"


def _strip_resolvable(ref: dict[str, Any]) -> dict[str, Any]:
    if "union" in ref:
        kept = [t for t in ref["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
        return kept[0] if len(kept) == 1 else {"primitive": "any"}
    return ref


class _Reader:
    def __init__(self, assembly: dict[str, Any]):
        self.types: dict[str, dict[str, Any]] = assembly["types"]

    def is_struct(self, ref: dict[str, Any]) -> bool:
        fqn = ref.get("fqn")
        return fqn is not None and self.types.get(fqn, {}).get("datatype", False)

    def cty(self, ref: dict[str, Any]) -> Any:
        ref = _strip_resolvable(ref)
        if "primitive" in ref:
            return {"string": "string", "number": "number", "boolean": "bool"}.get(ref["primitive"], "dynamic")
        if "collection" in ref:
            kind = "list" if ref["collection"]["kind"] == "array" else "map"
            return [kind, self.cty(ref["collection"]["elementtype"])]
        return CDKTF_TYPES.get(ref.get("fqn", ""), "dynamic")

    def block(self, struct_fqn: str, getters_fqn: str | None) -> Block:
        """The block whose arguments are struct_fqn's properties and whose computed-only
        attributes are getters of getters_fqn (the resource class or an OutputReference)."""
        attributes: dict[str, Attribute] = {}
        blocks: dict[str, NestedBlock] = {}
        camel_names = set()
        for prop in self.types[struct_fqn].get("properties", []):
            camel_names.add(prop["name"])
            anchor = ANCHOR.search(_docs_text(prop))
            name = anchor.group(1) if anchor else _snake(prop["name"])
            if name in META:
                continue
            optional = bool(prop.get("optional"))
            ref = _strip_resolvable(prop["type"])
            element = ref["collection"]["elementtype"] if ref.get("collection", {}).get("kind") == "array" else None
            if self.is_struct(ref) or (element is not None and self.is_struct(element)):
                struct = ref["fqn"] if self.is_struct(ref) else element["fqn"]
                reference = f"{struct}OutputReference"
                blocks[name] = {
                    "nesting": "list",
                    "min_items": 0 if optional else 1,
                    "max_items": 1 if self.is_struct(ref) else 0,
                    "block": self.block(struct, reference if reference in self.types else None),
                }
            else:
                # Optional arguments are declared optional AND computed: jsii does not say which
                # are computed, and unknown is what the real provider plans for most of them.
                attributes[name] = (
                    {"type": self.cty(ref), "required": True}
                    if not optional
                    else {"type": self.cty(ref), "optional": True, "computed": True}
                )
        for getter in self.types.get(getters_fqn, {}).get("properties", []) if getters_fqn else []:
            name = getter["name"]
            if getter.get("static") or name.endswith("Input") or name in camel_names:
                continue
            if name in {"fqn", "creationStack", "internalValue", "complexObjectIndex", "complexObjectIsFromSet"}:
                continue  # cdktf's own plumbing, not attributes
            snake = _snake(name)
            if snake in attributes or snake in blocks or snake in META:
                continue
            attributes[snake] = {"type": self.cty(getter["type"]), "computed": True}
        return {"attributes": attributes, "blocks": blocks}


def provider_schema(assembly: dict[str, Any]) -> ProviderSchema:
    """Every resource and data source of the provider, and the provider's own configuration."""
    reader = _Reader(assembly)
    version = None
    provider: Block | None = None
    resources: dict[str, Block] = {}
    data_sources: dict[str, Block] = {}
    for fqn, kind in reader.types.items():
        if kind.get("kind") != "class":
            continue
        base = kind.get("base")
        if base not in {"cdktf.TerraformResource", "cdktf.TerraformDataSource", "cdktf.TerraformProvider"}:
            continue
        link = LINK.search(kind.get("docs", {}).get("summary", ""))
        config = f"{fqn}Config"
        if link is None or config not in reader.types:
            continue
        version = version or link.group(1)
        if base == "cdktf.TerraformProvider":
            provider = reader.block(config, None)
        elif base == "cdktf.TerraformResource":
            resources[link.group(3)] = reader.block(config, fqn)
        else:
            data_sources[link.group(3)] = reader.block(config, fqn)
    if provider is None or not resources or version is None:
        raise SchemaError("the assembly has no provider class or no resources: not a cdktf provider package")
    for block in (*resources.values(), *data_sources.values()):
        block["attributes"].setdefault("id", {"type": "string", "optional": True, "computed": True})
    return {"version": version, "provider": provider, "resources": resources, "data_sources": data_sources}
