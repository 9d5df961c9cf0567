"""The one mapping from every label source to the app's categories (TOP, BOTTOM, SHOES, ACC).

Label sources: the clothing dataset's fine labels (what the classifier says), the Clothing
Co-Parsing (CCP) set's 59 labels (what the parser was trained from) and SegFormer-clothes labels
(what the segformer-http service says). Training, evaluation, the segment stage and the benchmarks
all read them from here.
"""

from __future__ import annotations

from shared.messages import Category

# The clothing dataset's labels, in the classifier's output order (never reorder: the shipped model
# was trained on these indices).
CLOTHING_LABELS: tuple[str, ...] = (
    "T-Shirt", "Longsleeve", "Shirt", "Polo", "Undershirt", "Blouse", "Top", "Body", "Hoodie", "Blazer",
    "Outwear", "Dress", "Pants", "Shorts", "Skirt", "Shoes", "Hat", "Other",
)
CLOTHING_CATEGORIES: dict[str, Category] = {
    **{label: Category.TOP for label in ("T-Shirt", "Longsleeve", "Shirt", "Polo", "Undershirt", "Blouse", "Top",
                                         "Body", "Hoodie", "Blazer", "Outwear", "Dress")},
    **{label: Category.BOTTOM for label in ("Pants", "Shorts", "Skirt")},
    "Shoes": Category.SHOES,
    "Hat": Category.ACC,
    "Other": Category.ACC,
}

# CCP labels that are garments; every other CCP label (null, skin, hair, small jewellery, underwear,
# socks, stockings, tights) is no item.
CCP_CATEGORIES: dict[str, Category] = {
    **{label: Category.TOP for label in ("blazer", "blouse", "bodysuit", "cape", "cardigan", "coat", "dress", "hoodie",
                                         "jacket", "jumper", "romper", "shirt", "suit", "sweater", "sweatshirt",
                                         "t-shirt", "top", "vest")},
    **{label: Category.BOTTOM for label in ("jeans", "leggings", "pants", "shorts", "skirt")},
    **{label: Category.SHOES for label in ("boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes",
                                           "sneakers", "wedges")},
    **{label: Category.ACC for label in ("accessories", "bag", "belt", "hat", "purse", "scarf", "sunglasses",
                                         "glasses", "tie", "wallet", "gloves")},
}

# The parser's classes, in its output order. "body" is the wearer: skin, face, and what is worn on
# the body but is no item (underwear, socks, stockings, tights).
PARSER_CLASSES: tuple[str, ...] = ("background", "body", "hair", "top", "bottom", "shoes", "accessory")
PARSER_CATEGORIES: dict[str, Category] = {
    "top": Category.TOP, "bottom": Category.BOTTOM, "shoes": Category.SHOES, "accessory": Category.ACC,
}
# CCP labels the parser learns as the wearer; small jewellery is left out of training altogether
# (too small to learn at the parser's resolution, and no item either way).
CCP_WEARER = ("skin", "bra", "intimate", "panties", "swimwear", "socks", "stockings", "tights")
CCP_IGNORED = ("bracelet", "earrings", "necklace", "ring", "watch")

# SegFormer-clothes (ATR) labels, as the segformer-http service names them; anything else is ACC.
SEGFORMER_CATEGORIES: dict[str, Category] = {
    "upper-clothes": Category.TOP,
    "dress": Category.TOP,
    "pants": Category.BOTTOM,
    "skirt": Category.BOTTOM,
    "left-shoe": Category.SHOES,
    "right-shoe": Category.SHOES,
}


def clothing_category(label: str) -> Category:
    """Category of one of the clothing dataset's labels; KeyError for a label it does not have."""
    return CLOTHING_CATEGORIES[label]


def ccp_class(label: str) -> str | None:
    """The parser class a CCP label is trained as; None when it is left out of training."""
    if label in CCP_CATEGORIES:
        return {v: k for k, v in PARSER_CATEGORIES.items()}[CCP_CATEGORIES[label]]
    if label == "null":
        return "background"
    if label == "hair":
        return "hair"
    if label in CCP_WEARER:
        return "body"
    if label in CCP_IGNORED:
        return None
    raise KeyError(f"unknown CCP label {label!r}")


def segformer_category(label: str) -> Category:
    return SEGFORMER_CATEGORIES.get(label.strip().lower().replace("_", "-").replace(" ", "-"), Category.ACC)
