package vision

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"unicode/utf8"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// Errors returned by Decode. Every error Decode returns wraps exactly one of ErrTooLarge,
// ErrUnsupportedFormat or ErrCorrupt (test with errors.Is); ErrEmpty also matches
// ErrUnsupportedFormat. The wrapping message says what was wrong and what to do.
var (
	// ErrTooLarge: the encoded bytes or the pixel count exceed the Limits.
	ErrTooLarge = errors.New("image too large")
	// ErrUnsupportedFormat: the bytes are not an image in a format Decode reads.
	ErrUnsupportedFormat = errors.New("unsupported image format")
	// ErrEmpty: no bytes at all (wraps ErrUnsupportedFormat).
	ErrEmpty = fmt.Errorf("%w: empty image data", ErrUnsupportedFormat)
	// ErrCorrupt: the format is recognised but the data is truncated or malformed.
	ErrCorrupt = errors.New("corrupt image")
)

// Limits bound what Decode accepts. A field ≤ 0 means its default.
type Limits struct {
	// MaxBytes is the largest encoded image accepted (default 20 MiB).
	MaxBytes int64
	// MaxPixels is the largest width×height accepted, checked from the header before any
	// pixel is decoded (default 40 MP). It is also the memory bound: a decode allocates
	// about 5–12 bytes per pixel in total (measured: JPEG 4:2:0 8, JPEG 4:4:4 12, PNG RGBA 8,
	// WebP 5), so up to ~500 MB for a 40 MP image — bound concurrent decodes accordingly.
	MaxPixels int64
}

// Default limits.
const (
	DefaultMaxBytes  = 20 << 20
	DefaultMaxPixels = 40_000_000
)

// DefaultLimits returns the default limits: 20 MiB encoded, 40 megapixels.
func DefaultLimits() Limits {
	return Limits{MaxBytes: DefaultMaxBytes, MaxPixels: DefaultMaxPixels}
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	return l
}

// Format names returned by SniffFormat.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatGIF  = "gif"
	FormatWebP = "webp"
	FormatBMP  = "bmp"
	FormatTIFF = "tiff"
)

// SniffFormat identifies the image format from the first bytes (never from a file name) and
// returns one of the Format* names, or "" if the bytes are not a supported format.
func SniffFormat(data []byte) string {
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		return FormatJPEG
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a")):
		return FormatGIF
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return FormatWebP
	case bytes.HasPrefix(data, []byte("BM")):
		return FormatBMP
	case bytes.HasPrefix(data, []byte("II*\x00")) || bytes.HasPrefix(data, []byte("MM\x00*")):
		return FormatTIFF
	}
	return ""
}

const supportedList = "JPEG, PNG, GIF, WebP, BMP, TIFF"

// describeUnknown says what unrecognised bytes look like, for the error message.
func describeUnknown(data []byte) string {
	if len(data) >= 12 && string(data[4:8]) == "ftyp" {
		return fmt.Sprintf("data is an ISO media file of brand %q (HEIC/AVIF/MP4), which is not supported; convert it to JPEG or PNG", data[8:12])
	}
	head := data
	if len(head) > 16 {
		head = head[:16]
	}
	text := utf8.Valid(head)
	if !text && len(data) > len(head) {
		// The first 16 bytes may end inside a character: valid text up
		// to the start of an incomplete last character.
		for cut := 1; cut <= 3 && !text; cut++ {
			text = utf8.Valid(head[:len(head)-cut]) && utf8.RuneStart(head[len(head)-cut]) && !utf8.FullRune(head[len(head)-cut:])
		}
	}
	for _, c := range head {
		if c < 0x09 || (c > 0x0d && c < 0x20) {
			text = false
		}
	}
	if text {
		s := string(head)
		if len(data) > 16 {
			s += "…"
		}
		return fmt.Sprintf("data starts with %q: it looks like text, not an image", s)
	}
	return fmt.Sprintf("data starts with bytes % x, which match no supported format", head)
}

func formatMP(p int64) string {
	if p >= 10_000_000 {
		return fmt.Sprintf("%d MP", (p+500_000)/1_000_000)
	}
	return fmt.Sprintf("%.1f MP", float64(p)/1e6)
}

func formatBytes(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

var formatNames = map[string]string{
	FormatJPEG: "JPEG", FormatPNG: "PNG", FormatGIF: "GIF", FormatWebP: "WebP",
	FormatBMP: "BMP", FormatTIFF: "TIFF",
}

// errDecoderPanic marks a panic inside a third-party decoder, recovered by Decode. The fuzz
// target fails on it so such inputs are found; in production the request just gets ErrCorrupt.
var errDecoderPanic = errors.New("decoder panic")

// Decode decodes one image and returns it as RGB with its EXIF orientation applied.
//
// Steps: reject empty or over-MaxBytes input; sniff the format from the bytes; read only the
// header (DecodeConfig) and reject images over MaxPixels before any pixel is decoded; decode
// (JPEG baseline/progressive/gray/CMYK/YCCK, PNG incl. alpha, palette and 16-bit, GIF first frame
// only, WebP lossy/lossless, BMP, TIFF); convert to RGB as PIL's convert("RGB") does (see ToRGB;
// JPEG is decoded as libjpeg-turbo decodes it, bit for bit, see jpegdec.go; lossy WebP is
// upsampled and converted as libwebp does); apply the EXIF
// orientation (JPEG APP1 Exif; PNG eXIf, "Raw profile type exif" or XMP; WebP EXIF) as
// transformers.image_utils.load_image does with ImageOps.exif_transpose. TIFF follows Pillow
// 9.4 exactly, which applies a TIFF's Orientation tag once while loading and once more in
// exif_transpose.
//
// Decode is safe for concurrent use. Memory while decoding is bounded by lim.MaxPixels (a few
// bytes per pixel, see Limits); input that cannot hold the image its header claims is rejected
// before the pixel buffers are allocated.
func Decode(data []byte, lim Limits) (*RGB, error) {
	return decode(data, lim, true)
}

// Info is what Inspect reads from an image header.
type Info struct {
	Format        string // one of the Format* names
	Width, Height int    // as stored (before EXIF orientation)
}

// Inspect sniffs the format and reads only the header, applying the same checks and returning
// the same errors as Decode does before it decodes pixels. It allocates almost nothing.
func Inspect(data []byte, lim Limits) (Info, error) {
	lim = lim.withDefaults()
	format, cfg, err := checkHeader(data, lim)
	if err != nil {
		return Info{}, err
	}
	return Info{Format: format, Width: cfg.Width, Height: cfg.Height}, nil
}

// checkHeader runs Decode's checks up to and including the pixel limit.
func checkHeader(data []byte, lim Limits) (string, image.Config, error) {
	if len(data) == 0 {
		return "", image.Config{}, fmt.Errorf("%w (0 bytes): send the image file's bytes", ErrEmpty)
	}
	if int64(len(data)) > lim.MaxBytes {
		return "", image.Config{}, fmt.Errorf("%w: encoded image is %s, over the %s limit; send a smaller file or raise --max-image-bytes",
			ErrTooLarge, formatBytes(int64(len(data))), formatBytes(lim.MaxBytes))
	}
	format := SniffFormat(data)
	if format == "" {
		return "", image.Config{}, fmt.Errorf("%w: %s; supported formats: %s", ErrUnsupportedFormat, describeUnknown(data), supportedList)
	}
	name := formatNames[format]
	cfg, err := safeDecodeConfig(format, data)
	if err != nil {
		return "", image.Config{}, corrupt(name, "header", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return "", image.Config{}, fmt.Errorf("%w: %s header gives a %d×%d image", ErrCorrupt, name, cfg.Width, cfg.Height)
	}
	if err := checkPixels(name, int64(cfg.Width), int64(cfg.Height), lim); err != nil {
		return "", image.Config{}, err
	}
	return format, cfg, nil
}

// DecodeNoOrient is Decode without the EXIF orientation step: the pixels as stored, which is what
// an HF image processor sees when handed PIL.Image.open(f) directly (not through load_image).
func DecodeNoOrient(data []byte, lim Limits) (*RGB, error) {
	return decode(data, lim, false)
}

func decode(data []byte, lim Limits, applyOrientation bool) (*RGB, error) {
	lim = lim.withDefaults()
	format, cfg, err := checkHeader(data, lim)
	if err != nil {
		return nil, err
	}
	name := formatNames[format]

	var out *RGB
	var img image.Image
	if format == FormatJPEG {
		// Our libjpeg-exact decoder; image/jpeg only for variants it does not implement (or if it
		// panics, which would be a bug).
		var jerr error
		out, jerr = safeDecodeJPEG(data, lim.MaxPixels)
		if jerr != nil && !errors.Is(jerr, errJPEGUnsupported) && !errors.Is(jerr, errDecoderPanic) {
			return nil, corrupt(name, "data", jerr)
		}
		if jerr != nil {
			out = nil
			img, err = safeDecode(format, data)
			if err != nil {
				if errors.Is(jerr, errDecoderPanic) {
					err = jerr
				}
				return nil, corrupt(name, "data", err)
			}
		}
	} else {
		var perr error
		switch format {
		case FormatPNG:
			perr = pngPlausible(data, cfg)
		case FormatBMP:
			perr = bmpPlausible(data, cfg)
		case FormatWebP:
			// VP8X flags bit 1: animation, which x/image/webp does not decode.
			if len(data) >= 21 && string(data[12:16]) == "VP8X" && data[20]&0x02 != 0 {
				return nil, fmt.Errorf("%w: animated WebP is not supported; send a still image (e.g. its first frame as PNG)", ErrUnsupportedFormat)
			}
		}
		if perr != nil {
			return nil, corrupt(name, "data", perr)
		}
		img, err = safeDecode(format, data)
		if err != nil {
			return nil, corrupt(name, "data", err)
		}
	}
	if out != nil {
		img = out
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("%w: %s decoded to an empty %d×%d image", ErrCorrupt, name, b.Dx(), b.Dy())
	}
	if err := checkPixels(name, int64(b.Dx()), int64(b.Dy()), lim); err != nil {
		return nil, err
	}

	switch format {
	case FormatJPEG:
		if m, ok := img.(*image.YCbCr); ok && out == nil {
			out = jpegYCbCrToRGB(m)
		}
	case FormatWebP:
		switch m := img.(type) {
		case *image.YCbCr:
			out = webpYCbCrToRGB(m)
		case *image.NYCbCrA:
			out = webpYCbCrToRGB(&m.YCbCr)
		}
	case FormatGIF:
		out = gifToRGB(data, img, cfg)
	case FormatPNG:
		if isPNGGray16(data) {
			if m, ok := img.(*image.NRGBA64); ok { // 16-bit gray with tRNS: PIL mode "I" clips
				g := image.NewGray16(m.Rect)
				for i := 0; i < len(g.Pix)/2; i++ {
					g.Pix[2*i], g.Pix[2*i+1] = m.Pix[8*i], m.Pix[8*i+1]
				}
				img = g
			}
		}
	}
	if out == nil {
		out = ToRGB(img)
	}

	if format == FormatTIFF {
		// Pillow 9.4 already rotates a TIFF with an Orientation tag while loading it
		// (TiffImagePlugin's libtiff path), so Image.open(f).convert("RGB") is oriented once —
		// and load_image's exif_transpose then applies the same tag a second time. Both are
		// reproduced, since that is what the HF model sees.
		o := tiffOrientation(data)
		out = orient(out, o)
		if applyOrientation {
			out = orient(out, o)
		}
		return out, nil
	}
	if !applyOrientation {
		return out, nil
	}
	var o int
	switch format {
	case FormatJPEG:
		o = jpegOrientation(data)
	case FormatPNG:
		o = pngOrientation(data)
	case FormatWebP:
		o = webpOrientation(data)
	}
	return orient(out, o), nil
}

func checkPixels(name string, w, h int64, lim Limits) error {
	if p := w * h; p > lim.MaxPixels {
		return fmt.Errorf("%w: %s image is %d×%d = %s, over the %s limit; send a smaller image or raise --max-image-pixels",
			ErrTooLarge, name, w, h, formatMP(p), formatMP(lim.MaxPixels))
	}
	return nil
}

// isUnsupported reports whether a decoder error means "valid file, variant not implemented".
func isUnsupported(err error) bool {
	var je jpeg.UnsupportedError
	var pe png.UnsupportedError
	var te tiff.UnsupportedError
	return errors.As(err, &je) || errors.As(err, &pe) || errors.As(err, &te) ||
		errors.Is(err, bmp.ErrUnsupported) || errors.Is(err, errJPEGUnsupported)
}

func corrupt(name, part string, err error) error {
	if isUnsupported(err) {
		return fmt.Errorf("%w: this %s variant is not supported (%v); convert the image to PNG or baseline JPEG",
			ErrUnsupportedFormat, name, err)
	}
	if errors.Is(err, errDecoderPanic) {
		return fmt.Errorf("%w: %s decoder failed on malformed %s: %v", ErrCorrupt, name, part, err)
	}
	hint := ""
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		hint = " (the file is truncated)"
	}
	return fmt.Errorf("%w: cannot decode %s %s%s: %v; the file is damaged or incomplete, re-encode or re-send it",
		ErrCorrupt, name, part, hint, err)
}

func safeDecodeConfig(format string, data []byte) (cfg image.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errDecoderPanic, r)
		}
	}()
	r := bytes.NewReader(data)
	switch format {
	case FormatJPEG:
		return jpeg.DecodeConfig(r)
	case FormatPNG:
		return png.DecodeConfig(r)
	case FormatGIF:
		return gif.DecodeConfig(r)
	case FormatWebP:
		return webp.DecodeConfig(r)
	case FormatBMP:
		return bmp.DecodeConfig(r)
	case FormatTIFF:
		return tiff.DecodeConfig(r)
	}
	return image.Config{}, fmt.Errorf("unknown format %q", format)
}

func safeDecodeJPEG(data []byte, maxPixels int64) (img *RGB, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: %v", errDecoderPanic, r)
		}
	}()
	return decodeJPEG(data, maxPixels)
}

func safeDecode(format string, data []byte) (img image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: %v", errDecoderPanic, r)
		}
	}()
	r := bytes.NewReader(data)
	switch format {
	case FormatJPEG:
		return jpeg.Decode(r)
	case FormatPNG:
		return png.Decode(r)
	case FormatGIF:
		return gif.Decode(r) // first frame only (DecodeAll would decode every frame)
	case FormatWebP:
		return webp.Decode(r)
	case FormatBMP:
		return bmp.Decode(r)
	case FormatTIFF:
		return tiff.Decode(r)
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// pngPlausible rejects a PNG whose compressed image data is too short to hold the image its
// header claims (deflate expands at most 1032:1), before image/png allocates the image. Such a
// file is truncated; without this check a 300-byte file could make the decoder allocate the full
// MaxPixels-sized image before failing.
func pngPlausible(data []byte, cfg image.Config) error {
	var idat int64
	for i := 8; i+8 <= len(data); {
		l := int64(binary.BigEndian.Uint32(data[i:]))
		if string(data[i+4:i+8]) == "IDAT" {
			idat += min(l, int64(len(data)-i-8))
		}
		i += 12 + int(min(l, int64(len(data))))
	}
	if len(data) < 26 {
		return io.ErrUnexpectedEOF
	}
	depth, ctype := int64(data[24]), data[25]
	channels := map[byte]int64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
	if channels == 0 {
		return nil // let image/png report the bad colour type
	}
	rowBytes := (int64(cfg.Width)*channels*depth + 7) / 8
	raw := int64(cfg.Height) * (1 + rowBytes)
	if idat*1032+64 < raw {
		return fmt.Errorf("%w: %d bytes of compressed image data cannot hold a %d×%d image (%d bytes raw)",
			io.ErrUnexpectedEOF, idat, cfg.Width, cfg.Height, raw)
	}
	return nil
}

// bmpPlausible rejects an uncompressed BMP shorter than its pixel array, before x/image/bmp
// allocates the image.
func bmpPlausible(data []byte, cfg image.Config) error {
	if len(data) < 34 {
		return nil // let the decoder report it
	}
	off := int64(binary.LittleEndian.Uint32(data[10:]))
	bpp := int64(binary.LittleEndian.Uint16(data[28:]))
	comp := binary.LittleEndian.Uint32(data[30:])
	if comp != 0 && comp != 3 { // compressed variants: x/image/bmp rejects them anyway
		return nil
	}
	stride := (int64(cfg.Width)*bpp + 31) / 32 * 4
	if need := off + stride*int64(cfg.Height); int64(len(data)) < need {
		return fmt.Errorf("%w: the file has %d bytes, its %d×%d %d-bit pixel array needs %d",
			io.ErrUnexpectedEOF, len(data), cfg.Width, cfg.Height, bpp, need)
	}
	return nil
}

// isPNGGray16 reports whether the PNG's IHDR says 16-bit grayscale without alpha (colour type 0),
// which PIL opens as mode "I".
func isPNGGray16(data []byte) bool {
	return len(data) >= 26 && string(data[12:16]) == "IHDR" && data[24] == 16 && data[25] == 0
}

// gifToRGB renders the first GIF frame as PIL does for frame 0: a canvas of the logical screen
// size filled with the transparency index (else index 0), the frame drawn at its position, and
// every index mapped through the frame's palette with its stored colour — Go's decoder replaces
// the transparent entry by transparent black, PIL keeps the entry's RGB, so the raw palette is
// re-read from the file.
func gifToRGB(data []byte, img image.Image, cfg image.Config) *RGB {
	m, ok := img.(*image.Paletted)
	if !ok {
		return nil
	}
	raw, trans := gifFirstFramePalette(data)
	lut := paletteRGB(m.Palette)
	if len(raw) == len(m.Palette) {
		for i, c := range raw {
			lut[i] = c
		}
	}
	fill := uint8(0)
	if trans >= 0 {
		fill = uint8(trans)
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 || !m.Rect.In(image.Rect(0, 0, w, h)) {
		w, h = m.Rect.Max.X, m.Rect.Max.Y
	}
	out := NewRGB(w, h)
	fc := lut[fill]
	for i := 0; i < w*h; i++ {
		out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = fc[0], fc[1], fc[2]
	}
	for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
		if y < 0 || y >= h {
			continue
		}
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := m.Rect.Min.X; x < m.Rect.Max.X; x++ {
			if x < 0 || x >= w {
				continue
			}
			c := lut[row[x-m.Rect.Min.X]]
			d := (y*w + x) * 3
			out.Pix[d], out.Pix[d+1], out.Pix[d+2] = c[0], c[1], c[2]
		}
	}
	return out
}

// gifFirstFramePalette walks the GIF blocks up to the first image descriptor and returns the
// palette that frame uses (local, else global) with its raw RGB entries, and the transparency
// index from the graphic control extension before it (−1 if none). It returns nil on anything
// unexpected. Bounded: it only skips over sub-blocks.
func gifFirstFramePalette(b []byte) ([][3]uint8, int) {
	if len(b) < 13 {
		return nil, -1
	}
	readTable := func(off, flags int) ([][3]uint8, int) {
		if flags&0x80 == 0 {
			return nil, off
		}
		n := 1 << ((flags & 7) + 1)
		if off+3*n > len(b) {
			return nil, -1
		}
		t := make([][3]uint8, n)
		for i := range t {
			t[i] = [3]uint8{b[off+3*i], b[off+3*i+1], b[off+3*i+2]}
		}
		return t, off + 3*n
	}
	global, i := readTable(13, int(b[10]))
	if i < 0 {
		return nil, -1
	}
	trans := -1
	for i < len(b) {
		switch b[i] {
		case 0x21: // extension
			if i+2 > len(b) {
				return nil, -1
			}
			label := b[i+1]
			i += 2
			if label == 0xF9 && i+6 <= len(b) && b[i] == 4 {
				if b[i+1]&1 != 0 {
					trans = int(b[i+4])
				} else {
					trans = -1
				}
			}
			for i < len(b) && b[i] != 0 { // sub-blocks
				i += int(b[i]) + 1
			}
			i++
		case 0x2C: // image descriptor
			if i+10 > len(b) {
				return nil, -1
			}
			local, _ := readTable(i+10, int(b[i+9]))
			if local != nil {
				return local, trans
			}
			if b[i+9]&0x80 != 0 {
				return nil, -1
			}
			return global, trans
		default:
			return nil, -1
		}
	}
	return nil, -1
}
