"""The wardrobe's vocabulary: every item label the app receives, with its category, in one table.

An item is named by a *kind* (what the parser tells apart in a photo of a person: outerwear, top,
dress, skirt, pants, shorts, shoes, bag, hat, belt, scarf, glasses, accessory) or by a finer label of
that kind (a t-shirt is a top, a blazer is outerwear) where the classifier knows one. Both paths, the
single garment and the worn outfit, name items from this table only.

A dress (and a jumpsuit or romper) is one item of category TOP: it is worn where a top is, from the
shoulders down, and the app's outfits pair it with shoes and accessories the way they pair a top;
splitting it into a top and a bottom would give the user two halves of one garment.

How the training sets' labels (the clothing dataset's 18, CCP's 59) map onto this vocabulary is
training's business: `closet_pipeline/train/label_maps.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.messages import Category


@dataclass(frozen=True)
class ItemLabel:
    name: str  # what the result document says
    category: Category
    kind: str  # the parser class this label is a name of (itself, for a kind)


_TOP, _BOTTOM, _SHOES, _ACC = Category.TOP, Category.BOTTOM, Category.SHOES, Category.ACC

# The classifier's output order: never reorder without retraining (`make models`).
VOCABULARY: tuple[ItemLabel, ...] = (
    ItemLabel("outerwear", _TOP, "outerwear"),  # coat, jacket, cardigan, cape, vest
    ItemLabel("blazer", _TOP, "outerwear"),
    ItemLabel("top", _TOP, "top"),  # blouse, any other top
    ItemLabel("t-shirt", _TOP, "top"),
    ItemLabel("longsleeve", _TOP, "top"),
    ItemLabel("shirt", _TOP, "top"),
    ItemLabel("polo", _TOP, "top"),
    ItemLabel("tank-top", _TOP, "top"),
    ItemLabel("bodysuit", _TOP, "top"),
    ItemLabel("hoodie", _TOP, "top"),
    ItemLabel("sweater", _TOP, "top"),  # jumper, sweatshirt
    ItemLabel("dress", _TOP, "dress"),
    ItemLabel("jumpsuit", _TOP, "dress"),  # romper, overalls
    ItemLabel("skirt", _BOTTOM, "skirt"),
    ItemLabel("pants", _BOTTOM, "pants"),  # jeans, leggings
    ItemLabel("shorts", _BOTTOM, "shorts"),
    ItemLabel("shoes", _SHOES, "shoes"),  # all footwear; a pair is one item
    ItemLabel("bag", _ACC, "bag"),  # purse, wallet
    ItemLabel("hat", _ACC, "hat"),
    ItemLabel("belt", _ACC, "belt"),
    ItemLabel("scarf", _ACC, "scarf"),
    ItemLabel("glasses", _ACC, "glasses"),  # sunglasses
    ItemLabel("accessory", _ACC, "accessory"),  # gloves, tie, any other
)
LABELS: tuple[str, ...] = tuple(item.name for item in VOCABULARY)
BY_NAME: dict[str, ItemLabel] = {item.name: item for item in VOCABULARY}

# The parser's classes, in its output order: the wearer (skin: face, limbs, and what is worn but is
# no item: underwear, socks, tights), hair, then every kind.
WEARER_CLASSES: tuple[str, ...] = ("background", "skin", "hair")
KINDS: tuple[str, ...] = tuple(dict.fromkeys(item.kind for item in VOCABULARY))
PARSER_CLASSES: tuple[str, ...] = WEARER_CLASSES + KINDS


def category_of(label: str) -> Category:
    """The category of a vocabulary label; KeyError for a name not in the vocabulary."""
    return BY_NAME[label].category


def labels_of_kind(kind: str) -> tuple[str, ...]:
    """The labels that name a kind (the kind first)."""
    return tuple(item.name for item in VOCABULARY if item.kind == kind)
