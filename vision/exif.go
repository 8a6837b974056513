package vision

import (
	"bytes"
	"encoding/binary"
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

// pngOrientation returns the orientation from a PNG's eXIf chunk (before or after the image
// data: PIL reads both), or 0.
func pngOrientation(b []byte) int {
	i := 8
	for i+12 <= len(b) {
		l := int64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		end := int64(i) + 12 + l
		if l > 0x7fffffff || end > int64(len(b)) {
			return 0
		}
		if typ == "eXIf" {
			return tiffOrientation(exifPayload(b[i+8 : i+8+int(l)]))
		}
		if typ == "IEND" {
			return 0
		}
		i = int(end)
	}
	return 0
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
