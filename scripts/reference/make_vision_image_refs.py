#!/usr/bin/env python3
"""Test images and their reference decodes for Tests/GemmaVisionTests (image input), made by Pillow and transformers,
never by this repository's code.

Writes Tests/Fixtures/vision-image/:
- small images that exercise each decoding path: JPEG with EXIF orientation 1..8 (Pillow's little-endian writer), a
  big-endian EXIF block, XMP-only orientation, grey, CMYK (Pillow writes Adobe CMYK), progressive, 4:2:0; PNG at
  1/2/4/8/16 bits, grey, grey+alpha, palette with tRNS, a palette shorter than its indices, colour keys, RGBA 8/16,
  Adam7 interlacing, orientation from eXIf / "Raw profile type exif" text / XMP iTXt; WebP lossy, lossless, with alpha,
  animated (first frame), with EXIF; a GIF (refused); decompression bombs (a PNG, JPEG and WebP header claiming far more
  pixels than PIL's MAX_IMAGE_PIXELS, with almost no data). Pillow cannot write interlaced or 16-bit grey+alpha/RGBA
  PNGs or odd tRNS cases, so those are written here with zlib (the PNG chunk layout; Pillow then reads them back for
  the reference).
- references.safetensors, uint8 HWC arrays:
  - decode.<file>: transformers.image_utils.load_image(path) (PIL.Image.open, ImageOps.exif_transpose,
    convert("RGB")): what transformers 5.23 makes of an image given as a path, URL or base64;
  - composite.<file>: transformers.image_transforms.convert_to_rgb(PIL.Image.open(path), return_numpy=True), what the
    processor does to a PIL image handed to it directly (alpha over white, no EXIF transpose), for files with alpha;
  - resize.source (97x61 RGB) and resize.<filter>.<w>x<h>: PIL.Image.resize((w, h), filter) of it, filters 1..5
    (90x20 and 120x30 take Pillow 13's vertical-first pass order);
- SHA256SUMS: sha256 of every file above (as `sha256sum` prints it).
- cases.json: every file with its Pillow mode, size, and whether transformers decodes it; FNV-1a 64 of PIL's RGB decode
  of the gemma3-tiny-vision fixture PNGs (wide, tall, square).

Usage, from the repository root: python3 scripts/reference/make_vision_image_refs.py
Needs: pillow (13.0.0 was used), numpy, safetensors, transformers (5.23.0; image_utils and image_transforms only,
no torch).
"""
import hashlib
import io
import json
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from safetensors.numpy import save_file
from transformers.image_transforms import convert_to_rgb
from transformers.image_utils import load_image

OUT = "Tests/Fixtures/vision-image"
TINY_VISION_IMAGES = "Tests/Fixtures/gemma3-tiny-vision/images"


def pattern(w, h, seed=0):
    """An asymmetric RGB test pattern: gradients, a bright corner block, 1-px stripes (orientation shows)."""
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    b = (((x // 3 + y // 2 + seed) % 5) * 60).astype(np.uint8)
    img = np.stack([r, g, b], axis=-1)
    img[: h // 4, : w // 3] = [250, 30, 30]  # top-left block: red
    img[h - 3 :, w // 2 :, 1] = 255  # bottom-right stripe: green high
    return img


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(values, depth):
    """A row of samples at `depth` bits, most significant bits first (PNG's packing)."""
    if depth == 8:
        return bytes(int(v) for v in values)
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in values)
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, depth, color_type, *, interlace=False, before=(), after=()):
    """samples: uint array [h, w, channels] (palette indices, grey, grey+alpha, RGB or RGBA values at `depth`)."""
    h, w, c = samples.shape
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\x00" + pack_row(row.reshape(-1), depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for c_ in before:
        data += c_
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    for c_ in after:
        data += c_
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def tiff_orientation(value, big_endian=False):
    """A minimal Exif block (with its "Exif\\0\\0" header): IFD0 with one SHORT Orientation entry."""
    e = ">" if big_endian else "<"
    head = (b"MM\x00\x2a" if big_endian else b"II\x2a\x00") + struct.pack(e + "I", 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "H", value) + b"\0\0"
    return b"Exif\x00\x00" + head + ifd + struct.pack(e + "I", 0)


def tiff_block(entries, big_endian=False, count=None, extra=b"", ifd_offset=8):
    """An Exif block with IFD0 holding `entries` [(tag, type, count, 4-byte value field)], then `extra` bytes."""
    e = ">" if big_endian else "<"
    head = (b"MM\x00\x2a" if big_endian else b"II\x2a\x00") + struct.pack(e + "I", ifd_offset)
    ifd = struct.pack(e + "H", len(entries) if count is None else count)
    for tag, typ, n, field in entries:
        ifd += struct.pack(e + "HHI", tag, typ, n) + field
    return b"Exif\x00\x00" + head + ifd + struct.pack(e + "I", 0) + extra


def insert_app1(jpeg: bytes, payload: bytes) -> bytes:
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def xmp_packet(orientation, attribute=True):
    inner = (f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="{orientation}"/>'
             if attribute else
             f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"><tiff:Orientation>{orientation}'
             f'</tiff:Orientation></rdf:Description>')
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + inner +
            '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, "JPEG", **kw)
    return b.getvalue()


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}  # name -> note

    def put(name, data: bytes, note):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        files[name] = note

    base = Image.fromarray(pattern(40, 24))
    for n in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = n
        put(f"orient-{n}.jpg", jpeg_bytes(base, quality=95, subsampling=0, exif=exif.tobytes()),
            f"JPEG 4:4:4 q95, EXIF orientation {n} (Pillow's little-endian Exif writer)")
    plain = jpeg_bytes(base, quality=95, subsampling=0)
    put("orient-6-bigendian.jpg", insert_app1(plain, tiff_orientation(6, big_endian=True)),
        "JPEG with a big-endian (MM) Exif block, orientation 6")
    put("orient-xmp-8.jpg", jpeg_bytes(base, quality=95, subsampling=0, xmp=xmp_packet(8).encode()),
        "JPEG with XMP tiff:Orientation=\"8\" and no EXIF")
    exif1 = Image.Exif()
    exif1[0x0112] = 1
    put("orient-exif1-xmp6.jpg",
        jpeg_bytes(base, quality=95, subsampling=0, exif=exif1.tobytes(), xmp=xmp_packet(6).encode()),
        "JPEG with EXIF orientation 1 and XMP orientation 6 (EXIF wins: upright)")
    # EXIF edge cases, read by Pillow for the reference: orientation as LONG, as RATIONAL 6/1 (Pillow compares the
    # IFDRational with ==), as two SHORTs (Pillow takes the first: the tag's spec'd length is 1), the value 9 (ignored),
    # a directory that claims 5 entries but ends after the first, an IFD offset past the block, and a bad TIFF header.
    le = "<"
    rational_at = 8 + 2 + 12 + 4  # the value after the directory and the next-IFD offset
    edge = {
        "exif-long-6.jpg": tiff_block([(0x0112, 4, 1, struct.pack(le + "I", 6))]),
        "exif-rational-6.jpg": tiff_block([(0x0112, 5, 1, struct.pack(le + "I", rational_at))],
                                          extra=struct.pack(le + "II", 6, 1)),
        "exif-two-shorts-6-3.jpg": tiff_block([(0x0112, 3, 2, struct.pack(le + "HH", 6, 3))]),
        "exif-value-9.jpg": tiff_block([(0x0112, 3, 1, struct.pack(le + "HH", 9, 0))]),
        "exif-cut-directory-8.jpg": tiff_block([(0x0112, 3, 1, struct.pack(le + "HH", 8, 0))], count=5)[:-4],
        "exif-offset-past-end.jpg": tiff_block([(0x0112, 3, 1, struct.pack(le + "HH", 6, 0))], ifd_offset=4000),
        "exif-bad-header.jpg": b"Exif\x00\x00XX\x2a\x00\x08\x00\x00\x00garbage",
    }
    for name, block in edge.items():
        put(name, insert_app1(plain, block), "JPEG with an edge-case Exif block (see the script)")
    put("grey.jpg", jpeg_bytes(base.convert("L"), quality=90), "greyscale JPEG (mode L)")
    put("cmyk.jpg", jpeg_bytes(Image.fromarray(pattern(40, 24, 1)).convert("CMYK"), quality=95),
        "CMYK JPEG (Pillow writes Adobe polarity and an APP14 marker)")
    put("progressive.jpg", jpeg_bytes(Image.fromarray(pattern(64, 48, 2)), quality=85, progressive=True),
        "progressive JPEG 4:2:0")
    put("rgb-420.jpg", jpeg_bytes(Image.fromarray(pattern(57, 31, 3)), quality=75, subsampling=2),
        "baseline JPEG 4:2:0, odd size")

    rng = np.random.default_rng(1234)
    w, h = 23, 13
    rgb8 = pattern(w, h, 4)

    def pil_png(img, name, note, **kw):
        b = io.BytesIO()
        img.save(b, "PNG", **kw)
        put(name, b.getvalue(), note)

    pil_png(Image.fromarray(rgb8), "rgb8.png", "RGB 8-bit")
    grey16 = (rng.integers(0, 1200, size=(h, w)) * (rng.random((h, w)) < 0.8)).astype(np.uint16)
    grey16[0, :6] = [0, 1, 255, 256, 1000, 65535]
    write_png(os.path.join(OUT, "grey16.png"), grey16[..., None], 16, 0)
    files["grey16.png"] = "16-bit grey (Pillow: I;16, clipped to 255 by convert('RGB'))"
    rgb16 = rng.integers(0, 65536, size=(h, w, 3)).astype(np.uint16)
    write_png(os.path.join(OUT, "rgb16.png"), rgb16, 16, 2)
    files["rgb16.png"] = "16-bit RGB (Pillow keeps the high bytes)"
    rgba16 = rng.integers(0, 65536, size=(h, w, 4)).astype(np.uint16)
    rgba16[0, :4, 3] = [0, 255, 256, 65535]
    write_png(os.path.join(OUT, "rgba16.png"), rgba16, 16, 6)
    files["rgba16.png"] = "16-bit RGBA"
    la16 = rng.integers(0, 65536, size=(h, w, 2)).astype(np.uint16)
    write_png(os.path.join(OUT, "la16.png"), la16, 16, 4)
    files["la16.png"] = "16-bit grey+alpha (Pillow: RGBA from LA;16B)"
    la8 = np.stack([rgb8[..., 0], rng.integers(0, 256, size=(h, w)).astype(np.uint8)], axis=-1)
    la8[0, :3, 1] = [0, 128, 255]
    pil_png(Image.fromarray(la8, "LA"), "la8.png", "grey+alpha 8-bit (LA)")
    rgba8 = np.concatenate([rgb8, rng.integers(0, 256, size=(h, w, 1)).astype(np.uint8)], axis=-1)
    rgba8[0, :3, 3] = [0, 1, 255]
    pil_png(Image.fromarray(rgba8, "RGBA"), "rgba8.png", "RGBA 8-bit")
    pil_png(Image.fromarray(rgb8[..., 1]), "grey8.png", "grey 8-bit (L)")
    for depth in (1, 2, 4):
        g = rng.integers(0, 1 << depth, size=(h, w)).astype(np.uint8)
        write_png(os.path.join(OUT, f"grey{depth}.png"), g[..., None], depth, 0)
        files[f"grey{depth}.png"] = f"grey {depth}-bit"
    pal = Image.fromarray(rgb8).quantize(colors=16)
    trns = bytes(int(v) for v in rng.integers(0, 256, size=16))
    pil_png(pal, "palette-trns.png", "palette (16 colours) with a tRNS alpha per entry", transparency=trns)
    pil_png(Image.fromarray(rgb8).quantize(colors=5), "palette.png", "palette (5 colours), no tRNS")
    idx = rng.integers(0, 8, size=(h, w)).astype(np.uint8)
    plte = chunk(b"PLTE", bytes([200, 10, 10, 10, 200, 10, 10, 10, 200, 250, 250, 0]))
    write_png(os.path.join(OUT, "palette-short.png"), idx[..., None], 4, 3, before=[plte])
    files["palette-short.png"] = "4-bit palette of 4 entries with indices up to 7 (Pillow: black past the end)"
    key = chunk(b"tRNS", struct.pack(">H", int(rgb8[0, 0, 1])))
    write_png(os.path.join(OUT, "grey-trns.png"), rgb8[..., 1:2], 8, 0, before=[key])
    files["grey-trns.png"] = "grey 8-bit with a tRNS colour key"
    r, g_, b = (int(v) for v in rgb8[0, 0])
    write_png(os.path.join(OUT, "rgb-trns.png"), rgb8, 8, 2, before=[chunk(b"tRNS", struct.pack(">HHH", r, g_, b))])
    files["rgb-trns.png"] = "RGB 8-bit with a tRNS colour key"
    big = pattern(37, 29, 5)
    write_png(os.path.join(OUT, "interlaced.png"), big, 8, 2, interlace=True)
    files["interlaced.png"] = "Adam7-interlaced RGB 8-bit, 37x29"
    g2 = rng.integers(0, 4, size=(29, 37)).astype(np.uint8)
    write_png(os.path.join(OUT, "interlaced-grey2.png"), g2[..., None], 2, 0, interlace=True)
    files["interlaced-grey2.png"] = "Adam7-interlaced grey 2-bit, 37x29"

    exif6 = Image.Exif()
    exif6[0x0112] = 6
    pil_png(base, "orient-6.png", "PNG with an eXIf chunk, orientation 6", exif=exif6.tobytes())
    raw = tiff_orientation(3)[6:]
    info = PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n")
    pil_png(base, "orient-3-rawprofile.png", "PNG with a 'Raw profile type exif' text chunk, orientation 3",
            pnginfo=info)
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(5, attribute=False))
    pil_png(base, "orient-5-xmp.png", "PNG with XMP <tiff:Orientation>5 in an iTXt chunk", pnginfo=info)

    def webp(img, name, note, **kw):
        b = io.BytesIO()
        img.save(b, "WEBP", **kw)
        put(name, b.getvalue(), note)

    wimg = Image.fromarray(pattern(45, 27, 6))
    webp(wimg, "lossy.webp", "lossy WebP q80", quality=80)
    webp(wimg, "lossless.webp", "lossless WebP", lossless=True)
    wrgba = np.concatenate([pattern(45, 27, 6), rng.integers(0, 256, size=(27, 45, 1)).astype(np.uint8)], axis=-1)
    webp(Image.fromarray(wrgba, "RGBA"), "alpha-lossless.webp", "lossless WebP with alpha", lossless=True)
    webp(Image.fromarray(wrgba, "RGBA"), "alpha-lossy.webp", "lossy WebP with alpha", quality=70)
    frames = [Image.fromarray(pattern(30, 20, 7)), Image.fromarray(pattern(30, 20, 8)[::-1].copy())]
    webp(frames[0], "animated.webp", "animated WebP, 2 frames (the first is decoded)", save_all=True,
         append_images=frames[1:], duration=100, lossless=True)
    webp(base, "orient-6.webp", "lossless WebP with an EXIF chunk, orientation 6", lossless=True,
         exif=exif6.tobytes())

    b = io.BytesIO()
    base.save(b, "GIF")
    put("image.gif", b.getvalue(), "GIF (refused)")

    # Decompression bombs: headers only.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    put("bomb.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b""), "PNG header claiming 100000x100000 (1e10 pixels)")
    sof = plain.index(b"\xff\xc0")
    bomb = bytearray(plain)
    bomb[sof + 5 : sof + 9] = struct.pack(">HH", 65500, 65500)  # height, width of the real SOF0
    put("bomb.jpg", bytes(bomb), "JPEG whose SOF0 claims 65500x65500 over 2 KB of data")
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x02, 0, 0, 0]) + (16383).to_bytes(3, "little") * 2
    anim = b"ANIM" + struct.pack("<I", 6) + b"\0" * 6
    body = b"WEBP" + vp8x + anim
    put("bomb.webp", b"RIFF" + struct.pack("<I", len(body)) + body, "animated WebP canvas of 16384x16384, no frame")

    # References.
    tensors = {}
    cases = []
    for name in sorted(files):
        path = os.path.join(OUT, name)
        case = {"file": name, "note": files[name]}
        try:
            with Image.open(path) as im:
                case["pil_mode"] = im.mode
                case["size"] = list(im.size)
            ref = np.asarray(load_image(path))
            tensors[f"decode.{name}"] = np.ascontiguousarray(ref)
            case["transformers"] = "decoded"
            with Image.open(path) as im:
                has_alpha = "A" in im.getbands() or im.info.get("transparency") is not None
                if has_alpha:
                    tensors[f"composite.{name}"] = np.ascontiguousarray(convert_to_rgb(im, return_numpy=True))
                    case["composite"] = True
        except Exception as e:  # noqa: BLE001 (any refusal is the reference outcome)
            case["transformers"] = f"error: {type(e).__name__}: {e}"
        cases.append(case)

    src = pattern(97, 61, 9)
    tensors["resize.source"] = src
    sizes = [(40, 30), (150, 90), (97, 20), (33, 61), (13, 7), (90, 20), (120, 30)]
    for f in (1, 2, 3, 4, 5):
        for (tw, th) in sizes:
            tensors[f"resize.{f}.{tw}x{th}"] = np.asarray(Image.fromarray(src).resize((tw, th), f))

    # The whole PIL-backend processor (transformers' Gemma3ImageProcessorPil, configured from the tiny-vision folder,
    # with call-time overrides) on decoded fixture images: float32 [N, 3, H, W] pixel values, original then crops.
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    processor = Gemma3ImageProcessorPil.from_pretrained(os.path.dirname(TINY_VISION_IMAGES))
    clip_mean, clip_std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    runs = {
        "wide.png.pas1.40x48.clip": ("wide.png", dict(do_pan_and_scan=True, size={"height": 40, "width": 48},
                                                      image_mean=clip_mean, image_std=clip_std)),
        "tall.png.pas1.56x32.bicubic": ("tall.png", dict(do_pan_and_scan=True, size={"height": 56, "width": 32},
                                                         resample=3)),
        "square.jpg.pas0.24x24": ("square.jpg", dict(do_pan_and_scan=False, size={"height": 24, "width": 24})),
    }
    processor_runs = {}
    for key, (name, kw) in runs.items():
        out = processor(load_image(os.path.join(TINY_VISION_IMAGES, name)), pan_and_scan_min_crop_size=256,
                        pan_and_scan_max_num_crops=4, pan_and_scan_min_ratio_to_activate=1.2, **kw)
        tensors[f"processor.{key}"] = np.ascontiguousarray(np.stack(out["pixel_values"]).astype(np.float32))
        processor_runs[key] = {"image": name, "num_crops": int(out["num_crops"][0]),
                               "kwargs": {k: v for k, v in kw.items()}}

    fixture_decodes = {}
    for name in ("wide.png", "tall.png", "square.png"):
        arr = np.asarray(load_image(os.path.join(TINY_VISION_IMAGES, name)))
        fixture_decodes[name] = {"shape": list(arr.shape), "fnv1a64": fnv1a64(arr.tobytes())}

    save_file(tensors, os.path.join(OUT, "references.safetensors"))
    os.chmod(os.path.join(OUT, "references.safetensors"), 0o644)
    meta = {"pillow": PIL.__version__, "numpy": np.__version__,
            "transformers": __import__("transformers").__version__,
            "cases": cases, "fixture_png_decodes": fixture_decodes, "processor_runs": processor_runs}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "SHA256SUMS"), "w") as f:
        for name in sorted(os.listdir(OUT)):
            if name != "SHA256SUMS":
                with open(os.path.join(OUT, name), "rb") as g:
                    f.write(f"{hashlib.sha256(g.read()).hexdigest()}  {name}\n")
    for c in cases:
        print(f"{c['file']:28} {c.get('pil_mode', '-'):5} {c['transformers'][:70]}")


if __name__ == "__main__":
    main()
