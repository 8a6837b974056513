package vision

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"regexp"
)

// EXIF orientation, as transformers.image_utils.load_image applies it through
// PIL.ImageOps.exif_transpose. The parsers here are deliberately small and bounded: they read one
// IFD (at most 1000 entries), never follow offsets outside the given bytes and never allocate in
// proportion to the input.

// tiffOrientation returns the Orientation tag (0x0112) of IFD0 of a TIFF structure (the payload
// of a JPEG APP1 "Exif\0\0" segment, a PNG eXIf chunk, a WebP EXIF chunk, or a TIFF file itself),
// or 0 when there is none or the structure is invalid.
func tiffOrientation(b []byte) int {
	if len(b) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch {
	case b[0] == 'I' && b[1] == 'I':
		bo = binary.LittleEndian
	case b[0] == 'M' && b[1] == 'M':
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(b[2:]) != 42 {
		return 0
	}
	off := int64(bo.Uint32(b[4:]))
	if off < 8 || off+2 > int64(len(b)) {
		return 0
	}
	n := int64(bo.Uint16(b[off:]))
	if n > 1000 {
		n = 1000
	}
	for i := int64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > int64(len(b)) {
			return 0
		}
		if bo.Uint16(b[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(b[e+2:]), bo.Uint32(b[e+4:])
		if count < 1 {
			return 0
		}
		var v int
		switch typ {
		case 3: // SHORT
			v = int(bo.Uint16(b[e+8:]))
		case 4: // LONG
			v = int(bo.Uint32(b[e+8:]))
		case 1: // BYTE
			v = int(b[e+8])
		default:
			return 0
		}
		if v < 1 || v > 8 {
			return 0
		}
		return v
	}
	return 0
}

var exifHeader = []byte("Exif\x00\x00")

// exifPayload strips an optional "Exif\0\0" prefix (PNG eXIf and WebP EXIF chunks written by some
// tools carry it; PIL accepts both).
func exifPayload(b []byte) []byte {
	return bytes.TrimPrefix(b, exifHeader)
}

// jpegOrientation walks the JPEG marker segments before the first SOS and returns the orientation
// from the first APP1 Exif segment (PIL keeps the first one), or 0.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0
		}
		m := b[i+1]
		if m == 0xFF { // fill byte
			i++
			continue
		}
		if m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			i += 2
			continue
		}
		if m == 0xDA || m == 0xD9 { // start of scan / end of image: no more headers
			return 0
		}
		l := int(binary.BigEndian.Uint16(b[i+2:]))
		if l < 2 || i+2+l > len(b) {
			return 0
		}
		seg := b[i+4 : i+2+l]
		if m == 0xE1 && bytes.HasPrefix(seg, exifHeader) {
			return tiffOrientation(seg[len(exifHeader):])
		}
		i += 2 + l
	}
	return 0
}

// pngOrientation returns the orientation of a PNG as Pillow 9.4's getexif sees it: from the
// eXIf chunk, else from an ImageMagick "Raw profile type exif" text chunk (hex), and if neither
// has the tag, from XMP ("XML:com.adobe.xmp" text chunk, tiff:Orientation). Returns 0 if none.
func pngOrientation(b []byte) int {
	var exif, raw, xmp []byte
	for i := 8; i+12 <= len(b); {
		l := int64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		end := int64(i) + 12 + l
		if l > 0x7fffffff || end > int64(len(b)) {
			break
		}
		data := b[i+8 : i+8+int(l)]
		switch typ {
		case "eXIf":
			if exif == nil {
				exif = data
			}
		case "tEXt", "zTXt", "iTXt":
			key, text := pngText(typ, data)
			switch key {
			case "Raw profile type exif":
				raw = text
			case "XML:com.adobe.xmp":
				xmp = text
			}
		case "IEND":
			i = len(b)
			continue
		}
		i = int(end)
	}
	o := 0
	switch {
	case exif != nil:
		o = tiffOrientation(exifPayload(exif))
	case raw != nil:
		o = tiffOrientation(exifPayload(rawProfileBytes(raw)))
	}
	if o == 0 && xmp != nil {
		o = xmpOrientation(xmp)
	}
	return o
}

// maxTextChunk bounds the decompressed size of a PNG text chunk we inspect.
const maxTextChunk = 1 << 20

// pngText returns the keyword and (decompressed, at most maxTextChunk bytes) text of a PNG
// tEXt, zTXt or iTXt chunk; nil text if it cannot be read.
func pngText(typ string, d []byte) (string, []byte) {
	k := bytes.IndexByte(d, 0)
	if k < 0 {
		return "", nil
	}
	key, rest := string(d[:k]), d[k+1:]
	if key != "Raw profile type exif" && key != "XML:com.adobe.xmp" {
		return key, nil
	}
	inflate := func(z []byte) []byte {
		r, err := zlib.NewReader(bytes.NewReader(z))
		if err != nil {
			return nil
		}
		out, _ := io.ReadAll(io.LimitReader(r, maxTextChunk))
		return out
	}
	switch typ {
	case "tEXt":
		return key, rest
	case "zTXt":
		if len(rest) < 1 {
			return key, nil
		}
		return key, inflate(rest[1:])
	default: // iTXt: compression flag, method, language\0, translated keyword\0, text
		if len(rest) < 2 {
			return key, nil
		}
		compressed, t := rest[0] == 1, rest[2:]
		for n := 0; n < 2; n++ {
			j := bytes.IndexByte(t, 0)
			if j < 0 {
				return key, nil
			}
			t = t[j+1:]
		}
		if compressed {
			return key, inflate(t)
		}
		return key, t
	}
}

// rawProfileBytes decodes ImageMagick's "Raw profile type exif" text: "\nexif\n  <length>\n"
// followed by hex digits over several lines (Pillow drops the first three lines).
func rawProfileBytes(t []byte) []byte {
	lines := bytes.SplitN(t, []byte("\n"), 4)
	if len(lines) < 4 {
		return nil
	}
	var out []byte
	var hi byte
	half := false
	for _, c := range lines[3] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			continue
		}
		if half {
			out = append(out, hi<<4|v)
		} else {
			hi = v
		}
		half = !half
	}
	return out
}

var xmpOrientationRE = regexp.MustCompile(`tiff:Orientation(="|>)([0-9])`)

// xmpOrientation finds tiff:Orientation in XMP text as Pillow does.
func xmpOrientation(x []byte) int {
	m := xmpOrientationRE.FindSubmatch(x)
	if m == nil {
		return 0
	}
	v := int(m[2][0] - '0')
	if v < 1 || v > 8 {
		return 0
	}
	return v
}

// webpOrientation returns the orientation from a WebP's EXIF chunk, or 0.
func webpOrientation(b []byte) int {
	if len(b) < 12 {
		return 0
	}
	i := 12
	for i+8 <= len(b) {
		l := int64(binary.LittleEndian.Uint32(b[i+4:]))
		if int64(i)+8+l > int64(len(b)) {
			return 0
		}
		if string(b[i:i+4]) == "EXIF" {
			return tiffOrientation(exifPayload(b[i+8 : i+8+int(l)]))
		}
		i += 8 + int(l) + int(l&1)
	}
	return 0
}

// orient returns img transformed for EXIF orientation o (1–8) as PIL.ImageOps.exif_transpose
// does: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
// 8 rotate 90° counter-clockwise. Other values return img unchanged.
func orient(img *RGB, o int) *RGB {
	if o < 2 || o > 8 {
		return img
	}
	w, h := img.W, img.H
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := NewRGB(ow, oh)
	for yo := 0; yo < oh; yo++ {
		for xo := 0; xo < ow; xo++ {
			var x, y int
			switch o {
			case 2:
				x, y = w-1-xo, yo
			case 3:
				x, y = w-1-xo, h-1-yo
			case 4:
				x, y = xo, h-1-yo
			case 5:
				x, y = yo, xo
			case 6:
				x, y = yo, h-1-xo
			case 7:
				x, y = w-1-yo, h-1-xo
			case 8:
				x, y = w-1-yo, xo
			}
			s, d := (y*w+x)*3, (yo*ow+xo)*3
			out.Pix[d], out.Pix[d+1], out.Pix[d+2] = img.Pix[s], img.Pix[s+1], img.Pix[s+2]
		}
	}
	return out
}
