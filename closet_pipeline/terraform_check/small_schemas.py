"""The resources of hashicorp/random and hashicorp/time that terraform/ uses, written out.

There is no cdktf package to read them from that we install, and they are tiny and stable; these
follow the providers' published schemas (`terraform providers schema -json` of random 3.7.2 and
time 0.13.1), including which attributes are sensitive, because that decides what
`terraform show` prints. Any resource of these providers not listed here is refused by the stand-in
as an unknown resource type, exactly as a schema check should.
"""

from __future__ import annotations

from closet_pipeline.terraform_check.jsii_schema import Attribute, Block, ProviderSchema


def _optional(type_: object, sensitive: bool = False) -> Attribute:
    return {"type": type_, "optional": True, "computed": True, **({"sensitive": True} if sensitive else {})}


def _computed(type_: object, sensitive: bool = False) -> Attribute:
    return {"type": type_, "computed": True, **({"sensitive": True} if sensitive else {})}


_RANDOM_PASSWORD: Block = {
    "attributes": {
        "length": {"type": "number", "required": True},
        "keepers": {"type": ["map", "string"], "optional": True},
        "lower": _optional("bool"),
        "min_lower": _optional("number"),
        "min_numeric": _optional("number"),
        "min_special": _optional("number"),
        "min_upper": _optional("number"),
        "number": _optional("bool"),
        "numeric": _optional("bool"),
        "override_special": {"type": "string", "optional": True},
        "special": _optional("bool"),
        "upper": _optional("bool"),
        "result": _computed("string", sensitive=True),
        "bcrypt_hash": _computed("string", sensitive=True),
        "id": _computed("string"),
    },
    "blocks": {},
}

_RANDOM_ID: Block = {
    "attributes": {
        "byte_length": {"type": "number", "required": True},
        "keepers": {"type": ["map", "string"], "optional": True},
        "prefix": {"type": "string", "optional": True},
        "b64_std": _computed("string"),
        "b64_url": _computed("string"),
        "dec": _computed("string"),
        "hex": _computed("string"),
        "id": _computed("string"),
    },
    "blocks": {},
}

_TIME_SLEEP: Block = {
    "attributes": {
        "create_duration": {"type": "string", "optional": True},
        "destroy_duration": {"type": "string", "optional": True},
        "triggers": {"type": ["map", "string"], "optional": True},
        "id": _computed("string"),
    },
    "blocks": {},
}

EMPTY: Block = {"attributes": {}, "blocks": {}}

RANDOM: ProviderSchema = {
    "version": "3.7.2",
    "provider": EMPTY,
    "resources": {"random_password": _RANDOM_PASSWORD, "random_id": _RANDOM_ID},
    "data_sources": {},
}

TIME: ProviderSchema = {
    "version": "0.13.1",
    "provider": EMPTY,
    "resources": {"time_sleep": _TIME_SLEEP},
    "data_sources": {},
}
