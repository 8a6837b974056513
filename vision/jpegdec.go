package vision

import (
	"errors"
	"fmt"
)

// A JPEG decoder that reproduces libjpeg-turbo's output (what PIL returns) bit for bit on
// ordinary files: Huffman-coded baseline, extended and progressive JPEG, 8-bit, 1, 3 or 4
// components, libjpeg's "islow" integer IDCT (jidctint.c: LL&M with 13-bit constants and 2 extra
// bits in the first pass), its fancy chroma upsampling (jpeg.go) and its colour conversions as PIL
// requests them. Go's image/jpeg uses a different IDCT, which leaves up to 3 levels of difference
// per pixel and about 1 level after resizing — more than the preprocessing target allows.
//
// Decode falls back to image/jpeg only when this decoder reports errJPEGUnsupported (arithmetic
// coding, 12-bit, DNL, odd sampling) or panics (a bug; recovered). Memory: 2 bytes per
// coefficient (int16, ≈2 bytes per pixel per full-resolution component) plus 1 byte per sample.

var errJPEGUnsupported = errors.New("jpeg: unsupported variant")

var errJPEGTruncated = errors.New("jpeg: entropy-coded data ends early (truncated file)")

// errJPEGHostile marks inputs rejected for the work they would cause; Decode does not retry them
// with image/jpeg.
var errJPEGHostile = errors.New("jpeg: refusing to decode")

// maxJPEGScans bounds the number of scans (SOS segments). A progressive AC scan can cover every
// block of a component in a few bytes (end-of-band runs), so without a bound a 20 MiB file could
// make the decoder walk a 40 MP image millions of times. libjpeg-turbo recommends the same kind of
// limit (its -maxscans option); normal files have 1 (baseline) to about 12 (progressive) scans.
const maxJPEGScans = 500

// zigzag[i] is the natural (row-major) index of the i-th coefficient in zig-zag order.
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

type huffTable struct {
	valid   bool
	maxcode [18]int32 // maxcode[l]: largest code of length l, −1 if none
	valptr  [17]int32 // index into vals of the first code of length l
	mincode [17]int32
	vals    []uint8
	// look maps the next lookBits bits to (code length << 8 | value) for codes of at most
	// lookBits bits, 0 otherwise (then the decoder walks the code bit by bit).
	look [1 << lookBits]uint16
}

const lookBits = 9

func buildHuff(counts [16]int, vals []uint8) (huffTable, error) {
	var h huffTable
	h.vals = vals
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		if n > 0 {
			h.valptr[l] = k
			h.mincode[l] = code
			code += n
			k += n
			h.maxcode[l] = code - 1
		} else {
			h.maxcode[l] = -1
		}
		if code > 1<<l {
			return h, errors.New("jpeg: bad Huffman table")
		}
		code <<= 1
	}
	h.maxcode[17] = 0x7fffffff
	h.valid = true
	// Fill the lookahead table from the canonical codes.
	code, k = 0, 0
	for l := 1; l <= lookBits; l++ {
		for i := 0; i < counts[l-1]; i++ {
			if int(k) < len(vals) {
				shift := lookBits - l
				for j := 0; j < 1<<shift; j++ {
					h.look[int(code)<<shift|j] = uint16(l)<<8 | uint16(vals[k])
				}
			}
			code++
			k++
		}
		code <<= 1
	}
	return h, nil
}

type jpegComponent struct {
	id, h, v, tq int
	bw, bh       int     // blocks per line / column allocated (padded to whole MCUs)
	coef         []int16 // bw*bh*64, natural order
	quant        *[64]uint16
	dcPred       int32
	dcTable      int
	acTable      int
}

type jpegDecoder struct {
	data          []byte
	pos           int
	width, height int
	progressive   bool
	comps         []jpegComponent
	hmax, vmax    int
	mcusX, mcusY  int
	qt            [4][64]uint16
	qtValid       [4]bool
	dc, ac        [4]huffTable
	restart       int
	adobe         bool
	adobeXform    int
	jfif          bool
	eobrun        int32

	// bit reader
	bits   uint64
	nbits  int
	marker bool // hit a marker (or end of data): no more entropy bytes
}

func (d *jpegDecoder) u16(i int) int { return int(d.data[i])<<8 | int(d.data[i+1]) }

// decodeJPEG decodes data to RGB as libjpeg + PIL's convert("RGB") do. maxPixels bounds the
// frame size (checked again here; the caller also checks the header).
func decodeJPEG(data []byte, maxPixels int64) (*RGB, error) {
	d := &jpegDecoder{data: data}
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, errors.New("jpeg: missing SOI marker")
	}
	d.pos = 2
	sawFrame := false
	scans := 0
	for {
		m, err := d.nextMarker()
		if err != nil {
			// A file that ends after complete scans without its EOI marker is accepted, as
			// libjpeg (with a warning) and PIL do.
			if errors.Is(err, errJPEGTruncated) && scans > 0 && d.allComponentsCoded() {
				return d.output()
			}
			return nil, err
		}
		switch {
		case m == 0xD9: // EOI
			if !sawFrame || d.comps[0].coef == nil {
				return nil, errors.New("jpeg: no image data before EOI")
			}
			return d.output()
		case m >= 0xD0 && m <= 0xD7, m == 0x01:
			continue // stray RST/TEM: no length
		}
		if d.pos+2 > len(d.data) {
			return nil, errJPEGTruncated
		}
		l := d.u16(d.pos)
		if l < 2 || d.pos+l > len(d.data) {
			return nil, fmt.Errorf("jpeg: marker %02X segment length %d runs past the end of the data", m, l)
		}
		seg := d.data[d.pos+2 : d.pos+l]
		d.pos += l
		switch {
		case m == 0xC0 || m == 0xC1 || m == 0xC2:
			if sawFrame {
				return nil, errors.New("jpeg: more than one frame (SOF) marker")
			}
			sawFrame = true
			d.progressive = m == 0xC2
			if err := d.parseSOF(seg, maxPixels); err != nil {
				return nil, err
			}
		case m == 0xC3 || (m >= 0xC5 && m <= 0xCF && m != 0xC8 && m != 0xCC):
			return nil, fmt.Errorf("%w: SOF%d (lossless, hierarchical or arithmetic coding)", errJPEGUnsupported, m-0xC0)
		case m == 0xC4:
			if err := d.parseDHT(seg); err != nil {
				return nil, err
			}
		case m == 0xDB:
			if err := d.parseDQT(seg); err != nil {
				return nil, err
			}
		case m == 0xDD:
			if len(seg) < 2 {
				return nil, errors.New("jpeg: bad DRI segment")
			}
			d.restart = int(seg[0])<<8 | int(seg[1])
		case m == 0xDA:
			if !sawFrame {
				return nil, errors.New("jpeg: scan before frame header")
			}
			scans++
			if scans > maxJPEGScans {
				return nil, fmt.Errorf("%w: more than %d scans (real encoders write at most a few dozen); each scan walks the whole image, so this file would take very long to decode", errJPEGHostile, maxJPEGScans)
			}
			if err := d.scan(seg); err != nil {
				return nil, err
			}
		case m == 0xDC:
			return nil, fmt.Errorf("%w: DNL marker", errJPEGUnsupported)
		case m == 0xE0:
			if len(seg) >= 5 && string(seg[:5]) == "JFIF\x00" {
				d.jfif = true
			}
		case m == 0xEE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe = true
				d.adobeXform = int(seg[11])
			}
		}
	}
}

func (d *jpegDecoder) allComponentsCoded() bool {
	for i := range d.comps {
		if d.comps[i].coef == nil {
			return false
		}
	}
	return len(d.comps) > 0
}

// nextMarker skips to the next marker (libjpeg skips garbage bytes too) and returns its code.
func (d *jpegDecoder) nextMarker() (byte, error) {
	for {
		for d.pos < len(d.data) && d.data[d.pos] != 0xFF {
			d.pos++
		}
		for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return 0, errJPEGTruncated
		}
		m := d.data[d.pos]
		d.pos++
		if m != 0 {
			return m, nil
		}
	}
}

func (d *jpegDecoder) parseSOF(s []byte, maxPixels int64) error {
	if len(s) < 6 {
		return errors.New("jpeg: short SOF segment")
	}
	if s[0] != 8 {
		return fmt.Errorf("%w: %d-bit samples", errJPEGUnsupported, s[0])
	}
	d.height, d.width = int(s[1])<<8|int(s[2]), int(s[3])<<8|int(s[4])
	n := int(s[5])
	if d.height == 0 {
		return fmt.Errorf("%w: height defined by DNL", errJPEGUnsupported)
	}
	if d.width == 0 || int64(d.width)*int64(d.height) > maxPixels {
		return fmt.Errorf("jpeg: bad frame size %d×%d", d.width, d.height)
	}
	if n != 1 && n != 3 && n != 4 {
		return fmt.Errorf("%w: %d components", errJPEGUnsupported, n)
	}
	if len(s) < 6+3*n {
		return errors.New("jpeg: short SOF segment")
	}
	d.comps = make([]jpegComponent, n)
	d.hmax, d.vmax = 1, 1
	for i := range d.comps {
		c := &d.comps[i]
		c.id, c.h, c.v, c.tq = int(s[6+3*i]), int(s[7+3*i]>>4), int(s[7+3*i]&15), int(s[8+3*i])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return errors.New("jpeg: bad component sampling factors or quantisation table")
		}
		if n == 1 {
			c.h, c.v = 1, 1
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	for i := range d.comps {
		c := &d.comps[i]
		if d.hmax%c.h != 0 || d.vmax%c.v != 0 {
			return fmt.Errorf("%w: fractional sampling factors", errJPEGUnsupported)
		}
	}
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	for i := range d.comps {
		c := &d.comps[i]
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
	}
	return nil
}

func (d *jpegDecoder) parseDQT(s []byte) error {
	for len(s) > 0 {
		pq, tq := s[0]>>4, s[0]&15
		if tq > 3 || pq > 1 {
			return errors.New("jpeg: bad DQT segment")
		}
		n := 64 * (1 + int(pq))
		if len(s) < 1+n {
			return errors.New("jpeg: short DQT segment")
		}
		for i := 0; i < 64; i++ {
			var v uint16
			if pq == 0 {
				v = uint16(s[1+i])
			} else {
				v = uint16(s[1+2*i])<<8 | uint16(s[2+2*i])
			}
			d.qt[tq][zigzag[i]] = v
		}
		d.qtValid[tq] = true
		s = s[1+n:]
	}
	return nil
}

func (d *jpegDecoder) parseDHT(s []byte) error {
	for len(s) > 0 {
		if len(s) < 17 {
			return errors.New("jpeg: short DHT segment")
		}
		tc, th := s[0]>>4, s[0]&15
		if tc > 1 || th > 3 {
			return errors.New("jpeg: bad DHT segment")
		}
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(s[1+i])
			total += counts[i]
		}
		if total > 256 || len(s) < 17+total {
			return errors.New("jpeg: bad DHT segment")
		}
		h, err := buildHuff(counts, append([]uint8(nil), s[17:17+total]...))
		if err != nil {
			return err
		}
		if tc == 0 {
			d.dc[th] = h
		} else {
			d.ac[th] = h
		}
		s = s[17+total:]
	}
	return nil
}

// --- bit reader over the entropy-coded segment ---

func (d *jpegDecoder) resetBits() { d.bits, d.nbits, d.marker = 0, 0, false }

// fill ensures at least n (≤ 32) bits are buffered, or returns errJPEGTruncated. At a marker or
// the end of data libjpeg pads with zero bits and warns; PIL then reports the file as broken, so
// needing bits that are not there is an error here.
func (d *jpegDecoder) fill(n int) error {
	for d.nbits < n {
		if d.marker || d.pos >= len(d.data) {
			d.marker = true
			return errJPEGTruncated
		}
		b := d.data[d.pos]
		if b == 0xFF {
			if d.pos+1 >= len(d.data) {
				d.marker = true
				return errJPEGTruncated
			}
			nb := d.data[d.pos+1]
			if nb == 0x00 {
				d.pos += 2
			} else if nb == 0xFF { // fill bytes before a marker
				d.pos++
				continue
			} else {
				d.marker = true
				return errJPEGTruncated
			}
		} else {
			d.pos++
		}
		d.bits = d.bits<<8 | uint64(b)
		d.nbits += 8
	}
	return nil
}

func (d *jpegDecoder) getBits(n int) (int32, error) {
	if n == 0 {
		return 0, nil
	}
	if err := d.fill(n); err != nil {
		return 0, err
	}
	d.nbits -= n
	return int32(d.bits>>uint(d.nbits)) & (1<<uint(n) - 1), nil
}

func (d *jpegDecoder) getBit() (bool, error) {
	v, err := d.getBits(1)
	return v != 0, err
}

// fillSoft buffers up to n bits if the data has them, without failing at a marker or the end.
func (d *jpegDecoder) fillSoft(n int) {
	if d.nbits < n && !d.marker {
		_ = d.fill(n)
	}
}

func (d *jpegDecoder) decodeHuff(h *huffTable) (uint8, error) {
	if !h.valid {
		return 0, errors.New("jpeg: scan uses an undefined Huffman table")
	}
	d.fillSoft(lookBits)
	if d.nbits >= lookBits {
		e := h.look[(d.bits>>uint(d.nbits-lookBits))&(1<<lookBits-1)]
		if e != 0 {
			d.nbits -= int(e >> 8)
			return uint8(e), nil
		}
	}
	code := int32(0)
	for l := 1; l <= 16; l++ {
		b, err := d.getBits(1)
		if err != nil {
			return 0, err
		}
		code = code<<1 | b
		if code <= h.maxcode[l] {
			idx := h.valptr[l] + code - h.mincode[l]
			if idx < 0 || int(idx) >= len(h.vals) {
				return 0, errors.New("jpeg: bad Huffman code")
			}
			return h.vals[idx], nil
		}
	}
	return 0, errors.New("jpeg: bad Huffman code")
}

// receiveExtend reads s bits and sign-extends them (JPEG F.2.2.1 EXTEND).
func (d *jpegDecoder) receiveExtend(s uint8) (int32, error) {
	if s == 0 {
		return 0, nil
	}
	if s > 16 {
		return 0, errors.New("jpeg: bad coefficient size")
	}
	v, err := d.getBits(int(s))
	if err != nil {
		return 0, err
	}
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v, nil
}

// --- scans ---

func (d *jpegDecoder) scan(s []byte) error {
	if len(s) < 1 {
		return errors.New("jpeg: short SOS segment")
	}
	ns := int(s[0])
	if ns < 1 || ns > 4 || len(s) < 1+2*ns+3 {
		return errors.New("jpeg: bad SOS segment")
	}
	p := s[1+2*ns:]
	ss, se, ah, al := int(p[0]), int(p[1]), int(p[2]>>4), uint(p[2]&15)
	if !d.progressive {
		ss, se, ah, al = 0, 63, 0, 0
	}
	var sc []*jpegComponent
	for i := 0; i < ns; i++ {
		id := int(s[1+2*i])
		var c *jpegComponent
		for j := range d.comps {
			if d.comps[j].id == id {
				c = &d.comps[j]
			}
		}
		if c == nil {
			return fmt.Errorf("jpeg: scan names unknown component %d", id)
		}
		for _, o := range sc {
			if o == c {
				return errors.New("jpeg: component repeated in a scan")
			}
		}
		c.dcTable, c.acTable = int(s[2+2*i]>>4), int(s[2+2*i]&15)
		if c.dcTable > 3 || c.acTable > 3 {
			return errors.New("jpeg: bad Huffman table selector")
		}
		if c.quant == nil {
			if !d.qtValid[c.tq] {
				return errors.New("jpeg: scan uses an undefined quantisation table")
			}
			q := d.qt[c.tq] // latched at the component's first scan, as libjpeg does
			c.quant = &q
		}
		sc = append(sc, c)
	}
	if d.progressive && (ss > se || se > 63 || al > 13 || (ss == 0 && se != 0) || (ss > 0 && ns != 1)) {
		return errors.New("jpeg: bad progressive scan parameters")
	}
	// Before allocating anything for this scan, check that the rest of the file can hold it:
	// a sequential scan needs ≥ 2 bits per block (shortest DC code + EOB), a DC scan ≥ 1 bit.
	// This rejects a tiny file whose header claims a huge image without allocating for it.
	blocks := int64(0)
	for _, c := range sc {
		if ns == 1 {
			bx := int64(((d.width*c.h+d.hmax-1)/d.hmax + 7) / 8)
			by := int64(((d.height*c.v+d.vmax-1)/d.vmax + 7) / 8)
			blocks += bx * by
		} else {
			blocks += int64(d.mcusX) * int64(d.mcusY) * int64(c.h*c.v)
		}
	}
	minBits := int64(0)
	switch {
	case !d.progressive:
		minBits = 2 * blocks
	case ss == 0:
		minBits = blocks
	}
	if int64(len(d.data)-d.pos)*8 < minBits {
		return errJPEGTruncated
	}
	for _, c := range sc {
		if c.coef == nil {
			if int64(c.bw)*int64(c.bh) > (1<<31)/64 {
				return errors.New("jpeg: image too large")
			}
			c.coef = make([]int16, c.bw*c.bh*64)
		}
	}
	for _, c := range sc {
		c.dcPred = 0
	}
	d.eobrun = 0
	d.resetBits()

	// Iterate MCUs. A single-component scan is non-interleaved: its MCU is one block and it
	// covers only the component's own blocks (ceil(compWidth/8) per line).
	var nx, ny int
	if ns == 1 {
		c := sc[0]
		cw := (d.width*c.h + d.hmax - 1) / d.hmax
		ch := (d.height*c.v + d.vmax - 1) / d.vmax
		nx, ny = (cw+7)/8, (ch+7)/8
	} else {
		nx, ny = d.mcusX, d.mcusY
	}
	mcu := 0
	total := nx * ny
	for my := 0; my < ny; my++ {
		for mx := 0; mx < nx; mx++ {
			if d.restart > 0 && mcu > 0 && mcu%d.restart == 0 && mcu < total {
				if err := d.handleRestart(sc); err != nil {
					return err
				}
			}
			mcu++
			if ns == 1 {
				c := sc[0]
				if err := d.decodeBlock(c, c.coef[(my*c.bw+mx)*64:][:64], ss, se, ah, al); err != nil {
					return err
				}
				continue
			}
			for _, c := range sc {
				for v := 0; v < c.v; v++ {
					for h := 0; h < c.h; h++ {
						bx, by := mx*c.h+h, my*c.v+v
						if err := d.decodeBlock(c, c.coef[(by*c.bw+bx)*64:][:64], ss, se, ah, al); err != nil {
							return err
						}
					}
				}
			}
		}
	}
	return nil
}

// handleRestart expects an RSTn marker at the current byte position and resets the decoder state.
func (d *jpegDecoder) handleRestart(sc []*jpegComponent) error {
	d.nbits, d.bits = 0, 0
	for d.pos+1 < len(d.data) && d.data[d.pos] == 0xFF && d.data[d.pos+1] == 0xFF {
		d.pos++
	}
	if d.pos+1 >= len(d.data) || d.data[d.pos] != 0xFF || d.data[d.pos+1] < 0xD0 || d.data[d.pos+1] > 0xD7 {
		return errors.New("jpeg: missing restart marker")
	}
	d.pos += 2
	d.marker = false
	for _, c := range sc {
		c.dcPred = 0
	}
	d.eobrun = 0
	return nil
}

func (d *jpegDecoder) decodeBlock(c *jpegComponent, blk []int16, ss, se, ah int, al uint) error {
	switch {
	case !d.progressive:
		return d.decodeBaseline(c, blk)
	case ss == 0 && ah == 0: // DC first
		t, err := d.decodeHuff(&d.dc[c.dcTable])
		if err != nil {
			return err
		}
		diff, err := d.receiveExtend(t)
		if err != nil {
			return err
		}
		c.dcPred += diff
		blk[0] = int16(c.dcPred << al)
		return nil
	case ss == 0: // DC refinement
		b, err := d.getBit()
		if err != nil {
			return err
		}
		if b {
			blk[0] |= int16(1 << al)
		}
		return nil
	case ah == 0:
		return d.decodeACFirst(c, blk, ss, se, al)
	default:
		return d.decodeACRefine(c, blk, ss, se, al)
	}
}

func (d *jpegDecoder) decodeBaseline(c *jpegComponent, blk []int16) error {
	t, err := d.decodeHuff(&d.dc[c.dcTable])
	if err != nil {
		return err
	}
	diff, err := d.receiveExtend(t)
	if err != nil {
		return err
	}
	c.dcPred += diff
	blk[0] = int16(c.dcPred)
	ac := &d.ac[c.acTable]
	for k := 1; k < 64; {
		rs, err := d.decodeHuff(ac)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), rs&15
		if s != 0 {
			k += r
			v, err := d.receiveExtend(s)
			if err != nil {
				return err
			}
			if k > 63 {
				return errors.New("jpeg: coefficient index out of range")
			}
			blk[zigzag[k]] = int16(v)
			k++
		} else {
			if r != 15 {
				break
			}
			k += 16
		}
	}
	return nil
}

func (d *jpegDecoder) decodeACFirst(c *jpegComponent, blk []int16, ss, se int, al uint) error {
	if d.eobrun > 0 {
		d.eobrun--
		return nil
	}
	ac := &d.ac[c.acTable]
	for k := ss; k <= se; {
		rs, err := d.decodeHuff(ac)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), rs&15
		if s != 0 {
			k += r
			v, err := d.receiveExtend(s)
			if err != nil {
				return err
			}
			if k > 63 {
				return errors.New("jpeg: coefficient index out of range")
			}
			blk[zigzag[k]] = int16(v << al)
			k++
		} else {
			if r == 15 {
				k += 16
				continue
			}
			d.eobrun = 1 << r
			if r > 0 {
				b, err := d.getBits(r)
				if err != nil {
					return err
				}
				d.eobrun += b
			}
			d.eobrun--
			break
		}
	}
	return nil
}

func (d *jpegDecoder) refineBit(coef *int16, p1, m1 int16) error {
	b, err := d.getBit()
	if err != nil {
		return err
	}
	if b && *coef&p1 == 0 {
		if *coef >= 0 {
			*coef += p1
		} else {
			*coef += m1
		}
	}
	return nil
}

func (d *jpegDecoder) decodeACRefine(c *jpegComponent, blk []int16, ss, se int, al uint) error {
	p1 := int16(1 << al)
	m1 := int16(-1 << al)
	k := ss
	ac := &d.ac[c.acTable]
	if d.eobrun == 0 {
		for ; k <= se; k++ {
			rs, err := d.decodeHuff(ac)
			if err != nil {
				return err
			}
			r, s := int32(rs>>4), int16(rs&15)
			if s != 0 {
				b, err := d.getBit()
				if err != nil {
					return err
				}
				if b {
					s = p1
				} else {
					s = m1
				}
			} else if r != 15 {
				d.eobrun = 1 << r
				if r > 0 {
					b, err := d.getBits(int(r))
					if err != nil {
						return err
					}
					d.eobrun += b
				}
				break
			}
			for k <= se {
				z := zigzag[k]
				if blk[z] != 0 {
					if err := d.refineBit(&blk[z], p1, m1); err != nil {
						return err
					}
				} else {
					r--
					if r < 0 {
						break
					}
				}
				k++
			}
			if s != 0 && k <= 63 {
				blk[zigzag[k]] = s
			}
		}
	}
	if d.eobrun > 0 {
		for ; k <= se; k++ {
			z := zigzag[k]
			if blk[z] != 0 {
				if err := d.refineBit(&blk[z], p1, m1); err != nil {
					return err
				}
			}
		}
		d.eobrun--
	}
	return nil
}

// --- IDCT and output ---

// idctRangeLimit maps a descaled IDCT output x (signed, centred on 0) to a sample the way
// libjpeg's range_limit[x & RANGE_MASK] table does (clamps, and wraps for absurd values).
func idctRangeLimit(x int64) uint8 {
	i := x & 1023
	switch {
	case i < 128:
		return uint8(i + 128)
	case i < 512:
		return 255
	case i < 896:
		return 0
	}
	return uint8(i - 896)
}

// idctIslow is libjpeg's jpeg_idct_islow: in holds natural-order coefficients, q the
// quantisation table, out receives 8 rows of 8 samples at stride.
func idctIslow(in []int16, q *[64]uint16, out []uint8, stride int) {
	const (
		constBits = 13
		pass1Bits = 2
		f0298     = 2446
		f0390     = 3196
		f0541     = 4433
		f0765     = 6270
		f0899     = 7373
		f1175     = 9633
		f1501     = 12299
		f1847     = 15137
		f1961     = 16069
		f2053     = 16819
		f2562     = 20995
		f3072     = 25172
	)
	in = in[:64]
	out = out[:7*stride+8]
	// A block with only a DC coefficient comes out flat: libjpeg's column and row shortcuts give
	// range_limit((dc·q·4 + 16) >> 5) everywhere, and so does the full computation.
	ac := int16(0)
	for _, v := range in[1:] {
		ac |= v
	}
	if ac == 0 {
		v := idctRangeLimit((int64(in[0])*int64(q[0])<<pass1Bits + 16) >> (pass1Bits + 3))
		for r := 0; r < 8; r++ {
			o := out[r*stride : r*stride+8]
			for i := range o {
				o[i] = v
			}
		}
		return
	}
	var ws [64]int64
	for col := 0; col < 8; col++ {
		var c [8]int64
		for r := 0; r < 8; r++ {
			c[r] = int64(in[r*8+col]) * int64(q[r*8+col])
		}
		dq := func(r int) int64 { return c[r] }
		if in[8+col] == 0 && in[16+col] == 0 && in[24+col] == 0 && in[32+col] == 0 &&
			in[40+col] == 0 && in[48+col] == 0 && in[56+col] == 0 {
			dc := dq(0) << pass1Bits
			for r := 0; r < 8; r++ {
				ws[r*8+col] = dc
			}
			continue
		}
		z2, z3 := dq(2), dq(6)
		z1 := (z2 + z3) * f0541
		tmp2 := z1 + z3*(-f1847)
		tmp3 := z1 + z2*f0765
		z2, z3 = dq(0), dq(4)
		tmp0 := (z2 + z3) << constBits
		tmp1 := (z2 - z3) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		tmp0, tmp1, tmp2, tmp3 = dq(7), dq(5), dq(3), dq(1)
		z1, z2, z3 = tmp0+tmp3, tmp1+tmp2, tmp0+tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * f1175
		tmp0 *= f0298
		tmp1 *= f2053
		tmp2 *= f3072
		tmp3 *= f1501
		z1 *= -f0899
		z2 *= -f2562
		z3 *= -f1961
		z4 *= -f0390
		z3 += z5
		z4 += z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4

		const sh = constBits - pass1Bits
		const rnd = 1 << (sh - 1)
		ws[0*8+col] = (tmp10 + tmp3 + rnd) >> sh
		ws[7*8+col] = (tmp10 - tmp3 + rnd) >> sh
		ws[1*8+col] = (tmp11 + tmp2 + rnd) >> sh
		ws[6*8+col] = (tmp11 - tmp2 + rnd) >> sh
		ws[2*8+col] = (tmp12 + tmp1 + rnd) >> sh
		ws[5*8+col] = (tmp12 - tmp1 + rnd) >> sh
		ws[3*8+col] = (tmp13 + tmp0 + rnd) >> sh
		ws[4*8+col] = (tmp13 - tmp0 + rnd) >> sh
	}
	for row := 0; row < 8; row++ {
		w := ws[row*8 : row*8+8]
		o := out[row*stride : row*stride+8]
		// Rows whose AC terms are zero give the same values through the full computation
		// as through libjpeg's shortcut, so no special case is needed.
		z2, z3 := w[2], w[6]
		z1 := (z2 + z3) * f0541
		tmp2 := z1 + z3*(-f1847)
		tmp3 := z1 + z2*f0765
		tmp0 := (w[0] + w[4]) << constBits
		tmp1 := (w[0] - w[4]) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		tmp0, tmp1, tmp2, tmp3 = w[7], w[5], w[3], w[1]
		z1, z2, z3 = tmp0+tmp3, tmp1+tmp2, tmp0+tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * f1175
		tmp0 *= f0298
		tmp1 *= f2053
		tmp2 *= f3072
		tmp3 *= f1501
		z1 *= -f0899
		z2 *= -f2562
		z3 *= -f1961
		z4 *= -f0390
		z3 += z5
		z4 += z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4

		const sh = constBits + pass1Bits + 3
		const rnd = 1 << (sh - 1)
		o[0] = idctRangeLimit((tmp10 + tmp3 + rnd) >> sh)
		o[7] = idctRangeLimit((tmp10 - tmp3 + rnd) >> sh)
		o[1] = idctRangeLimit((tmp11 + tmp2 + rnd) >> sh)
		o[6] = idctRangeLimit((tmp11 - tmp2 + rnd) >> sh)
		o[2] = idctRangeLimit((tmp12 + tmp1 + rnd) >> sh)
		o[5] = idctRangeLimit((tmp12 - tmp1 + rnd) >> sh)
		o[3] = idctRangeLimit((tmp13 + tmp0 + rnd) >> sh)
		o[4] = idctRangeLimit((tmp13 - tmp0 + rnd) >> sh)
	}
}

// output runs the IDCT on every component, upsamples and converts to RGB.
func (d *jpegDecoder) output() (*RGB, error) {
	planes := make([]chromaPlane, len(d.comps))
	for i := range d.comps {
		c := &d.comps[i]
		if c.coef == nil {
			return nil, fmt.Errorf("jpeg: component %d has no scan data", c.id)
		}
		stride := c.bw * 8
		pix := make([]uint8, stride*c.bh*8)
		for by := 0; by < c.bh; by++ {
			for bx := 0; bx < c.bw; bx++ {
				idctIslow(c.coef[(by*c.bw+bx)*64:][:64], c.quant, pix[by*8*stride+bx*8:], stride)
			}
		}
		c.coef = nil // free as we go
		planes[i] = chromaPlane{pix: pix, stride: stride,
			cw: (d.width*c.h + d.hmax - 1) / d.hmax, ch: (d.height*c.v + d.vmax - 1) / d.vmax}
	}

	// Colour space as libjpeg's default_decompress_parms guesses it.
	const (
		csGray = iota
		csYCbCr
		csRGB
		csCMYK
		csYCCK
	)
	cs := csGray
	switch len(d.comps) {
	case 3:
		switch {
		case d.jfif:
			cs = csYCbCr
		case d.adobe:
			cs = csYCbCr
			if d.adobeXform == 0 {
				cs = csRGB
			}
		case d.comps[0].id == 82 && d.comps[1].id == 71 && d.comps[2].id == 66:
			cs = csRGB
		default:
			cs = csYCbCr
		}
	case 4:
		cs = csCMYK
		if d.adobe && d.adobeXform != 0 {
			cs = csYCCK
		}
	}

	w, h := d.width, d.height
	out := NewRGB(w, h)
	rows := make([][]uint8, len(d.comps))
	for i := range rows {
		rows[i] = make([]uint8, w)
	}
	tmp := make([]uint8, 2*w+16)
	for oy := 0; oy < h; oy++ {
		for i := range d.comps {
			c := &d.comps[i]
			jpegUpsampleRow(planes[i], d.hmax/c.h, d.vmax/c.v, oy, w, tmp, rows[i])
		}
		o := out.Pix[oy*w*3 : (oy+1)*w*3]
		for x := 0; x < w; x++ {
			var r, g, b uint8
			switch cs {
			case csGray:
				r, g, b = rows[0][x], rows[0][x], rows[0][x]
			case csYCbCr:
				r, g, b = jpegYCCToRGB(rows[0][x], rows[1][x], rows[2][x])
			case csRGB:
				r, g, b = rows[0][x], rows[1][x], rows[2][x]
			case csCMYK:
				// libjpeg returns the stored (Adobe-inverted) samples; PIL reads them as
				// "CMYK;I", i.e. ink = 255 − sample.
				r, g, b = cmykToRGB(255-rows[0][x], 255-rows[1][x], 255-rows[2][x], 255-rows[3][x])
			case csYCCK:
				// libjpeg: C = 255 − R(YCC) etc., K unchanged; PIL inverts all four.
				cr, cg, cb := jpegYCCToRGB(rows[0][x], rows[1][x], rows[2][x])
				r, g, b = cmykToRGB(cr, cg, cb, 255-rows[3][x])
			}
			o[3*x], o[3*x+1], o[3*x+2] = r, g, b
		}
	}
	return out, nil
}
