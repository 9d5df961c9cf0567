"""A picture to look at instead of reading JSON: the photo beside its cut-out and its garments."""

from __future__ import annotations

from PIL import Image, ImageDraw

ROW_HEIGHT = 360
GAP = 12


def checkerboard(size: tuple[int, int], square: int = 12) -> Image.Image:
    board = Image.new("RGB", size, (236, 236, 236))
    draw = ImageDraw.Draw(board)
    for y in range(0, size[1], square):
        for x in range((y // square) % 2 * square, size[0], 2 * square):
            draw.rectangle([x, y, x + square - 1, y + square - 1], fill=(206, 206, 206))
    return board


def _fit(image: Image.Image, height: int) -> Image.Image:
    scale = height / image.height
    return image.resize((max(1, round(image.width * scale)), height), Image.Resampling.LANCZOS)


def contact_sheet(original: Image.Image, cutout: Image.Image | None, crops: list[tuple[Image.Image, str]]) -> Image.Image:
    tiles: list[tuple[Image.Image, str]] = [(_fit(original.convert("RGB"), ROW_HEIGHT), "photo")]
    if cutout is not None:
        tiles.append((_fit(cutout.convert("RGBA"), ROW_HEIGHT), "cut-out"))
    tiles += [(_fit(crop.convert("RGBA"), ROW_HEIGHT // 2), caption) for crop, caption in crops]
    width = sum(tile.width for tile, _ in tiles) + GAP * (len(tiles) + 1)
    sheet = Image.new("RGB", (width, ROW_HEIGHT + 2 * GAP + 20), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = GAP
    for tile, caption in tiles:
        if tile.mode == "RGBA":
            backdrop = checkerboard(tile.size)
            backdrop.paste(tile, (0, 0), tile)
            tile = backdrop
        sheet.paste(tile, (x, GAP))
        draw.text((x, GAP + tile.height + 4), caption, fill=(40, 40, 40))
        x += tile.width + GAP
    return sheet
