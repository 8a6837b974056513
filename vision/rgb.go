// Package vision turns the bytes a client sends into the pixel tensors a Hugging Face vision model
// expects: it decodes images (JPEG, PNG, GIF, WebP, BMP, TIFF) under size limits, applies the EXIF
// orientation, converts to 8-bit RGB exactly as PIL's convert("RGB") does, and resizes, crops,
// rescales and normalises them as the HF image processors (BlipImageProcessor, ViTImageProcessor,
// CLIPImageProcessor, transformers 4.40) do with Pillow.
//
// The ViT encoder itself lives in the sub-package vision/vit.
package vision

import (
	"image"
	"image/color"
)

// RGB is an 8-bit RGB image stored HWC (row-major, 3 bytes per pixel, no padding), as
// numpy.asarray(PIL.Image.convert("RGB")) gives it. It implements image.Image.
type RGB struct {
	W, H int
	// Pix holds H*W*3 bytes: pixel (x, y) channel c is Pix[(y*W+x)*3+c].
	Pix []uint8
}

// NewRGB allocates a black w×h image.
func NewRGB(w, h int) *RGB {
	return &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
}

// ColorModel implements image.Image (color.RGBAModel; every pixel is opaque).
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image: (0,0)-(W,H).
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image. Points outside the image are transparent black.
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	i := (y*m.W + x) * 3
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff}
}

// ToRGB converts any image.Image to RGB the way PIL's convert("RGB") treats the equivalent PIL
// image: alpha is dropped without compositing (the stored colour of a transparent pixel is kept),
// gray is replicated, palettes are expanded, 16-bit colour keeps the high byte.
//
// Choices for Go's types that have no exact PIL twin:
//   - *image.NRGBA / *image.NRGBA64 (straight alpha, what Go's PNG decoder returns for images
//     with alpha): the stored colour is taken as is, alpha ignored — exactly PIL's RGBA→RGB.
//   - *image.RGBA / *image.RGBA64 and any other premultiplied colour: the colour is
//     un-premultiplied (c·0xffff/a) before taking the high byte, which recovers the straight
//     values PIL would have stored; a fully transparent pixel becomes black (its colour is lost).
//     For opaque pixels (the usual case) this is the identity.
//   - *image.Gray16: PIL opens 16-bit gray as mode "I" and its I→RGB conversion clips at 255,
//     so values above 255 become white. ToRGB reproduces that (it is what HF's models see).
//   - *image.CMYK: Pillow's cmyk2rgb, R = 255−K − round((C·(255−K))/255), see cmykToRGB.
//   - *image.YCbCr: each pixel's own chroma sample (nearest, as image.YCbCr.At) with libjpeg's
//     full-range fixed-point conversion. Decode does better for JPEG and WebP files: it upsamples
//     chroma as libjpeg / libwebp do.
func ToRGB(img image.Image) *RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := NewRGB(w, h)
	p := out.Pix
	switch m := img.(type) {
	case *RGB:
		copy(p, m.Pix)
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			for x := 0; x < w; x++ {
				i, j := (y*w+x)*3, x*4
				p[i], p[i+1], p[i+2] = row[j], row[j+1], row[j+2]
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				i, j := (y*w+x)*3, x*4
				a := row[j+3]
				if a == 0xff {
					p[i], p[i+1], p[i+2] = row[j], row[j+1], row[j+2]
					continue
				}
				c := color.RGBA{row[j], row[j+1], row[j+2], a}
				p[i], p[i+1], p[i+2] = unpremul(c)
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				i := (y*w + x) * 3
				v := row[x]
				p[i], p[i+1], p[i+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				i := (y*w + x) * 3
				v := uint16(row[2*x])<<8 | uint16(row[2*x+1])
				if v > 255 {
					v = 255
				}
				p[i], p[i+1], p[i+2] = uint8(v), uint8(v), uint8(v)
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				i, j := (y*w+x)*3, x*8
				p[i], p[i+1], p[i+2] = row[j], row[j+2], row[j+4]
			}
		}
	case *image.Paletted:
		lut := paletteRGB(m.Palette)
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				i := (y*w + x) * 3
				c := lut[row[x]]
				p[i], p[i+1], p[i+2] = c[0], c[1], c[2]
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				i, j := (y*w+x)*3, x*4
				p[i], p[i+1], p[i+2] = cmykToRGB(row[j], row[j+1], row[j+2], row[j+3])
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(x+b.Min.X, y+b.Min.Y)
				ci := m.COffset(x+b.Min.X, y+b.Min.Y)
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = jpegYCCToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = colorToRGB(img.At(x+b.Min.X, y+b.Min.Y))
			}
		}
	}
	return out
}

// paletteRGB expands a palette to 256 RGB entries (indices past the palette map to black, as
// PIL's zero-filled palette does).
func paletteRGB(pal color.Palette) [256][3]uint8 {
	var lut [256][3]uint8
	for i, c := range pal {
		if i >= 256 {
			break
		}
		r, g, b := colorToRGB(c)
		lut[i] = [3]uint8{r, g, b}
	}
	return lut
}

// colorToRGB returns the straight (non-premultiplied) 8-bit colour of c, alpha dropped.
func colorToRGB(c color.Color) (r, g, b uint8) {
	switch v := c.(type) {
	case color.NRGBA:
		return v.R, v.G, v.B
	case color.NRGBA64:
		return uint8(v.R >> 8), uint8(v.G >> 8), uint8(v.B >> 8)
	case color.Gray:
		return v.Y, v.Y, v.Y
	case color.RGBA:
		if v.A == 0xff {
			return v.R, v.G, v.B
		}
		return unpremul(v)
	case color.CMYK:
		return cmykToRGB(v.C, v.M, v.Y, v.K)
	case color.YCbCr:
		return jpegYCCToRGB(v.Y, v.Cb, v.Cr)
	}
	return unpremul(c)
}

// unpremul un-premultiplies a premultiplied colour and returns the high bytes.
func unpremul(c color.Color) (r, g, b uint8) {
	r32, g32, b32, a := c.RGBA()
	if a == 0 {
		return 0, 0, 0
	}
	if a != 0xffff {
		r32 = r32 * 0xffff / a
		g32 = g32 * 0xffff / a
		b32 = b32 * 0xffff / a
	}
	return uint8(r32 >> 8), uint8(g32 >> 8), uint8(b32 >> 8)
}

// cmykToRGB is Pillow's cmyk2rgb (Convert.c): nk = 255−K; R = nk − MULDIV255(C, nk), where
// MULDIV255(a, b) = ((a·b+128)>>8 + a·b+128)>>8 is a·b/255 rounded. c, m, y, k are ink amounts
// (0 = no ink), as image.CMYK stores them and as PIL stores a CMYK image after undoing the
// Adobe inversion of the JPEG samples.
func cmykToRGB(c, m, y, k uint8) (r, g, b uint8) {
	nk := 255 - int(k)
	f := func(v uint8) uint8 {
		t := int(v)*nk + 128
		return uint8(nk - ((t>>8)+t)>>8)
	}
	return f(c), f(m), f(y)
}
