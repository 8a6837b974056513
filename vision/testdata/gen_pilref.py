#!/usr/bin/python3
"""Generates vision/testdata/pilref: small inputs in many format variants and what Pillow 9.4
(Debian 12 python3-pil 9.4.0-1.1+deb12u1, libjpeg62-turbo 2.1.5, libwebp 1.2.4) makes of them.

Run from the repository root on Debian 12 with python3-pil and libjpeg-turbo-progs installed:
    /usr/bin/python3 vision/testdata/gen_pilref.py

Outputs (all small):
  in/<name>.<ext>       encoded input
  want/<name>.png       expected RGB: exif_transpose(Image.open(in)).convert("RGB") for names
                        starting with "exif_", Image.open(in).convert("RGB") otherwise
  resize/src.png        an RGB source; resize/<filter>_<w>x<h>.png = src.resize((w,h), filter)
  index.json            the list of cases
The source picture is a crop of testdata/images/coffee_progressive.jpg (CC0).
"""
import io, json, os, struct, subprocess, zlib
from PIL import Image, ImageOps, PngImagePlugin

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "pilref")
IMAGES = os.path.join(ROOT, "..", "..", "testdata", "images")
for d in ("in", "want", "resize"):
    os.makedirs(os.path.join(OUT, d), exist_ok=True)

base = Image.open(os.path.join(IMAGES, "coffee_progressive.jpg")).convert("RGB")
src = base.crop((200, 120, 267, 165))  # 67x45, odd sizes on purpose
cases = []


def put(name, ext, data, transpose=False):
    p = os.path.join(OUT, "in", name + "." + ext)
    with open(p, "wb") as f:
        f.write(data)
    im = Image.open(p)
    if transpose:
        im = ImageOps.exif_transpose(im)
    want = im.convert("RGB")
    want.info.pop("transparency", None)
    want.save(os.path.join(OUT, "want", name + ".png"))
    cases.append({"name": name, "file": "in/" + name + "." + ext, "want": "want/" + name + ".png",
                  "mode": Image.open(p).mode, "exif_transpose": transpose})


def save(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def cjpeg(im, *args):
    ppm = save(im, "PPM")
    return subprocess.run(["cjpeg", *args], input=ppm, capture_output=True, check=True).stdout


# --- JPEG variants ---
put("jpeg_420", "jpg", save(src, "JPEG", quality=85, subsampling=2))
put("jpeg_422", "jpg", save(src, "JPEG", quality=85, subsampling=1))
put("jpeg_444_progressive", "jpg", save(src, "JPEG", quality=90, subsampling=0, progressive=True))
put("jpeg_420_progressive", "jpg", save(src, "JPEG", quality=75, subsampling=2, progressive=True))
put("jpeg_gray_progressive", "jpg", save(src.convert("L"), "JPEG", quality=80, progressive=True))
put("jpeg_440", "jpg", cjpeg(src, "-quality", "85", "-sample", "1x2,1x1,1x1"))
put("jpeg_411", "jpg", cjpeg(src, "-quality", "85", "-sample", "4x1,1x1,1x1"))
put("jpeg_restart", "jpg", cjpeg(src, "-quality", "85", "-restart", "1B"))
put("jpeg_restart_progressive", "jpg", cjpeg(src, "-quality", "85", "-restart", "2B", "-progressive"))
put("jpeg_rgb", "jpg", cjpeg(src, "-quality", "90", "-rgb"))
put("jpeg_cmyk", "jpg", save(src.convert("CMYK"), "JPEG", quality=90))
put("jpeg_tiny_2x3", "jpg", save(src.resize((2, 3)), "JPEG", quality=90, subsampling=2))
put("jpeg_q100_1x1", "jpg", save(src.resize((1, 1)), "JPEG", quality=100))
for o in range(1, 9):
    ex = Image.Exif()
    ex[0x0112] = o
    put("exif_jpeg_o%d" % o, "jpg", save(src, "JPEG", quality=85, exif=ex.tobytes()), transpose=True)
ex = Image.Exif(); ex[0x0112] = 6
put("exif_png_o6", "png", save(src, "PNG", exif=ex.tobytes()), transpose=True)
ex = Image.Exif(); ex[0x0112] = 3
put("exif_webp_o3", "webp", save(src, "WEBP", quality=80, exif=ex.tobytes()), transpose=True)
# Pillow 9.4 rotates a TIFF with an Orientation tag while loading it, and exif_transpose then
# applies the tag a second time: both are recorded.
xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="%d"/></rdf:RDF></x:xmpmeta>')
pi = PngImagePlugin.PngInfo(); pi.add_itxt("XML:com.adobe.xmp", xmp % 5, zip=True)
put("exif_png_xmp_o5", "png", save(src, "PNG", pnginfo=pi), transpose=True)
ex = Image.Exif(); ex[0x0112] = 7
raw = ex.tobytes().hex()
pi = PngImagePlugin.PngInfo(); pi.add_text("Raw profile type exif", "\nexif\n%8d\n" % (len(raw) // 2) + "\n".join(raw[i:i + 72] for i in range(0, len(raw), 72)), zip=True)
put("exif_png_rawprofile_o7", "png", save(src, "PNG", pnginfo=pi), transpose=True)
jp = save(src, "JPEG", quality=85)
seg = b"http://ns.adobe.com/xap/1.0/\x00" + (xmp % 6).encode()
put("exif_jpeg_xmp_only_ignored", "jpg", jp[:2] + b"\xff\xe1" + struct.pack(">H", len(seg) + 2) + seg + jp[2:], transpose=True)
put("exif_tiff_o8", "tiff", save(src, "TIFF", tiffinfo={274: 8}), transpose=True)
put("tiff_o8_no_transpose", "tiff", save(src, "TIFF", tiffinfo={274: 8}))
put("exif_tiff_o6_lzw", "tiff", save(src, "TIFF", compression="tiff_lzw", tiffinfo={274: 6}), transpose=True)
put("tiff_o6_lzw_no_transpose", "tiff", save(src, "TIFF", compression="tiff_lzw", tiffinfo={274: 6}))
put("exif_tiff_o2", "tiff", save(src, "TIFF", tiffinfo={274: 2}), transpose=True)

# --- PNG variants ---
rgba = src.convert("RGBA")
a = Image.linear_gradient("L").resize(src.size)
rgba.putalpha(a)
put("png_rgba", "png", save(rgba, "PNG"))
put("png_la", "png", save(rgba.convert("LA"), "PNG"))
put("png_1bit", "png", save(src.convert("1"), "PNG"))
pal = src.convert("P", palette=Image.ADAPTIVE, colors=16)
put("png_palette_trns", "png", save(pal, "PNG", transparency=3))
put("png_gray16", "png", save(src.convert("L").point(lambda v: v * 2).convert("I").point(lambda v: v * 3), "PNG"))


def png16(w, h, rows, color_type, extra=b""):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)) +
            (chunk(b"tRNS", extra) if extra else b"") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


w, h = src.size
px = src.load()
rows = [b"".join(struct.pack(">HHH", min(px[x, y][0] * 257 + x, 65535), px[x, y][1] * 256, px[x, y][2] * 255 + y) for x in range(w)) for y in range(h)]
put("png_rgb16", "png", png16(w, h, rows, 2))
rows = [b"".join(struct.pack(">HHHH", px[x, y][0] * 257, px[x, y][1] * 256, px[x, y][2] * 255, (x * 1000) & 0xffff) for x in range(w)) for y in range(h)]
put("png_rgba16", "png", png16(w, h, rows, 6))
rows = [b"".join(struct.pack(">H", (px[x, y][1] * (x + 1)) % 700) for x in range(w)) for y in range(h)]
put("png_gray16_trns", "png", png16(w, h, rows, 0, struct.pack(">H", 5)))

# --- GIF: transparency index, and a first frame smaller than the screen ---
g = save(pal, "GIF", transparency=3)
put("gif_trns", "gif", g)
gb = bytearray(g)
i = 13 + (3 * (1 << ((gb[10] & 7) + 1)) if gb[10] & 0x80 else 0)
while gb[i] == 0x21:  # skip extensions
    i += 2
    while gb[i]:
        i += gb[i] + 1
    i += 1
assert gb[i] == 0x2C
gb[6:10] = struct.pack("<HH", w + 9, h + 5)    # bigger logical screen
gb[i + 1:i + 5] = struct.pack("<HH", 4, 3)     # frame at (4, 3)
put("gif_partial_frame", "gif", bytes(gb))

# --- BMP, TIFF, WebP ---
put("bmp_24", "bmp", save(src, "BMP"))
put("bmp_8bit_palette", "bmp", save(pal, "BMP"))
put("bmp_32_rgba", "bmp", save(rgba, "BMP"))
put("tiff_lzw", "tiff", save(src, "TIFF", compression="tiff_lzw"))
put("tiff_gray", "tiff", save(src.convert("L"), "TIFF"))
put("tiff_rgba", "tiff", save(rgba, "TIFF", compression="tiff_adobe_deflate"))
put("webp_lossy", "webp", save(src, "WEBP", quality=80))
put("webp_lossy_even", "webp", save(src.crop((0, 0, 66, 44)), "WEBP", quality=70))
put("webp_lossless", "webp", save(src, "WEBP", lossless=True))
put("webp_lossy_alpha", "webp", save(rgba, "WEBP", quality=80))

# --- resampling: every PIL filter on several geometries ---
src.save(os.path.join(OUT, "resize", "src.png"))
resizes = []
for flt in range(6):
    for size in [(31, 17), (130, 101), (67, 20), (20, 45), (5, 3), (200, 7), (1, 1), (66, 46)]:
        name = "f%d_%dx%d" % (flt, size[0], size[1])
        src.resize(size, flt).save(os.path.join(OUT, "resize", name + ".png"))
        resizes.append({"filter": flt, "w": size[0], "h": size[1], "want": "resize/" + name + ".png"})
tiny = src.resize((3, 2), Image.BOX)
tiny.save(os.path.join(OUT, "resize", "tiny_src.png"))
for flt in range(6):
    name = "tiny_f%d_9x7" % flt
    tiny.resize((9, 7), flt).save(os.path.join(OUT, "resize", name + ".png"))
    resizes.append({"filter": flt, "w": 9, "h": 7, "want": "resize/" + name + ".png", "src": "resize/tiny_src.png"})

with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump({"pillow": Image.__version__, "decode": cases, "resize": resizes}, f, indent=1)
print(len(cases), "decode cases,", len(resizes), "resize cases")
