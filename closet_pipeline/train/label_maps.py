"""The training sets' labels mapped onto the wardrobe's vocabulary (`shared/categories.py`).

- The clothing dataset's 18 labels: each is one vocabulary label. Its "Other" photos are mostly
  one-piece kids' sets, overalls and jumpsuits, so it is a jumpsuit (category TOP), not an accessory.
- CCP's 59 labels: each garment label is one vocabulary label (so crops of CCP garments teach the
  classifier bags, belts, scarves and glasses too) and, through it, one parser class; skin and what is
  worn but is no item is the wearer's skin; small jewellery is left out of training and scoring.
"""

from __future__ import annotations

from shared.categories import BY_NAME

CLOTHING_TO_LABEL: dict[str, str] = {
    "T-Shirt": "t-shirt", "Longsleeve": "longsleeve", "Shirt": "shirt", "Polo": "polo", "Undershirt": "tank-top",
    "Blouse": "top", "Top": "top", "Body": "bodysuit", "Hoodie": "hoodie", "Blazer": "blazer",
    "Outwear": "outerwear", "Dress": "dress", "Other": "jumpsuit", "Pants": "pants", "Shorts": "shorts",
    "Skirt": "skirt", "Shoes": "shoes", "Hat": "hat",
}
# The ten most common labels of the clothing dataset: the fine-label target is measured on these.
COMMON_CLOTHING = ("T-Shirt", "Longsleeve", "Pants", "Shoes", "Shirt", "Dress", "Outwear", "Shorts", "Hat", "Skirt")

CCP_TO_LABEL: dict[str, str] = {
    **dict.fromkeys(("coat", "jacket", "cape", "cardigan", "vest", "suit"), "outerwear"),
    "blazer": "blazer",
    **dict.fromkeys(("blouse", "top"), "top"),
    "t-shirt": "t-shirt", "shirt": "shirt", "bodysuit": "bodysuit", "hoodie": "hoodie",
    **dict.fromkeys(("sweater", "jumper", "sweatshirt"), "sweater"),
    "dress": "dress", "romper": "jumpsuit",
    "skirt": "skirt", **dict.fromkeys(("pants", "jeans", "leggings"), "pants"), "shorts": "shorts",
    **dict.fromkeys(("boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes", "sneakers", "wedges"),
                    "shoes"),
    **dict.fromkeys(("bag", "purse", "wallet"), "bag"),
    "hat": "hat", "belt": "belt", "scarf": "scarf",
    **dict.fromkeys(("sunglasses", "glasses"), "glasses"),
    **dict.fromkeys(("accessories", "gloves", "tie"), "accessory"),
}
CCP_SKIN = ("skin", "bra", "intimate", "panties", "swimwear", "socks", "stockings", "tights")
CCP_IGNORED = ("bracelet", "earrings", "necklace", "ring", "watch")


def ccp_class(label: str) -> str | None:
    """The parser class a CCP label is trained as; None when it is left out of training."""
    if label in CCP_TO_LABEL:
        return BY_NAME[CCP_TO_LABEL[label]].kind
    if label == "null":
        return "background"
    if label == "hair":
        return "hair"
    if label in CCP_SKIN:
        return "skin"
    if label in CCP_IGNORED:
        return None
    raise KeyError(f"unknown CCP label {label!r}")

